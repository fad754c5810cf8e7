"""Network operations: the inventory, samples, device state and alerts. The API, the CLI and
the jobs call only this; it flushes, the caller commits (one transaction per request)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import (
    Float,
    Select,
    and_,
    case,
    cast,
    delete,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from vigil.core.auth import audit
from vigil.core.db import utcnow
from vigil.core.problems import BadRequest, Conflict, NotFound
from vigil.network.credentials import Vault
from vigil.network.models import (
    AlertRule,
    Device,
    DeviceState,
    NetworkAlert,
    Sample,
    SampleRollup,
)
from vigil.network.schemas import (
    DeviceIn,
    DevicePatch,
    RuleIn,
    RulePatch,
    credential_kind,
    credential_secret,
)

ENTITY = "network_device"
#: What the audit log keeps of a device (never the credentials, only their kind).
AUDITED = (
    "name",
    "address",
    "type",
    "vendor",
    "platform",
    "site",
    "tags",
    "parent_id",
    "enabled",
    "icmp_interval_seconds",
    "snmp_interval_seconds",
    "snmp_port",
    "maintenance",
    "credential_kind",
)
CSV_COLUMNS = (
    "name",
    "address",
    "type",
    "vendor",
    "platform",
    "site",
    "tags",
    "parent",
    "enabled",
    "icmp_interval_seconds",
    "snmp_interval_seconds",
    "snmp_port",
)
MAX_IMPORT_ERRORS = 100


def pack_tags(tags: Iterable[str]) -> str:
    tags = sorted(set(tags))
    return f",{','.join(tags)}," if tags else ""


def unpack_tags(packed: str) -> list[str]:
    return [t for t in packed.split(",") if t]


@dataclass(frozen=True)
class DeviceView:
    """A device with its last poll, as the API shows it."""

    device: Device
    state: DeviceState | None

    def out(self) -> dict[str, Any]:
        d, s = self.device, self.state
        return {
            "id": d.id,
            "name": d.name,
            "address": d.address,
            "type": d.type,
            "vendor": d.vendor,
            "platform": d.platform,
            "site": d.site,
            "tags": unpack_tags(d.tags),
            "parent_id": d.parent_id,
            "enabled": d.enabled,
            "icmp_interval_seconds": d.icmp_interval_seconds,
            "snmp_interval_seconds": d.snmp_interval_seconds,
            "snmp_port": d.snmp_port,
            "maintenance": d.maintenance,
            "credentials": d.credential_kind,
            "status": s.status if s else "unknown",
            "last_poll_at": s.last_poll_at if s else None,
            "last_rtt_ms": s.last_rtt_ms if s else None,
            "last_loss_pct": s.last_loss_pct if s else None,
            "created_at": d.created_at,
            "updated_at": d.updated_at,
        }


def _audit_view(device: Device) -> dict[str, Any]:
    view = audit.snapshot(device, AUDITED)
    view["tags"] = unpack_tags(device.tags)
    return view


# --- reading --------------------------------------------------------------------------------


_Sel = TypeVar("_Sel", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class DeviceFilter:
    q: str | None = None
    site: str | None = None
    type: str | None = None
    tag: str | None = None
    enabled: bool | None = None
    status: str | None = None
    parent_id: int | None = None


# The orders of a list of devices (the devices table's column headers, the API's ``sort``):
# a key, "-" before it for descending. A device without a state row is "unknown" and has no
# RTT or loss. Status sorts by severity (down, unreachable, unknown, up), the rest as stored
# (text as text: an address is not sorted as a number). NULLs (no poll yet, no site) come
# last in both directions; ties go by name then id, so that paging is stable.
STATUS_RANK = {"down": 0, "unreachable": 1, "unknown": 2, "up": 3}
_STATUS_ORDER = case(
    STATUS_RANK, value=func.coalesce(DeviceState.status, "unknown"), else_=len(STATUS_RANK)
)
SORT_COLUMNS: dict[str, ColumnElement[Any] | QueryableAttribute[Any]] = {
    "name": Device.name,
    "status": _STATUS_ORDER,
    "rtt": DeviceState.last_rtt_ms,
    "loss": DeviceState.last_loss_pct,
    "site": Device.site,
    "type": Device.type,
    "address": Device.address,
}
DEFAULT_SORT = "name"
SORT_PATTERN = "^-?(" + "|".join(SORT_COLUMNS) + ")$"
SORT_HELP = (
    "The order: name (the default), status (down, unreachable, unknown, up), rtt (last RTT), "
    "loss (last loss), site, type or address; '-' before it for descending (sort=-rtt). "
    "Devices without a value (never polled, no site) come last both ways; ties go by name, "
    "then id."
)


def device_order(sort: str = DEFAULT_SORT) -> list[ColumnElement[Any]]:
    """The ORDER BY of ``sort`` (a key of SORT_COLUMNS, "-" before it for descending) over
    devices outer-joined to their state."""
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    column = SORT_COLUMNS.get(key)
    if column is None:
        raise BadRequest(
            f"sort must be one of {', '.join(SORT_COLUMNS)} (with '-' before it "
            f"for descending), not {sort!r}"
        )
    first = (column.desc() if descending else column.asc()).nulls_last()
    if key == "name":
        return [first, Device.id.desc() if descending else Device.id.asc()]
    return [first, Device.name.asc(), Device.id.asc()]


def list_devices(
    session: Session, flt: DeviceFilter, limit: int, offset: int, sort: str = DEFAULT_SORT
) -> tuple[list[DeviceView], int]:
    stmt = select(Device, DeviceState).outerjoin(DeviceState, DeviceState.device_id == Device.id)
    stmt = filter_devices(stmt, flt)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(*device_order(sort)).limit(limit).offset(offset)).all()
    return [DeviceView(d, s) for d, s in rows], total


def filter_devices(stmt: _Sel, flt: DeviceFilter) -> _Sel:
    """``stmt`` (a select from devices outer-joined to their state) narrowed to ``flt``."""
    if flt.q:
        like = f"%{flt.q.lower()}%"
        stmt = stmt.where(
            or_(func.lower(Device.name).like(like), func.lower(Device.address).like(like))
        )
    if flt.site is not None:
        stmt = stmt.where(Device.site == flt.site)
    if flt.type is not None:
        stmt = stmt.where(Device.type == flt.type.lower())
    if flt.tag is not None:
        stmt = stmt.where(Device.tags.contains(f",{flt.tag},", autoescape=True))
    if flt.enabled is not None:
        stmt = stmt.where(Device.enabled == flt.enabled)
    if flt.parent_id is not None:
        stmt = stmt.where(Device.parent_id == flt.parent_id)
    if flt.status is not None:
        if flt.status == "unknown":
            stmt = stmt.where(or_(DeviceState.status.is_(None), DeviceState.status == "unknown"))
        else:
            stmt = stmt.where(DeviceState.status == flt.status)
    return stmt


def get_device(session: Session, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"No device with id {device_id}.")
    return device


def device_view(session: Session, device_id: int) -> DeviceView:
    device = get_device(session, device_id)
    return DeviceView(device, session.get(DeviceState, device_id))


# --- writing --------------------------------------------------------------------------------


def _check_name_free(session: Session, name: str, device_id: int | None = None) -> None:
    stmt = select(Device.id).where(func.lower(Device.name) == name.lower())
    found = session.scalar(stmt)
    if found is not None and found != device_id:
        raise Conflict(f"A device named {name!r} exists already (id {found}).")


def _check_parent(session: Session, device_id: int | None, parent_id: int | None) -> None:
    if parent_id is None:
        return
    if parent_id == device_id:
        raise BadRequest("A device cannot be its own parent.")
    parents = dict(session.execute(select(Device.id, Device.parent_id)).all())
    if parent_id not in parents:
        raise BadRequest(f"parent_id {parent_id}: no such device.")
    seen: set[int] = set()
    node: int | None = parent_id
    while node is not None and node not in seen:  # walk up: the device must not be met
        if node == device_id:
            raise BadRequest(f"parent_id {parent_id} would make a cycle of parents.")
        seen.add(node)
        node = parents.get(node)


def create_device(session: Session, body: DeviceIn, vault: Vault) -> DeviceView:
    _check_name_free(session, body.name)
    _check_parent(session, None, body.parent_id)
    now = utcnow()
    device = Device(
        name=body.name,
        address=body.address,
        type=body.type,
        vendor=body.vendor,
        platform=body.platform,
        site=body.site,
        tags=pack_tags(body.tags),
        parent_id=body.parent_id,
        enabled=body.enabled,
        icmp_interval_seconds=body.icmp_interval_seconds,
        snmp_interval_seconds=body.snmp_interval_seconds,
        snmp_port=body.snmp_port,
        maintenance=[w.model_dump(mode="json") for w in body.maintenance],
        created_at=now,
        updated_at=now,
    )
    if body.credentials is not None:
        device.credential_kind = credential_kind(body.credentials)
        device.credentials = vault.seal(credential_secret(body.credentials))
    session.add(device)
    session.flush()
    audit.record(session, "create", ENTITY, device.id, after=_audit_view(device))
    return DeviceView(device, None)


def update_device(session: Session, device_id: int, patch: DevicePatch, vault: Vault) -> DeviceView:
    device = get_device(session, device_id)
    before = _audit_view(device)
    fields = patch.model_fields_set
    if "name" in fields and patch.name is not None:
        _check_name_free(session, patch.name, device_id)
    if "parent_id" in fields:
        _check_parent(session, device_id, patch.parent_id)
    for name in fields - {"tags", "maintenance", "credentials"}:
        setattr(device, name, getattr(patch, name))
    if "tags" in fields:
        device.tags = pack_tags(patch.tags or [])
    if "maintenance" in fields:
        device.maintenance = [w.model_dump(mode="json") for w in patch.maintenance or []]
    detail = None
    if "credentials" in fields:
        if patch.credentials is None:
            device.credential_kind, device.credentials = None, None
            detail = "credentials removed"
        else:
            device.credential_kind = credential_kind(patch.credentials)
            device.credentials = vault.seal(credential_secret(patch.credentials))
            detail = "credentials replaced"
    device.updated_at = utcnow()
    session.flush()
    after = _audit_view(device)
    if before != after or detail:
        audit.record(
            session, "update", ENTITY, device.id, before=before, after=after, detail=detail
        )
    return DeviceView(device, session.get(DeviceState, device_id))


def delete_device(session: Session, device_id: int) -> None:
    device = get_device(session, device_id)
    before = _audit_view(device)
    session.execute(update(Device).where(Device.parent_id == device_id).values(parent_id=None))
    for table in (Sample, SampleRollup, DeviceState, NetworkAlert, AlertRule):
        session.execute(delete(table).where(table.device_id == device_id))
    session.delete(device)
    session.flush()
    audit.record(session, "delete", ENTITY, device_id, before=before)


def device_secret(device: Device, vault: Vault) -> dict[str, Any] | None:
    """The decrypted credentials of a device, for a collector (never for the API)."""
    return vault.open(device.credentials) if device.credentials else None


# --- CSV --------------------------------------------------------------------------------------


def export_csv(session: Session, flt: DeviceFilter) -> str:
    views, _ = list_devices(session, flt, limit=1_000_000, offset=0)
    names = dict(session.execute(select(Device.id, Device.name)).all())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for view in views:
        d = view.device
        writer.writerow(
            [
                d.name,
                d.address,
                d.type,
                d.vendor or "",
                d.platform or "",
                d.site or "",
                ";".join(unpack_tags(d.tags)),
                names.get(d.parent_id, "") if d.parent_id else "",
                "true" if d.enabled else "false",
                d.icmp_interval_seconds,
                d.snmp_interval_seconds or "",
                d.snmp_port,
            ]
        )
    return out.getvalue()


class ImportRefused(BadRequest):
    def __init__(self, errors: Sequence[dict[str, Any]], total: int) -> None:
        shown = list(errors)[:MAX_IMPORT_ERRORS]
        super().__init__(
            f"{total} rows of the CSV file are wrong; nothing was imported. Fix them and "
            "send the whole file again.",
            errors=shown,
        )


def _row_input(row: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """A CSV row as DeviceIn's input, and its parent's name."""
    values: dict[str, Any] = {}
    for column in CSV_COLUMNS:
        raw = (row.get(column) or "").strip()
        if column == "parent" or raw == "":
            continue
        if column == "tags":
            values["tags"] = [t for t in raw.replace(",", ";").split(";") if t.strip()]
        else:
            values[column] = raw
    parent = (row.get("parent") or "").strip() or None
    return values, parent


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ())) or "row"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _read_header(reader: csv.DictReader[str]) -> None:
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("name", "address") if c not in header]
    if missing:
        raise BadRequest(
            f"The CSV header must name the columns name and address (missing: "
            f"{', '.join(missing)}); known columns: {', '.join(CSV_COLUMNS)}."
        )
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise BadRequest(
            f"Unknown CSV columns: {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}."
        )
    reader.fieldnames = header


Parsed = list[tuple[int, DeviceIn, str | None]]  # (line, device, parent's name)


def parse_csv(text: str, existing: set[str]) -> Parsed:
    """Every row of the file as a device, or :class:`ImportRefused` listing every wrong row.
    ``existing``: the names (lower case) already in the inventory, for the parents."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        _read_header(reader)
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise BadRequest(f"The CSV file cannot be read (line {reader.line_num}): {exc}.") from None
    errors: list[dict[str, Any]] = []
    parsed: Parsed = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if None in row:
            errors.append({"row": line, "message": "more fields than header columns"})
            continue
        values, parent = _row_input(row)
        try:
            body = DeviceIn.model_validate(values)
        except ValidationError as exc:
            errors.append({"row": line, "message": _describe(exc)})
            continue
        key = body.name.lower()
        if key in seen:
            errors.append({"row": line, "message": f"name {body.name!r} repeats line {seen[key]}"})
            continue
        seen[key] = line
        parsed.append((line, body, parent))
    for line, _body, parent in parsed:
        if parent is not None and parent.lower() not in seen and parent.lower() not in existing:
            errors.append({"row": line, "message": f"parent {parent!r}: no such device"})
    if errors:
        raise ImportRefused(sorted(errors, key=lambda e: e["row"]), len(errors))
    if not parsed:
        raise BadRequest("The CSV file holds no devices (only a header).")
    return parsed


