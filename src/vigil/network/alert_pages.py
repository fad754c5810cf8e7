"""The network alerts pages under /network/alerts (included by ``network/web.py``).

- ``/network/alerts``: the alert history, filtered by state (open by default), kind and
  device, paged; the table is an HTMX partial of the same route. Operators
  (``network.write``) get an Acknowledge button on firing alerts.
- ``/network/alerts/rules``: the alert rules; Operators add and edit them (one form,
  checked by the API's models: the same refusals and audit rows), Admins delete them.

Plain HTML forms with the session's CSRF token (checked by the cookie session on every
POST); a success answers with a redirect and a flash message, a refused form is shown again
(422) with the message and what was typed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.auth.policy import require
from vigil.core.deps import db_session
from vigil.core.problems import Problem
from vigil.core.web import flash, render
from vigil.network import rules as rule_kinds
from vigil.network import service
from vigil.network.models import Device
from vigil.network.schemas import MAX_ID, RuleIn, RulePatch

PATH = "/network/alerts"
RULES_PATH = f"{PATH}/rules"
router = APIRouter(prefix=PATH, include_in_schema=False)
READ = Depends(require("ops.read"))
WRITE = Depends(require("network.write"))
DELETE = Depends(require("network.delete"))
SessionDep = Annotated[Session, Depends(db_session)]
IdP = Annotated[int, Path(ge=1, le=MAX_ID)]
PAGE_SIZE = 50
STATES = ("open", "pending", "firing", "acknowledged", "resolved", "all")
KINDS = tuple(rule_kinds.KINDS)
KIND_TITLES = {kind: info.title for kind, info in rule_kinds.KINDS.items()}


def _back(path: str, message: str, level: str = "success") -> Response:
    return flash(RedirectResponse(path, status_code=303), message, level)


@router.get("", response_class=HTMLResponse, dependencies=[READ])
def alerts_page(
    request: Request,
    session: SessionDep,
    state: Annotated[str, Query(pattern=f"^({'|'.join(STATES)})$")] = "open",
    kind: Annotated[str, Query(pattern=f"^({'|'.join(KINDS)})?$")] = "",
    device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    offset = (page - 1) * PAGE_SIZE
    items, total = service.list_alerts(
        session,
        state=None if state == "all" else state,
        device_id=device_id,
        kind=kind or None,
        limit=PAGE_SIZE,
        offset=offset,
    )
    query = {"state": state, "kind": kind, "device_id": device_id or ""}
    context: dict[str, Any] = {
        "title": "Alerts",
        "path": PATH,
        "rules_path": RULES_PATH,
        "alerts": items,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "states": STATES,
        "kinds": KIND_TITLES,
        "filters": query,
        "devices": _devices(session),
    }
    return render(request, "network/alerts.html", context, partial="network/_alerts_panel.html")


@router.post("/{alert_id}/ack", response_class=HTMLResponse, dependencies=[WRITE])
def acknowledge(alert_id: IdP, session: SessionDep) -> Response:
    try:
        alert = service.acknowledge(session, alert_id)
    except Problem as exc:
        return _back(PATH, exc.detail, "error")
    return _back(PATH, f"Alert {alert_id} ({alert['device']}) acknowledged.")


# --- rules ----------------------------------------------------------------------------------


def _devices(session: Session) -> list[tuple[int, str]]:
    return [
        (d.id, d.name)
        for d in session.execute(select(Device.id, Device.name).order_by(Device.name))
    ]


@router.get("/rules", response_class=HTMLResponse, dependencies=[READ])
def rules_page(request: Request, session: SessionDep) -> HTMLResponse:
    items, total = service.list_rules(session, limit=1000)
    context: dict[str, Any] = {
        "title": "Alert rules",
        "path": RULES_PATH,
        "alerts_path": PATH,
        "rules": items,
        "total": total,
        "kinds": KIND_TITLES,
    }
    return render(request, "network/rules.html", context)


class RuleForm(BaseModel):
    """The form's fields as sent (text; RuleIn/RulePatch check them)."""

    name: str = ""
    kind: str = ""
    scope: str = "tag"  # tag | device
    device_id: str = ""
    tag: str = ""
    threshold: str = ""
    failures: str = ""
    for_seconds: str = "0"
    recover_after: str = "2"
    interface: str = ""
    severity: str = "warning"
    enabled: str = ""

    def body(self) -> dict[str, Any]:
        """What the API would get: empty fields are left out (None), the scope picks the
        device or the tag."""
        fields = {
            "name": self.name,
            "threshold": self.threshold,
            "failures": self.failures,
            "for_seconds": self.for_seconds,
            "recover_after": self.recover_after,
            "interface": self.interface,
            "severity": self.severity,
        }
        out: dict[str, Any] = {k: (v.strip() or None) for k, v in fields.items()}
        out["enabled"] = self.enabled == "on"
        out["device_id"] = (self.device_id.strip() or None) if self.scope == "device" else None
        out["tag"] = (self.tag.strip() or None) if self.scope == "tag" else None
        return out


