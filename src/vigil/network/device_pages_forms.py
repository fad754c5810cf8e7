"""The devices pages' forms: add and edit a device (Operators, ``network.write``), delete
one (Admins, ``network.delete``) and import a CSV file (Operators). Plain HTML forms with
the CSRF token; they call the service functions the JSON API calls, with the API's models
(DeviceIn, DevicePatch), so validation and audit rows are the same.

A refused form is shown again (status 422) with the message as an error flash above it and
what was typed kept, except the secrets: credentials are write-only, never put back into a
page. A success answers with a redirect and a flash message."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from vigil.core.auth.policy import require
from vigil.core.deps import db_session, runtime_of, settings_dep
from vigil.core.problems import Problem
from vigil.core.web import flash, render
from vigil.network import service
from vigil.network.credentials import Vault
from vigil.network.device_pages import PATH, DeviceIdP, Filters, devices_page_context
from vigil.network.models import Device
from vigil.network.schemas import DeviceIn, DevicePatch
from vigil.settings import Settings

router = APIRouter(prefix=PATH, include_in_schema=False)
WRITE = Depends(require("network.write"))
DELETE = Depends(require("network.delete"))
SessionDep = Annotated[Session, Depends(db_session)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
MAX_CSV_BYTES = 5 * 1024 * 1024
SECRETS = ("community", "auth_key", "priv_key")
AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
PRIV_PROTOCOLS = ("DES", "AES", "AES192", "AES256")
LABELS = {
    "name": "Name",
    "address": "Address",
    "type": "Type",
    "vendor": "Vendor",
    "platform": "Platform",
    "site": "Site",
    "tags": "Tags",
    "parent_id": "Parent",
    "enabled": "Enabled",
    "icmp_interval_seconds": "ICMP interval",
    "snmp_interval_seconds": "SNMP interval",
    "snmp_port": "SNMP port",
    "maintenance": "Maintenance",
    "credentials": "SNMP credentials",
}


class DeviceForm(BaseModel):
    """The form's fields as sent (text; the API's models check them). Lengths are bounded
    here only so that a huge field is refused before any work."""

    name: Annotated[str, Form(max_length=1000)] = ""
    address: Annotated[str, Form(max_length=1000)] = ""
    type: Annotated[str, Form(max_length=1000)] = "other"
    vendor: Annotated[str, Form(max_length=1000)] = ""
    platform: Annotated[str, Form(max_length=1000)] = ""
    site: Annotated[str, Form(max_length=1000)] = ""
    tags: Annotated[str, Form(max_length=2000)] = ""
    parent_id: Annotated[str, Form(max_length=20)] = ""
    enabled: Annotated[str, Form(max_length=10)] = ""
    icmp_interval_seconds: Annotated[str, Form(max_length=20)] = "60"
    snmp_interval_seconds: Annotated[str, Form(max_length=20)] = ""
    snmp_port: Annotated[str, Form(max_length=20)] = "161"
    maintenance: Annotated[str, Form(max_length=20_000)] = ""
    # none | 2c | 3, and on the edit form also keep (the default there)
    snmp_version: Annotated[str, Form(max_length=10)] = "none"
    community: Annotated[str, Form(max_length=1000)] = ""
    v3_user: Annotated[str, Form(max_length=1000)] = ""
    auth_protocol: Annotated[str, Form(max_length=20)] = ""
    auth_key: Annotated[str, Form(max_length=1000)] = ""
    priv_protocol: Annotated[str, Form(max_length=20)] = ""
    priv_key: Annotated[str, Form(max_length=1000)] = ""

    def shown(self) -> dict[str, str]:
        """The values to show again: everything but the secrets."""
        values = self.model_dump()
        for name in SECRETS:
            values[name] = ""
        return values


FormDep = Annotated[DeviceForm, Form()]


class FormRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _maintenance(text: str) -> list[dict[str, str]]:
    """One window a line: ``START END [reason]``, times in ISO 8601 with a zone."""
    windows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=2)
        if len(parts) < 2:
            raise FormRefused(
                f"Maintenance line {number}: write START END [reason], e.g. "
                "2026-12-24T22:00Z 2026-12-25T02:00Z firmware upgrade."
            )
        windows.append({"start": parts[0], "end": parts[1], "reason": " ".join(parts[2:])})
    return windows


def _credentials(form: DeviceForm) -> dict[str, Any] | None:
    if form.snmp_version == "2c":
        return {"version": "2c", "community": form.community}
    if form.snmp_version == "3":
        return {
            "version": "3",
            "user": form.v3_user.strip(),
            "auth_protocol": form.auth_protocol or None,
            "auth_key": form.auth_key or None,
            "priv_protocol": form.priv_protocol or None,
            "priv_key": form.priv_key or None,
        }
    return None


def _document(form: DeviceForm, *, editing: bool) -> dict[str, Any]:
    """The form as the API's JSON body (every field: the edit form shows them all)."""
    if not re.fullmatch(r"\d{0,10}", form.parent_id.strip()):
        raise FormRefused("Parent: pick a device from the list.")
    versions = ("keep", "none", "2c", "3") if editing else ("none", "2c", "3")
    if form.snmp_version not in versions:
        raise FormRefused(f"SNMP credentials: pick one of {', '.join(versions)}.")
    body: dict[str, Any] = {
        "name": form.name,
        "address": form.address,
        "type": form.type.strip() or "other",
        "vendor": form.vendor.strip() or None,
        "platform": form.platform.strip() or None,
        "site": form.site.strip() or None,
        "tags": [t for t in re.split(r"[\s,;]+", form.tags) if t],
        "parent_id": int(form.parent_id) if form.parent_id.strip() else None,
        "enabled": form.enabled == "on",
        "icmp_interval_seconds": form.icmp_interval_seconds.strip() or None,
        "snmp_interval_seconds": form.snmp_interval_seconds.strip() or None,
        "snmp_port": form.snmp_port.strip() or None,
        "maintenance": _maintenance(form.maintenance),
    }
    if not editing:
        body = {k: v for k, v in body.items() if v is not None}  # the API's defaults
    if form.snmp_version != "keep":
        body["credentials"] = _credentials(form)
    return body


