"""Network JSON API: the device inventory at /api/v1/devices (the seed's path) and the rest
of the module under /api/v1/network. Viewers read (ops.read), Operators write
(network.write), Admins delete (network.delete)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from vigil.core.auth.policy import require
from vigil.core.deps import db_session, runtime_of, settings_dep
from vigil.core.modules import API_PREFIX, module_prefix
from vigil.core.paging import page
from vigil.core.problems import BadRequest, Problem
from vigil.network import icmp, service
from vigil.network.credentials import Vault
from vigil.network.schemas import (
    MAX_ID,
    AlertOut,
    DeviceIn,
    DeviceOut,
    DevicePatch,
    ImportReport,
    Page,
    PointOut,
    RuleIn,
    RuleKind,
    RuleOut,
    RulePatch,
    SeriesOut,
)
from vigil.settings import Settings

TAGS: list[str | Enum] = ["network"]
devices_router = APIRouter(prefix=f"{API_PREFIX}/devices", tags=TAGS)
router = APIRouter(prefix=module_prefix("network"), tags=TAGS)

READ = Depends(require("ops.read"))
WRITE = Depends(require("network.write"))
DELETE = Depends(require("network.delete"))
SessionDep = Annotated[Session, Depends(db_session)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
MAX_LIMIT = 1000
MAX_CSV_BYTES = 5 * 1024 * 1024
LimitQ = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1..{MAX_LIMIT}.")]
OffsetQ = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip.")]
DeviceIdP = Annotated[int, Path(ge=1, le=MAX_ID, description="The device's id.")]
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # PostgreSQL refuses NUL in text: a 422, not a 500
Text100 = Annotated[str | None, Query(max_length=100, pattern=PRINTABLE)]
StatusQ = Annotated[
    str | None,
    Query(pattern="^(up|down|unreachable|unknown)$", description="up, down, unreachable, unknown."),
]

SortQ = Annotated[str, Query(pattern=service.SORT_PATTERN, description=service.SORT_HELP)]


def _vault(settings: Settings) -> Vault:
    return Vault.from_settings(settings)


def _filter(
    q: Annotated[
        str | None,
        Query(max_length=100, pattern=PRINTABLE, description="Part of the name or address."),
    ] = None,
    site: Text100 = None,
    type: Annotated[str | None, Query(max_length=32, pattern=PRINTABLE)] = None,
    tag: Annotated[str | None, Query(max_length=50, pattern=PRINTABLE)] = None,
    enabled: bool | None = None,
    status: StatusQ = None,
    parent_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> service.DeviceFilter:
    return service.DeviceFilter(q, site, type, tag, enabled, status, parent_id)


FilterDep = Annotated[service.DeviceFilter, Depends(_filter)]


# --- /api/v1/devices ------------------------------------------------------------------------


@devices_router.get(
    "",
    response_model=Page[DeviceOut],
    summary="Devices, filtered and paged, with their last poll",
    dependencies=[READ],
)
def list_devices(
    session: SessionDep,
    flt: FilterDep,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
    sort: SortQ = service.DEFAULT_SORT,
) -> Any:
    views, total = service.list_devices(session, flt, limit, offset, sort)
    return page([v.out() for v in views], total, limit, offset)


@devices_router.post(
    "",
    response_model=DeviceOut,
    status_code=201,
    summary="Add a device",
    responses={409: {"description": "The name is taken."}},
    dependencies=[WRITE],
)
def create_device(body: DeviceIn, session: SessionDep, settings: SettingsDep) -> Any:
    return service.create_device(session, body, _vault(settings)).out()


@devices_router.get(
    "/export",
    summary="The inventory as CSV (same filters as the list; never the credentials)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    dependencies=[READ],
)
def export_devices(session: SessionDep, flt: FilterDep) -> Response:
    return Response(
        service.export_csv(session, flt),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="devices.csv"'},
    )


@devices_router.post(
    "/import",
    response_model=ImportReport,
    summary="Create or update (by name) the devices of a CSV file: all of them or none",
    description="The body is the CSV file (Content-Type: text/csv), header first: "
    f"{', '.join(service.CSV_COLUMNS)} (name and address required; tags separated by ';'; "
    "parent by name). Any wrong row refuses the whole file with a 422 whose `errors` lists "
    "each wrong line. `dry_run=true` checks and reports without writing.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    responses={413: {"description": "Larger than 5 MB."}, 415: {"description": "Not text/csv."}},
    dependencies=[WRITE],
)
async def import_devices(
    request: Request,
    settings: SettingsDep,
    dry_run: Annotated[bool, Query(description="Check only; write nothing.")] = False,
) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("text/csv", "text/plain"):
        raise Problem(415, "Send the CSV file as the body with Content-Type: text/csv.")
    raw = await request.body()
    if len(raw) > MAX_CSV_BYTES:
        raise Problem(413, f"The CSV file is larger than {MAX_CSV_BYTES // 1024 // 1024} MB.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("The CSV file is not UTF-8 text.") from None
    if "\x00" in text:
        raise BadRequest("The CSV file holds NUL characters.")
    db = runtime_of(request).db

    def run() -> dict[str, Any]:
        with db.session(write=True) as session:
            return service.import_devices(session, text, _vault(settings), dry_run=dry_run)

    return await run_in_threadpool(run)


@devices_router.get(
    "/{device_id}",
    response_model=DeviceOut,
    summary="One device",
    dependencies=[READ],
)
def get_device(device_id: DeviceIdP, session: SessionDep) -> Any:
    return service.device_view(session, device_id).out()


@devices_router.patch(
    "/{device_id}",
    response_model=DeviceOut,
    summary="Change a device (only the fields sent)",
    responses={409: {"description": "The new name is taken."}},
    dependencies=[WRITE],
)
def update_device(
    device_id: DeviceIdP, body: DevicePatch, session: SessionDep, settings: SettingsDep
) -> Any:
    return service.update_device(session, device_id, body, _vault(settings)).out()


@devices_router.delete(
    "/{device_id}",
    status_code=204,
    summary="Delete a device with its samples and alerts (its children lose their parent)",
    dependencies=[DELETE],
)
def delete_device(device_id: DeviceIdP, session: SessionDep) -> Response:
    service.delete_device(session, device_id)
    return Response(status_code=204)


# --- /api/v1/network --------------------------------------------------------------------------

MetricQ = Annotated[
    str,
    Query(
        pattern=r"^[A-Za-z0-9_.:/-]{1,64}$",
        description=f"One of {', '.join(icmp.METRICS)}, or of the SNMP collector's "
        "(snmp.ok, snmp.uptime_s, snmp.cpu_pct, snmp.mem_pct, if.<ifName>.in_bps, …).",
    ),
]


@router.get(
    "/devices/{device_id}/samples",
    response_model=SeriesOut,
    summary="A device's samples of one metric (the newest `limit`, oldest first), raw or rolled up",
    dependencies=[READ],
)
def samples(
    device_id: DeviceIdP,
    session: SessionDep,
    metric: MetricQ = "icmp.rtt_avg_ms",
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    resolution: Annotated[
        str,
        Query(
            pattern="^(raw|5m|1h)$",
            description="raw samples, or the 5 min / 1 h rollups (average, min, max per "
            "bucket; kept longer than the raw samples).",
        ),
    ] = "raw",
) -> Any:
    for moment, name in ((start, "from"), (end, "to")):
        if moment is not None and moment.tzinfo is None:
            raise BadRequest(f"query parameter '{name}': give a time zone (e.g. Z).")
    points = service.series(session, device_id, metric, start, end, limit, resolution)
    return SeriesOut(
        device_id=device_id,
        metric=metric,
        resolution=resolution,
        points=[PointOut(ts=ts, value=v, min=low, max=high) for ts, v, low, high in points],
    )


KindQ = Annotated[
    RuleKind | None,
    Query(
        description="device_down, packet_loss, rtt, interface_down, interface_errors, cpu, "
        "memory, snmp_down."
    ),
]
AlertIdP = Annotated[int, Path(ge=1, le=MAX_ID, description="The alert's id.")]
RuleIdP = Annotated[int, Path(ge=1, le=MAX_ID, description="The rule's id.")]


@router.get(
    "/alerts",
    response_model=Page[AlertOut],
    summary="Alerts, newest first (state: pending, firing, acknowledged, resolved or open)",
    dependencies=[READ],
)
def alerts(
    session: SessionDep,
    state: Annotated[
        str | None, Query(pattern="^(pending|firing|acknowledged|resolved|open)$")
    ] = None,
    device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    kind: KindQ = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> Any:
    items, total = service.list_alerts(
        session, state=state, device_id=device_id, kind=kind, limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


@router.get("/alerts/{alert_id}", response_model=AlertOut, summary="One alert", dependencies=[READ])
def alert(alert_id: AlertIdP, session: SessionDep) -> Any:
    return service.get_alert(session, alert_id)


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertOut,
    summary="Acknowledge a firing alert: it is not notified again until it is resolved",
    responses={409: {"description": "The alert is pending or resolved."}},
    dependencies=[WRITE],
)
def acknowledge(alert_id: AlertIdP, session: SessionDep) -> Any:
    return service.acknowledge(session, alert_id)


@router.get(
    "/rules",
    response_model=Page[RuleOut],
    summary="Alert rules (filters: kind, device_id, tag)",
    dependencies=[READ],
)
def rules(
    session: SessionDep,
    kind: KindQ = None,
    device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    tag: Annotated[str | None, Query(max_length=50, pattern=PRINTABLE)] = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> Any:
    items, total = service.list_rules(
        session, kind=kind, device_id=device_id, tag=tag, limit=limit, offset=offset
    )
    return page(items, total, limit, offset)


@router.post(
    "/rules",
    response_model=RuleOut,
    status_code=201,
    summary="Add an alert rule for a device or a tag",
    dependencies=[WRITE],
)
def create_rule(body: RuleIn, session: SessionDep) -> Any:
    return service.create_rule(session, body)


@router.get("/rules/{rule_id}", response_model=RuleOut, summary="One rule", dependencies=[READ])
def get_rule(rule_id: RuleIdP, session: SessionDep) -> Any:
    return service.rule_out(session, service.get_rule(session, rule_id))


@router.patch(
    "/rules/{rule_id}",
    response_model=RuleOut,
    summary="Change a rule (only the fields sent; not its kind)",
    dependencies=[WRITE],
)
def update_rule(rule_id: RuleIdP, body: RulePatch, session: SessionDep) -> Any:
    return service.update_rule(session, rule_id, body)


@router.delete(
    "/rules/{rule_id}",
    status_code=204,
    summary="Delete a rule; its open alerts are resolved",
    dependencies=[DELETE],
)
def delete_rule(rule_id: RuleIdP, session: SessionDep) -> Response:
    service.delete_rule(session, rule_id)
    return Response(status_code=204)