def import_csv(
    session: Session, text: str, vault: Vault, *, dry_run: bool = False
) -> dict[str, Any]:
    """Creates or updates (by name) every device of the file, or none: a wrong row refuses
    the whole file, with every row's error (422)."""
    existing = {d.name.lower(): d for d in session.scalars(select(Device))}
    parsed = parse_csv(text, set(existing))
    created = updated = 0
    devices: dict[str, Device] = dict(existing)
    with session.begin_nested():  # all rows or none, also when a late check fails
        for _line, body, _parent in parsed:
            old = existing.get(body.name.lower())
            if old is None:
                view = create_device(session, body.model_copy(update={"parent_id": None}), vault)
                devices[body.name.lower()] = view.device
                created += 1
            else:
                fields = body.model_dump(exclude={"credentials", "parent_id"}, exclude_unset=True)
                update_device(session, old.id, DevicePatch.model_validate(fields), vault)
                updated += 1
        for line, body, parent in parsed:  # parents once every device exists
            device = devices[body.name.lower()]
            parent_id = devices[parent.lower()].id if parent else None
            if device.parent_id != parent_id:
                try:
                    update_device(session, device.id, DevicePatch(parent_id=parent_id), vault)
                except BadRequest as exc:
                    raise ImportRefused([{"row": line, "message": exc.detail}], 1) from None
        if dry_run:  # everything was checked: undo it
            raise _DryRun(created, updated)
    return {"created": created, "updated": updated, "dry_run": False}


