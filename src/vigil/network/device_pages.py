"""The devices pages (Viewers and up, ``ops.read``):

- ``/network``: the inventory with each device's status (as text and colour), last poll,
  RTT, loss and an RTT sparkline of the last hour; filters (text, site, tag, status),
  sorting by a column's header (``sort``: ``service.device_order``) and paging. Its panel
  (#devices-panel) asks for itself again every ``ui_refresh_seconds`` with the filters,
  sort and page it shows, so a refresh keeps them.
- ``/network/devices/{id}``: the device's details (never its credentials, only their
  kind), open alerts, RTT/loss/jitter, CPU/memory and per-interface traffic and errors per
  second charts over a range (1h, 6h, 24h, 7d), and an interface table. Its panel refreshes
  itself the same way.

The forms (add, edit, delete, CSV import) are in device_pages_forms.py."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.auth.policy import require
from vigil.core.deps import db_session
from vigil.core.problems import BadRequest
from vigil.core.web import is_htmx, render
from vigil.network import device_charts, device_queries, rollups, service
from vigil.network.device_queries import (
    CPU,
    IF_ERRORS,
    IF_PREFIX,
    IF_RATES,
    JITTER,
    LOSS,
    MEM,
    RTT,
    RTT_MAX,
    RTT_MIN,
    Bucket,
)
from vigil.network.models import Device
from vigil.network.schemas import MAX_ID

PATH = "/network"
router = APIRouter(prefix=PATH, include_in_schema=False)
READ = Depends(require("ops.read"))
SessionDep = Annotated[Session, Depends(db_session)]
DeviceIdP = Annotated[int, Path(ge=1, le=MAX_ID)]

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # PostgreSQL refuses NUL in text: a 422, not a 500
STATUSES = ("up", "down", "unreachable", "unknown")
STATUS_CLASS = {"up": "up", "down": "down", "unreachable": "status-skipped", "unknown": "muted"}
PAGE_SIZES = (25, 50, 100, 200)
# The devices table's columns: (header, sort key or None, CSS class of the cell).
COLUMNS = (
    ("Name", "name", ""),
    ("Address", "address", ""),
    ("Status", "status", ""),
    ("Last RTT", "rtt", "num"),
    ("Loss", "loss", "num"),
    ("RTT, last hour", None, ""),
    ("Last poll (UTC)", None, ""),
    ("Site", "site", ""),
    ("Type", "type", ""),
    ("Tags", None, ""),
)
SPARK_WINDOW = timedelta(hours=1)
# Per range: its label, its span and the rollup tier it reads (None: the raw samples).
# A day reads the 5 min tier (288 steps of 5 min); a week the 1 h tier (168 hourly steps:
# 2,016 rows a metric of the 5 min tier took the 7-day page past its budget); both then
# read the raw samples after the tier's watermark.
RANGES: dict[str, tuple[str, timedelta, int | None]] = {
    "1h": ("1 hour", timedelta(hours=1), None),
    "6h": ("6 hours", timedelta(hours=6), None),
    "24h": ("24 hours", timedelta(hours=24), rollups.FIVE_MIN),
    "7d": ("7 days", timedelta(days=7), rollups.HOUR),
}
DEFAULT_RANGE = "24h"
MAX_IF_CHARTS = 16  # a 48-port switch: the busiest 16 are charted, all are in the table


# --- the devices table ----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the table shows: the filters (None: any) and the page."""

    q: str | None = None
    site: str | None = None
    tag: str | None = None
    status: str | None = None
    page: int = 1
    size: int = 50
    sort: str = service.DEFAULT_SORT

    def query(self, **changes: Any) -> str:
        """The query string of these filters (with ``changes``), defaults left out."""
        shown = replace(self, **changes)
        values = {
            "q": shown.q,
            "site": shown.site,
            "tag": shown.tag,
            "status": shown.status,
            "sort": shown.sort if shown.sort != service.DEFAULT_SORT else None,
            "page": shown.page if shown.page != 1 else None,
            "size": shown.size if shown.size != 50 else None,
        }
        return urlencode({k: v for k, v in values.items() if v})

    def url(self, **changes: Any) -> str:
        query = self.query(**changes)
        return f"{PATH}?{query}" if query else PATH

    def sorted_by(self, key: str) -> str | None:
        """The ``aria-sort`` of the column of ``key``: ascending, descending or None."""
        if self.sort == key:
            return "ascending"
        return "descending" if self.sort == f"-{key}" else None

    def sort_url(self, key: str) -> str:
        """The column header's link: sorted by ``key`` ascending, or descending when it is
        already; the other filters kept, from page 1."""
        return self.url(sort=f"-{key}" if self.sort == key else key, page=1)

    @property
    def any(self) -> bool:
        return any((self.q, self.site, self.tag, self.status))