def _form_of(rule: dict[str, Any]) -> RuleForm:
    def text(value: Any) -> str:
        return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    return RuleForm(
        name=rule["name"],
        kind=rule["kind"],
        scope="device" if rule["device_id"] else "tag",
        device_id=text(rule["device_id"]),
        tag=text(rule["tag"]),
        threshold=text(rule["threshold"]),
        failures=text(rule["failures"]),
        for_seconds=text(rule["for_seconds"]),
        recover_after=text(rule["recover_after"]),
        interface=text(rule["interface"]),
        severity=rule["severity"],
        enabled="on" if rule["enabled"] else "",
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _form_page(
    request: Request,
    session: SessionDep,
    form: RuleForm,
    rule_id: int | None,
    error: str | None = None,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "title": "Edit alert rule" if rule_id else "Add an alert rule",
        "path": RULES_PATH,
        "form": form,
        "rule_id": rule_id,
        "kinds": KIND_TITLES,
        "devices": _devices(session),
        "error": error,
        "action": f"{RULES_PATH}/{rule_id}" if rule_id else RULES_PATH,
    }
    return render(request, "network/rule_form.html", context, status_code=422 if error else 200)


@router.get("/rules/new", response_class=HTMLResponse, dependencies=[WRITE])
def new_rule_page(request: Request, session: SessionDep) -> HTMLResponse:
    return _form_page(request, session, RuleForm(kind="device_down", enabled="on"), None)


@router.post("/rules", response_class=HTMLResponse, dependencies=[WRITE])
def create_rule(
    request: Request, session: SessionDep, form: Annotated[RuleForm, Form()]
) -> Response:
    try:
        body = RuleIn.model_validate({**form.body(), "kind": form.kind})
        rule = service.create_rule(session, body)
    except ValidationError as exc:
        return _form_page(request, session, form, None, _describe(exc))
    except Problem as exc:
        return _form_page(request, session, form, None, exc.detail)
    return _back(RULES_PATH, f"Rule {rule['name']!r} added.")


@router.get("/rules/{rule_id}/edit", response_class=HTMLResponse, dependencies=[WRITE])
def edit_rule_page(request: Request, session: SessionDep, rule_id: IdP) -> HTMLResponse:
    rule = service.rule_out(session, service.get_rule(session, rule_id))
    return _form_page(request, session, _form_of(rule), rule_id)


@router.post("/rules/{rule_id}", response_class=HTMLResponse, dependencies=[WRITE])
def update_rule(
    request: Request, session: SessionDep, rule_id: IdP, form: Annotated[RuleForm, Form()]
) -> Response:
    existing = service.get_rule(session, rule_id)
    form.kind = existing.kind  # the kind does not change
    try:
        patch = RulePatch.model_validate(form.body())
        rule = service.update_rule(session, rule_id, patch)
    except ValidationError as exc:
        return _form_page(request, session, form, rule_id, _describe(exc))
    except Problem as exc:
        return _form_page(request, session, form, rule_id, exc.detail)
    return _back(RULES_PATH, f"Rule {rule['name']!r} saved.")


@router.post("/rules/{rule_id}/delete", response_class=HTMLResponse, dependencies=[DELETE])
def delete_rule(session: SessionDep, rule_id: IdP) -> Response:
    try:
        rule = service.get_rule(session, rule_id)
        name = rule.name
        service.delete_rule(session, rule_id)
    except Problem as exc:
        return _back(RULES_PATH, exc.detail, "error")
    return _back(RULES_PATH, f"Rule {name!r} deleted; its open alerts are resolved.")