class _DryRun(Exception):
    def __init__(self, created: int, updated: int) -> None:
        super().__init__("dry run")
        self.counts = {"created": created, "updated": updated, "dry_run": True}


def import_devices(session: Session, text: str, vault: Vault, *, dry_run: bool) -> dict[str, Any]:
    """:func:`import_csv`; with ``dry_run`` every row is checked and written inside a
    savepoint that is then rolled back, so the report is exactly what the import would do."""
    try:
        return import_csv(session, text, vault, dry_run=dry_run)
    except _DryRun as done:
        return done.counts


# --- samples, alerts ------------------------------------------------------------------------


NO_FLOAT = cast(null(), Float)  # raw samples have no min/max
#: The samples API's resolutions: raw samples, or a rollup tier's period in seconds.
RESOLUTIONS = {"raw": 0, "5m": 300, "1h": 3600}


def series(
    session: Session,
    device_id: int,
    metric: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    resolution: str = "raw",
) -> list[tuple[datetime, float, float | None, float | None]]:
    """The newest ``limit`` points, oldest first: (ts, value, min, max). Raw samples have
    no min/max; a rollup tier gives each bucket's average, minimum and maximum."""
    get_device(session, device_id)
    period = RESOLUTIONS[resolution]
    if period == 0:
        stmt = select(Sample.ts, Sample.value, NO_FLOAT, NO_FLOAT).where(
            Sample.device_id == device_id, Sample.metric == metric
        )
        ts_column = Sample.ts
    else:
        stmt = select(
            SampleRollup.bucket, SampleRollup.avg, SampleRollup.min, SampleRollup.max
        ).where(
            SampleRollup.period == period,
            SampleRollup.device_id == device_id,
            SampleRollup.metric == metric,
        )
        ts_column = SampleRollup.bucket
    if start is not None:
        stmt = stmt.where(ts_column >= start)
    if end is not None:
        stmt = stmt.where(ts_column <= end)
    rows = session.execute(stmt.order_by(ts_column.desc()).limit(limit)).all()
    return [(ts, value, low, high) for ts, value, low, high in reversed(rows)]