def _blank(value: str) -> str | None:
    value = value.strip()
    return value or None


def device_filters(
    q: Annotated[str, Query(max_length=100, pattern=PRINTABLE)] = "",
    site: Annotated[str, Query(max_length=100, pattern=PRINTABLE)] = "",
    tag: Annotated[str, Query(max_length=50, pattern=PRINTABLE)] = "",
    status: Annotated[str, Query(pattern="^(|up|down|unreachable|unknown)$")] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(description="Rows per page: 25, 50, 100 or 200.")] = 50,
    sort: Annotated[str, Query(pattern=service.SORT_PATTERN)] = service.DEFAULT_SORT,
) -> Filters:
    if size not in PAGE_SIZES:
        raise BadRequest(f"size must be one of {', '.join(map(str, PAGE_SIZES))}, not {size}")
    return Filters(_blank(q), _blank(site), _blank(tag), _blank(status), page, size, sort)


FiltersDep = Annotated[Filters, Depends(device_filters)]


DASH = Markup('<span class="muted">\u2013</span>')  # an en dash


def _number(value: float | None, fmt: str) -> str:
    return DASH if value is None else fmt % value


def _when(moment: datetime | None) -> str:
    if moment is None:
        return DASH
    iso = moment.isoformat()  # UTC: "2026-12-04T16:28:00[.123456]+00:00"
    return f'<time datetime="{iso}">{iso[:10]} {iso[11:19]}</time>'


@lru_cache(maxsize=64)
def _badge(status: str) -> str:
    text = escape(status)
    css = STATUS_CLASS.get(status, "muted")
    return f'<span class="device-status {css}" data-status="{text}">{text}</span>'


def _tags(packed: str) -> str:
    return ", ".join(f'<span class="tag">{escape(t)}</span>' for t in packed.split(",") if t)


def _row(r: device_queries.TableRow, values: list[float]) -> str:
    """One ``<tr>`` of the table, built here in one string (as ``_status.html``'s macros
    and the template's cells would write it): 200 rows of template cells, escapes and
    macro calls were a third of the table's time."""
    name = escape(r.name)
    label = (
        f"{r.name}: RTT over the last hour, {min(values):.1f} to {max(values):.1f} ms"
        if values
        else ""
    )
    disabled = "" if r.enabled else ' <small class="muted">(disabled)</small>'
    return (
        f'<tr data-device="{r.id}"><th scope="row"><a href="{PATH}/devices/{r.id}">{name}</a>'
        f"{disabled}</th><td><code>{escape(r.address)}</code></td><td>{_badge(r.status)}</td>"
        f'<td class="num">{_number(r.last_rtt_ms, "%.2f ms")}</td>'
        f'<td class="num">{_number(r.last_loss_pct, "%.0f %%")}</td>'
        f"<td>{device_charts.sparkline(tuple(values), label)}</td>"
        f"<td>{_when(r.last_poll_at)}</td><td>{escape(r.site or '')}</td>"
        f"<td>{escape(r.type)}</td><td>{_tags(r.tags)}</td></tr>\n"
    )


