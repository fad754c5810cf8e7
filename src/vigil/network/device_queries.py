"""Read-only queries of the devices pages that the service does not offer: the filter
choices, the RTT of a page of devices for their sparklines, and a device's series over a
range, thinned to what a chart can show. Samples are read through the primary key
(device_id, metric, ts), one query per question."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.network.models import Device, Sample
from vigil.network.service import unpack_tags

RTT = "icmp.rtt_avg_ms"
RTT_MIN = "icmp.rtt_min_ms"
RTT_MAX = "icmp.rtt_max_ms"
LOSS = "icmp.loss_pct"
CPU = "snmp.cpu_pct"
MEM = "snmp.mem_pct"
IF_PREFIX = "if."
IF_RATES = (".in_bps", ".out_bps")
IF_TABLE = (".oper", ".in_bps", ".out_bps", ".in_errors", ".out_errors")
SPARK_POINTS = 60  # a sparkline of more points than pixels says nothing more
CHART_POINTS = 1000  # per series: 7 days of 60 s polls are averaged into ~10 min buckets

Point = tuple[datetime, float]


def filter_choices(session: Session) -> tuple[list[str], list[str]]:
    """The sites and the tags in use, sorted, for the filter pickers."""
    sites = session.scalars(
        select(Device.site).where(Device.site.is_not(None)).distinct().order_by(Device.site)
    ).all()
    tags: set[str] = set()
    for packed in session.scalars(select(Device.tags).where(Device.tags != "").distinct()):
        tags.update(unpack_tags(packed))
    return [s for s in sites if s], sorted(tags, key=str.lower)


def thin(points: Sequence[Point], most: int, *, peak: bool = False) -> list[Point]:
    """At most ``most`` points: consecutive runs are merged into one point at the run's
    first time, their mean (or their highest value with ``peak``, so a loss spike stays
    visible)."""
    if len(points) <= most:
        return list(points)
    size = -(-len(points) // most)  # ceil
    out: list[Point] = []
    for i in range(0, len(points), size):
        run = points[i : i + size]
        values = [v for _, v in run]
        out.append((run[0][0], max(values) if peak else sum(values) / len(values)))
    return out


def rtt_sparklines(
    session: Session, device_ids: Iterable[int], since: datetime
) -> dict[int, list[float]]:
    """Each device's average RTT since ``since``, oldest first, thinned for a sparkline."""
    ids = list(device_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Sample.device_id, Sample.ts, Sample.value)
        .where(Sample.device_id.in_(ids), Sample.metric == RTT, Sample.ts >= since)
        .order_by(Sample.device_id, Sample.ts)
    ).all()
    by_device: dict[int, list[Point]] = defaultdict(list)
    for device_id, ts, value in rows:
        by_device[device_id].append((ts, value))
    return {d: [v for _, v in thin(points, SPARK_POINTS)] for d, points in by_device.items()}


def series(
    session: Session, device_id: int, metrics: Iterable[str], start: datetime, end: datetime
) -> dict[str, list[Point]]:
    """The samples of ``metrics`` between start and end, oldest first, per metric."""
    names = list(metrics)
    out: dict[str, list[Point]] = {m: [] for m in names}
    if not names:
        return out
    rows = session.execute(
        select(Sample.metric, Sample.ts, Sample.value)
        .where(
            Sample.device_id == device_id,
            Sample.metric.in_(names),
            Sample.ts >= start,
            Sample.ts <= end,
        )
        .order_by(Sample.metric, Sample.ts)
    ).all()
    for metric, ts, value in rows:
        out[metric].append((ts, value))
    return out


def interface_names(session: Session, device_id: int, since: datetime) -> list[str]:
    """The interfaces the SNMP collector stored a rate or status of since ``since``. Names
    may hold dots (``if.eth0.100.in_bps``), so the name is what lies between the prefix and
    the known suffix."""
    metrics = session.scalars(
        select(Sample.metric)
        .where(
            Sample.device_id == device_id,
            Sample.metric.like(f"{IF_PREFIX}%"),
            Sample.ts >= since,
        )
        .distinct()
    ).all()
    names = set()
    for metric in metrics:
        for suffix in IF_TABLE:
            if metric.endswith(suffix):
                names.add(metric[len(IF_PREFIX) : -len(suffix)])
    return sorted(names, key=str.lower)


@dataclass(frozen=True)
class Latest:
    ts: datetime
    value: float


def latest(session: Session, device_id: int, metrics: Iterable[str]) -> dict[str, Latest]:
    """The newest sample of each metric (one grouped query, then one lookup of the rows)."""
    names = list(metrics)
    if not names:
        return {}
    newest = (
        select(Sample.metric, func.max(Sample.ts).label("ts"))
        .where(Sample.device_id == device_id, Sample.metric.in_(names))
        .group_by(Sample.metric)
        .subquery()
    )
    rows = session.execute(
        select(Sample.metric, Sample.ts, Sample.value)
        .join(
            newest,
            (Sample.metric == newest.c.metric) & (Sample.ts == newest.c.ts),
        )
        .where(Sample.device_id == device_id)
    ).all()
    return {metric: Latest(ts, value) for metric, ts, value in rows}