ALERT_STATES = ("pending", "firing", "acknowledged", "resolved")
OPEN = ("pending", "firing", "acknowledged")


def _alert_out(alert: NetworkAlert, device: str, rule_name: str | None) -> dict[str, Any]:
    return {
        "id": alert.id,
        "device_id": alert.device_id,
        "device": device,
        "rule": alert.rule,
        "rule_id": alert.rule_id,
        "rule_name": rule_name,
        "subject": alert.subject,
        "severity": alert.severity,
        "state": alert.state,
        "started_at": alert.started_at,
        "fired_at": alert.fired_at,
        "resolved_at": alert.resolved_at,
        "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by": alert.acknowledged_by,
        "suppressed_by": alert.suppressed_by,
        "value": alert.value,
        "message": alert.message,
    }


def list_alerts(
    session: Session,
    *,
    state: str | None,
    device_id: int | None,
    limit: int,
    offset: int,
    kind: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Alerts, newest first; ``state`` one of ALERT_STATES or ``open`` (not resolved)."""
    stmt = (
        select(NetworkAlert, Device.name, AlertRule.name)
        .join(Device, Device.id == NetworkAlert.device_id)
        .outerjoin(AlertRule, AlertRule.id == NetworkAlert.rule_id)
    )
    if state == "open":
        stmt = stmt.where(NetworkAlert.state.in_(OPEN))
    elif state is not None:
        stmt = stmt.where(NetworkAlert.state == state)
    if device_id is not None:
        stmt = stmt.where(and_(NetworkAlert.device_id == device_id))
    if kind is not None:
        stmt = stmt.where(NetworkAlert.rule == kind)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(
        stmt.order_by(NetworkAlert.started_at.desc(), NetworkAlert.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [_alert_out(a, device, rule) for a, device, rule in rows], total


def get_alert(session: Session, alert_id: int) -> dict[str, Any]:
    row = session.execute(
        select(NetworkAlert, Device.name, AlertRule.name)
        .join(Device, Device.id == NetworkAlert.device_id)
        .outerjoin(AlertRule, AlertRule.id == NetworkAlert.rule_id)
        .where(NetworkAlert.id == alert_id)
    ).first()
    if row is None:
        raise NotFound(f"No alert {alert_id}.")
    return _alert_out(*row)


def acknowledge(session: Session, alert_id: int) -> dict[str, Any]:
    """A firing alert becomes acknowledged by the caller: it is not notified again until
    it is resolved (the resolution is). Acknowledging it again changes nothing."""
    alert = session.get(NetworkAlert, alert_id)
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    if alert.state == "acknowledged":
        return get_alert(session, alert_id)
    if alert.state != "firing":
        raise Conflict(
            f"Alert {alert_id} is {alert.state}: only a firing alert can be acknowledged."
        )
    now = utcnow()
    alert.state, alert.updated_at = "acknowledged", now
    alert.acknowledged_at, alert.acknowledged_by = now, audit.actor_var.get().name[:320]
    session.flush()
    audit.record(
        session,
        "acknowledge",
        ALERT_ENTITY,
        alert_id,
        before={"state": "firing"},
        after={"state": "acknowledged", "acknowledged_by": alert.acknowledged_by},
    )
    return get_alert(session, alert_id)


# --- alert rules -----------------------------------------------------------------------------

ALERT_ENTITY = "network_alert"
RULE_ENTITY = "network_alert_rule"
RULE_FIELDS = (
    "name",
    "kind",
    "device_id",
    "tag",
    "threshold",
    "failures",
    "for_seconds",
    "recover_after",
    "interface",
    "severity",
    "enabled",
)


def _rule_view(rule: AlertRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


def rule_out(session: Session, rule: AlertRule) -> dict[str, Any]:
    device = session.get(Device, rule.device_id) if rule.device_id else None
    return {
        "id": rule.id,
        **_rule_view(rule),
        "device": device.name if device else None,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def get_rule(session: Session, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound(f"No alert rule {rule_id}.")
    return rule


def list_rules(
    session: Session,
    *,
    kind: str | None = None,
    device_id: int | None = None,
    tag: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    stmt = select(AlertRule)
    if kind is not None:
        stmt = stmt.where(AlertRule.kind == kind)
    if device_id is not None:
        stmt = stmt.where(AlertRule.device_id == device_id)
    if tag is not None:
        stmt = stmt.where(AlertRule.tag == tag)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AlertRule.name, AlertRule.id).limit(limit).offset(offset))
    return [rule_out(session, r) for r in rows], total


def _check_rule_device(session: Session, device_id: int | None) -> None:
    if device_id is not None and session.get(Device, device_id) is None:
        raise BadRequest(f"device_id: there is no device {device_id}.")


def create_rule(session: Session, body: RuleIn) -> dict[str, Any]:
    _check_rule_device(session, body.device_id)
    now = utcnow()
    rule = AlertRule(**body.model_dump(), created_at=now, updated_at=now)
    session.add(rule)
    session.flush()
    audit.record(session, "create", RULE_ENTITY, rule.id, after=_rule_view(rule))
    return rule_out(session, rule)


def update_rule(session: Session, rule_id: int, patch: RulePatch) -> dict[str, Any]:
    rule = get_rule(session, rule_id)
    before = _rule_view(rule)
    merged = {**before, **patch.model_dump(include=patch.model_fields_set)}
    try:
        checked = RuleIn(**merged)
    except ValidationError as exc:
        raise BadRequest(_describe(exc)) from None
    _check_rule_device(session, checked.device_id)
    for name, value in checked.model_dump().items():
        setattr(rule, name, value)
    after = _rule_view(rule)
    if before != after:
        rule.updated_at = utcnow()
        session.flush()
        audit.record(session, "update", RULE_ENTITY, rule.id, before=before, after=after)
    return rule_out(session, rule)


def delete_rule(session: Session, rule_id: int) -> None:
    """Deletes a rule; its open alerts are resolved with it (quietly: no notification)."""
    rule = get_rule(session, rule_id)
    before = _rule_view(rule)
    now = utcnow()
    session.execute(
        update(NetworkAlert)
        .where(NetworkAlert.rule_id == rule_id, NetworkAlert.state.in_(OPEN))
        .values(state="resolved", resolved_at=now, updated_at=now, message="rule deleted")
    )
    session.delete(rule)
    session.flush()
    audit.record(session, "delete", RULE_ENTITY, rule_id, before=before)