def devices_panel(session: Session, filters: Filters, now: datetime) -> dict[str, Any]:
    """The table's values: one page of devices (the last page when ``page`` is past it),
    each row already HTML."""
    flt = service.DeviceFilter(
        q=filters.q, site=filters.site, tag=filters.tag, status=filters.status
    )
    found, total = device_queries.table_rows(
        session, flt, filters.size, (filters.page - 1) * filters.size, filters.sort
    )
    pages = max(1, -(-total // filters.size))
    if not found and filters.page > pages:
        filters = replace(filters, page=pages)
        found, total = device_queries.table_rows(
            session, flt, filters.size, (filters.page - 1) * filters.size, filters.sort
        )
    sparks = device_queries.rtt_sparklines(session, found, now - SPARK_WINDOW, now)
    rows = Markup("".join([_row(r, sparks.get(r.id, [])) for r in found]))
    return {
        "path": PATH,
        "filters": filters,
        "rows": rows,
        "total": total,
        "pages": pages,
        "first_row": (filters.page - 1) * filters.size + 1 if found else 0,
        "last_row": (filters.page - 1) * filters.size + len(found),
        "status_class": STATUS_CLASS,
        "columns": COLUMNS,
        "now": now,
    }


@router.get("", response_class=HTMLResponse, dependencies=[READ])
def devices_page(request: Request, session: SessionDep, filters: FiltersDep) -> HTMLResponse:
    if is_htmx(request):  # the panel only: no filter pickers to fill
        context = devices_panel(session, filters, datetime.now(UTC))
    else:
        context = devices_page_context(session, filters)
    return render(request, "network/devices.html", context, partial="network/_devices_panel.html")


def devices_page_context(session: Session, filters: Filters) -> dict[str, Any]:
    sites, tags = device_queries.filter_choices(session)
    return {
        "title": "Devices",
        "sites": sites,
        "tags": tags,
        "statuses": STATUSES,
        "page_sizes": PAGE_SIZES,
        **devices_panel(session, filters, datetime.now(UTC)),
    }


# --- one device -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Interface:
    name: str
    oper: float | None
    in_bps: float | None
    out_bps: float | None
    in_errors: float | None
    out_errors: float | None
    peak_bps: float
    peak_errors: float  # the highest errors per second (in or out) of a step in the range
    errors: bool  # its chart has errors per second (its error counters are stored)
    chart: str | None


OPER = {1: "up", 2: "down", 3: "testing", 5: "dormant", 6: "not present", 7: "lower layer down"}


def _interface_names(
    session: Session, device_id: int, start: datetime
) -> tuple[list[str], dict[str, device_queries.Latest]]:
    """The interfaces with a sample inside the range, and the newest of their metrics."""
    last = {
        m: v
        for m, v in device_queries.newest(session, device_id, IF_PREFIX).items()
        if v.ts >= start
    }
    names = sorted({n for m in last if (n := device_queries.interface_name(m))}, key=str.lower)
    return names, last


def _interfaces(
    names: list[str],
    last: dict[str, device_queries.Latest],
    rates: dict[str, list[Bucket]],
    errors: dict[str, list[Bucket]],
) -> tuple[list[Interface], int]:
    """Each interface's newest values (the table) and, for MAX_IF_CHARTS of them (those
    with errors in the range first, then the busiest), its traffic and errors chart; how
    many more have data but no chart."""

    def value(name: str, suffix: str) -> float | None:
        found = last.get(f"{IF_PREFIX}{name}{suffix}")
        return found.value if found else None

    rows = []
    for name in names:
        inbound, outbound = rates[f"if.{name}.in_bps"], rates[f"if.{name}.out_bps"]
        err_in, err_out = errors[f"if.{name}.in_errors"], errors[f"if.{name}.out_errors"]
        peak = max((high for _, _, high in inbound + outbound), default=0.0)
        peak_errors = max((high for _, _, high in err_in + err_out), default=0.0)
        chart = (
            device_charts.traffic_chart(name, inbound, outbound, err_in, err_out)
            if inbound or outbound or err_in or err_out
            else None
        )
        rows.append(
            Interface(
                name,
                value(name, ".oper"),
                value(name, ".in_bps"),
                value(name, ".out_bps"),
                value(name, ".in_errors"),
                value(name, ".out_errors"),
                peak,
                peak_errors,
                bool(err_in or err_out),
                chart,
            )
        )
    charted = sorted((r for r in rows if r.chart), key=lambda r: (r.peak_errors <= 0, -r.peak_bps))[
        :MAX_IF_CHARTS
    ]
    keep = {r.name for r in charted}
    hidden = sum(1 for r in rows if r.chart and r.name not in keep)
    rows = [r if r.name in keep else replace(r, chart=None) for r in rows]
    return rows, hidden


def device_panel(session: Session, device_id: int, choice: str, now: datetime) -> dict[str, Any]:
    view = service.device_view(session, device_id)  # 404 for an unknown id
    device = view.device
    label, span, tier = RANGES[choice]
    start = now - span
    names, if_last = _interface_names(session, device_id, start)
    if_rates = [f"{IF_PREFIX}{n}{suffix}" for n in names for suffix in IF_RATES]
    series = device_queries.chart_series(  # every chart's series in one read
        session,
        device_id,
        (RTT, RTT_MIN, RTT_MAX, LOSS, JITTER, CPU, MEM, *if_rates),
        start,
        now,
        tier=tier,
    )
    errors = device_queries.error_rates(  # from the error counters, as the traffic's rates
        session,
        device_id,
        [f"{IF_PREFIX}{n}{suffix}" for n in names for suffix in IF_ERRORS],
        start,
        now,
        tier=tier,
        lookback=2 * (device.snmp_interval_seconds or 300),
    )
    icmp = {m: series[m] for m in (RTT, RTT_MIN, RTT_MAX, LOSS, JITTER)}
    snmp = {m: series[m] for m in (CPU, MEM)}
    snmp_last = device_queries.newest(session, device_id, "snmp.")
    interfaces, hidden = _interfaces(names, if_last, series, errors)
    parent = session.get(Device, device.parent_id) if device.parent_id else None
    children = session.scalars(
        select(Device).where(Device.parent_id == device_id).order_by(Device.name)
    ).all()
    alerts, open_total = service.list_alerts(
        session, state="open", device_id=device_id, limit=10, offset=0
    )
    status = view.state.status if view.state else "unknown"
    icmp_points = sum(len(v) for v in icmp.values())
    return {
        "path": f"{PATH}/devices/{device_id}",
        "view": view,
        "device": device,
        "state": view.state,
        "status": status,
        "status_class": STATUS_CLASS,
        "tags": service.unpack_tags(device.tags),
        "parent": parent,
        "children": children,
        "alerts": alerts,
        "open_total": open_total,
        "choice": choice,
        "ranges": {k: v[0] for k, v in RANGES.items()},
        "range_label": label,
        "rtt_chart": device_charts.rtt_loss_chart(icmp) if icmp_points else None,
        "rtt_points": len(icmp[RTT]),
        "jitter": bool(icmp[JITTER]),
        "step_label": step_label(device_queries.step_seconds(start, now, tier)),
        "cpu_chart": device_charts.cpu_mem_chart(snmp[CPU], snmp[MEM])
        if snmp[CPU] or snmp[MEM]
        else None,
        "cpu_last": snmp_last[CPU].value if CPU in snmp_last else None,
        "mem_last": snmp_last[MEM].value if MEM in snmp_last else None,
        "interfaces": interfaces,
        "hidden_charts": hidden,
        "oper": OPER,
        "now": now,
    }


def step_label(seconds: int) -> str:
    """How long a chart's step is, in words: "a 6 s step", "a 5 min step", "an hour"."""
    if seconds == 3600:
        return "an hour"
    if seconds % 3600 == 0:
        return f"a {seconds // 3600} h step"
    if seconds % 60 == 0:
        return f"a {seconds // 60} min step"
    return f"a {seconds} s step"


RangeQ = Annotated[str, Query(alias="range", pattern="^(1h|6h|24h|7d)$")]


@router.get("/devices/{device_id}", response_class=HTMLResponse, dependencies=[READ])
def device_page(
    request: Request, session: SessionDep, device_id: DeviceIdP, choice: RangeQ = DEFAULT_RANGE
) -> HTMLResponse:
    context = {**device_panel(session, device_id, choice, datetime.now(UTC))}
    context["title"] = context["device"].name
    return render(request, "network/device.html", context, partial="network/_device_panel.html")