def _describe(exc: ValidationError) -> str:
    """The API model's errors, named as the form names its fields. Pydantic's messages do
    not quote the input of a secret (only lengths and choices)."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ())]
        field = LABELS.get(loc[0], loc[0]) if loc else "Device"
        if loc[:1] == ["credentials"] and len(loc) > 2:
            field += f" ({loc[-1]})"
        elif len(loc) > 1 and loc[0] in ("maintenance", "tags"):
            field += f" {int(loc[1]) + 1}" if loc[1].isdigit() else ""
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "too_short" and loc[:1] == ["credentials"]:
            # a secret's length: pydantic counts SecretStr "items"
            message = f"should have at least {error.get('ctx', {}).get('min_length')} characters"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def _vault(settings: Settings) -> Vault:
    return Vault.from_settings(settings)


def _form_page(
    request: Request,
    session: Session,
    *,
    device: Device | None,
    values: dict[str, str],
    error: str | None = None,
) -> HTMLResponse:
    parents = session.execute(select(Device.id, Device.name).order_by(Device.name)).all()
    if device is not None:
        parents = [p for p in parents if p.id != device.id]
    context: dict[str, Any] = {
        "title": f"Edit {device.name}" if device else "Add a device",
        "path": PATH,
        "device": device,
        "values": values,
        "parents": parents,
        "auth_protocols": AUTH_PROTOCOLS,
        "priv_protocols": PRIV_PROTOCOLS,
    }
    if error is not None:
        context["flash"] = {"level": "error", "message": error}
    status = 200 if error is None else 422
    return render(request, "network/device_form.html", context, status_code=status)


def _edit_values(device: Device) -> dict[str, str]:
    return {
        "name": device.name,
        "address": device.address,
        "type": device.type,
        "vendor": device.vendor or "",
        "platform": device.platform or "",
        "site": device.site or "",
        "tags": ", ".join(service.unpack_tags(device.tags)),
        "parent_id": str(device.parent_id or ""),
        "enabled": "on" if device.enabled else "",
        "icmp_interval_seconds": str(device.icmp_interval_seconds),
        "snmp_interval_seconds": str(device.snmp_interval_seconds or ""),
        "snmp_port": str(device.snmp_port),
        "maintenance": "\n".join(
            f"{w['start']} {w['end']} {w.get('reason', '')}".rstrip() for w in device.maintenance
        ),
        "snmp_version": "keep",
    }


def _redirect(target: str, message: str, level: str = "success") -> Response:
    return flash(RedirectResponse(target, status_code=303), message, level)


# --- add ------------------------------------------------------------------------------------


@router.get("/devices/new", response_class=HTMLResponse, dependencies=[WRITE])
def new_device_form(request: Request, session: SessionDep) -> HTMLResponse:
    values = DeviceForm(enabled="on").shown()
    return _form_page(request, session, device=None, values=values)


@router.post("/devices/new", response_class=HTMLResponse, dependencies=[WRITE])
def create_device(
    request: Request, session: SessionDep, settings: SettingsDep, form: FormDep
) -> Response:
    try:
        body = DeviceIn.model_validate(_document(form, editing=False))
        with session.begin_nested():  # a refusal leaves nothing behind
            view = service.create_device(session, body, _vault(settings))
    except FormRefused as exc:
        return _form_page(request, session, device=None, values=form.shown(), error=exc.message)
    except ValidationError as exc:
        return _form_page(request, session, device=None, values=form.shown(), error=_describe(exc))
    except Problem as exc:  # a taken name, an unknown parent
        return _form_page(request, session, device=None, values=form.shown(), error=exc.detail)
    device = view.device
    return _redirect(f"{PATH}/devices/{device.id}", f"Device {device.name} added.")


# --- edit -----------------------------------------------------------------------------------


@router.get("/devices/{device_id}/edit", response_class=HTMLResponse, dependencies=[WRITE])
def edit_device_form(request: Request, session: SessionDep, device_id: DeviceIdP) -> HTMLResponse:
    device = service.get_device(session, device_id)  # 404 for an unknown id
    return _form_page(request, session, device=device, values=_edit_values(device))


@router.post("/devices/{device_id}/edit", response_class=HTMLResponse, dependencies=[WRITE])
def update_device(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    device_id: DeviceIdP,
    form: FormDep,
) -> Response:
    device = service.get_device(session, device_id)
    try:
        patch = DevicePatch.model_validate(_document(form, editing=True))
        with session.begin_nested():
            service.update_device(session, device_id, patch, _vault(settings))
    except FormRefused as exc:
        return _form_page(request, session, device=device, values=form.shown(), error=exc.message)
    except ValidationError as exc:
        return _form_page(
            request, session, device=device, values=form.shown(), error=_describe(exc)
        )
    except Problem as exc:
        return _form_page(request, session, device=device, values=form.shown(), error=exc.detail)
    return _redirect(f"{PATH}/devices/{device_id}", f"Device {device.name} saved.")


# --- delete ---------------------------------------------------------------------------------


@router.post("/devices/{device_id}/delete", response_class=HTMLResponse, dependencies=[DELETE])
def delete_device(session: SessionDep, device_id: DeviceIdP) -> Response:
    name = service.get_device(session, device_id).name  # 404 for an unknown id
    service.delete_device(session, device_id)
    return _redirect(PATH, f"Device {name} deleted with its samples and alerts.")


# --- CSV import -----------------------------------------------------------------------------


@router.post("/devices/import", response_class=HTMLResponse, dependencies=[WRITE])
async def import_devices(
    request: Request,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File()] = None,
    dry_run: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    db = runtime_of(request).db
    raw = await file.read(MAX_CSV_BYTES + 1) if file is not None else b""
    problem: Problem | None = None
    text = ""
    if not raw:
        problem = Problem(422, "Pick a CSV file to import.")
    elif len(raw) > MAX_CSV_BYTES:
        problem = Problem(413, f"The CSV file is larger than {MAX_CSV_BYTES // 1024 // 1024} MB.")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            problem = Problem(422, "The CSV file is not UTF-8 text.")
        if "\x00" in text:
            problem = Problem(422, "The CSV file holds NUL characters.")

    def run() -> Response:
        with db.session(write=True) as session:
            refused = problem
            if refused is None:
                try:  # all rows or none: the service imports inside a savepoint
                    report = service.import_devices(
                        session, text, _vault(settings), dry_run=dry_run == "on"
                    )
                except Problem as exc:
                    refused = exc
                else:
                    what = "would create" if report["dry_run"] else "created"
                    again = "would update" if report["dry_run"] else "updated"
                    note = " Nothing was written (check only)." if report["dry_run"] else ""
                    return _redirect(
                        PATH,
                        f"CSV import: {report['created']} devices {what}, "
                        f"{report['updated']} {again}.{note}",
                    )
            context = devices_page_context(session, Filters())
            context["import_message"] = refused.detail
            context["import_errors"] = refused.extra.get("errors") or []
            context["flash"] = {"level": "error", "message": refused.detail}
            status = refused.status if 400 <= refused.status < 500 else 422
            return render(request, "network/devices.html", context, status_code=status)

    return await run_in_threadpool(run)
