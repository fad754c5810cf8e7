"""Read-only queries of the devices pages that the service does not offer: the filter
choices, the RTT of a page of devices for their sparklines, a device's series over a range
averaged by the database into what a chart can show, and the newest sample of each of a
device's metrics. Samples are read through their primary key (device_id, metric, ts)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Any, Protocol

from sqlalchemy import Float, Integer, String, bindparam, cast, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from vigil.core.db import UTCDateTime
from vigil.network.models import Device, DeviceState, Sample, SampleRollup
from vigil.network.service import (
    DEFAULT_SORT,
    DeviceFilter,
    device_order,
    filter_devices,
    unpack_tags,
)
from vigil.network.snmp_polling import COUNTER32_BITS, counter_rate

RTT = "icmp.rtt_avg_ms"
RTT_MIN = "icmp.rtt_min_ms"
RTT_MAX = "icmp.rtt_max_ms"
LOSS = "icmp.loss_pct"
JITTER = "icmp.jitter_ms"
UPTIME = "snmp.uptime_s"
CPU = "snmp.cpu_pct"
MEM = "snmp.mem_pct"
IF_PREFIX = "if."
IF_RATES = (".in_bps", ".out_bps")
IF_ERRORS = (".in_errors", ".out_errors")  # Counter32: ifInErrors, ifOutErrors
IF_TABLE = (".oper", ".in_bps", ".out_bps", ".in_errors", ".out_errors")
SPARK_POINTS = 60  # a sparkline of more points than pixels says nothing more
ROLLUP_PERIOD = 300  # the 5 min tier of network.rollup (3600: the 1 h tier)
CHART_POINTS = 600  # per series (a chart is ~1,200 px wide): a week in 17 min steps

Bucket = tuple[int, float, float]  # (epoch seconds, mean, highest)


def filter_choices(session: Session) -> tuple[list[str], list[str]]:
    """The sites and the tags in use, sorted, for the filter pickers."""
    sites = session.scalars(
        select(Device.site).where(Device.site.is_not(None)).distinct().order_by(Device.site)
    ).all()
    tags: set[str] = set()
    for packed in session.scalars(select(Device.tags).where(Device.tags != "").distinct()):
        tags.update(unpack_tags(packed))
    return [s for s in sites if s], sorted(tags, key=str.lower)


@dataclass(frozen=True)
class TableRow:
    """What a row of the devices table shows of a device and its state (no ORM object:
    building 200 devices with every column, the maintenance JSON and the state row cost
    more than the rest of the table's queries)."""

    id: int
    name: str
    address: str
    type: str
    site: str | None
    tags: str  # packed: ",core,lab,"
    enabled: bool
    created_at: datetime
    status: str  # "unknown" without a state row
    last_rtt_ms: float | None
    last_loss_pct: float | None
    last_poll_at: datetime | None


_TABLE_COLUMNS = (
    Device.id,
    Device.name,
    Device.address,
    Device.type,
    Device.site,
    Device.tags,
    Device.enabled,
    Device.created_at,
    func.coalesce(DeviceState.status, "unknown"),
    DeviceState.last_rtt_ms,
    DeviceState.last_loss_pct,
    DeviceState.last_poll_at,
)


def table_rows(
    session: Session, flt: DeviceFilter, limit: int, offset: int, sort: str = DEFAULT_SORT
) -> tuple[list[TableRow], int]:
    """One page of the devices table in the order of ``sort`` (``service.device_order``:
    name by default; the state's columns come from the join the rows need anyway) with the
    columns it shows, as ``service.list_devices`` filters them, and how many devices match;
    one query (the total rides along as a window count) unless the page is past the last
    one."""
    stmt = select(*_TABLE_COLUMNS, func.count().over()).outerjoin(
        DeviceState, DeviceState.device_id == Device.id
    )
    stmt = filter_devices(stmt, flt)
    found: Sequence[Any] = session.execute(
        stmt.order_by(*device_order(sort)).limit(limit).offset(offset)
    ).all()
    if not found:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        return [], total
    return [TableRow(*row[:-1]) for row in found], found[0][-1]


# A page of devices' RTTs from a moment on, in time order, with the samples' times as keys
# that are cheap to read and compare: seconds since the epoch from PostgreSQL (a datetime
# each cost more than the query), the stored text from SQLite (never parsed). PostgreSQL
# gives one row a device: a lateral index range scan each, aggregated into arrays (an IN
# list over 12,000 rows needed a bitmap scan and a sort), fetched in binary. On SQLite the
# primary key (device_id, metric, ts) gives the rows in this order. Both on the driver's
# cursor: SQLAlchemy's handling of 12,000 rows cost as much as the query. The arrays are
# aggregated from a subquery in time order (the primary key's order: no sort), not with
# array_agg(… ORDER BY ts), which sorted each device's rows again (a third of the query).
# PostgreSQL aggregates a sorted subquery's rows in its order when nothing is joined at the
# aggregate's level (the form its documentation gives); the pages' tests check the order.
_SPARK_PG = """
    SELECT d.id, s.k, s.v
      FROM unnest(%(ids)s::integer[]) AS d(id),
           LATERAL (SELECT array_agg(date_part('epoch', w.ts)) AS k, array_agg(w.value) AS v
                      FROM (SELECT ts, value FROM network_samples
                             WHERE device_id = d.id AND metric = %(metric)s AND ts >= %(from)s
                             ORDER BY ts) AS w) AS s
     WHERE s.v IS NOT NULL
"""
_SPARK_SQLITE = """
    SELECT device_id, ts, value FROM network_samples
     WHERE device_id IN ({listed}) AND metric = ? AND ts >= ?
     ORDER BY device_id, ts
"""
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a UTC time in SQLite
SPARK_LAG = timedelta(minutes=5)  # a sample is stored at most this long after its time


@dataclass(frozen=True)
class RttWindow:
    """A device's RTT samples of the sparkline's window: times (as the driver gives them)
    and values, oldest first; complete up to ``read_at - SPARK_LAG``."""

    keys: tuple[Any, ...]
    values: tuple[float, ...]
    read_at: datetime


class RttWindows:
    """The sparklines' windows kept between requests, so that a refresh of the table reads
    only the samples of the last few minutes (SPARK_LAG) instead of the whole hour again
    (12,000 rows for 200 devices, a third of the table's time). Keyed by the database, the
    device id and its creation time (an id used again after a delete is another device);
    the newest ``most`` devices are kept. Samples are never changed once written, and a
    device's samples arrive in time order (one poll at a time), so the windows stay true;
    a sample stored more than SPARK_LAG after its time would be missed until it leaves the
    window."""

    def __init__(self, most: int = 10_000) -> None:
        self.most = most
        self._held: OrderedDict[tuple[str, int, datetime], RttWindow] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[str, int, datetime]) -> RttWindow | None:
        with self._lock:
            return self._held.get(key)

    def put(self, windows: dict[tuple[str, int, datetime], RttWindow]) -> None:
        with self._lock:
            for key, window in windows.items():
                self._held[key] = window
                self._held.move_to_end(key)
            while len(self._held) > self.most:
                self._held.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._held.clear()


RTT_WINDOWS = RttWindows()


Series = tuple[list[Any], list[float]]  # a device's sample keys and values, oldest first


def _read_rtts(session: Session, ids: list[int], start: datetime) -> dict[int, Series]:
    """Each device's RTT samples from ``start`` on."""
    if session.get_bind().dialect.name == "postgresql":
        params = {"ids": ids, "metric": RTT, "from": start}
        return {d: (keys, values) for d, keys, values in _pg_rows(session, _SPARK_PG, params)}
    found: dict[int, Series] = {}  # not _columns: its general loop cost ~6 ms on 12,000 rows
    for device_id, key, value in _sqlite_rows(
        session, _SPARK_SQLITE, ids, (*ids, RTT, _key(session, start))
    ):
        if (series := found.get(device_id)) is None:
            series = found[device_id] = ([], [])
        series[0].append(key)
        series[1].append(value)
    return found


def _key(session: Session, moment: datetime) -> Any:
    """A time as _read_rtts gives it: epoch seconds (PostgreSQL), stored text (SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return moment.timestamp()
    return moment.astimezone(UTC).strftime(SQLITE_TIME)


class Shown(Protocol):
    """A device as the sparklines know it: a ``Device`` or a ``TableRow``."""

    @property
    def id(self) -> int: ...

    @property
    def created_at(self) -> datetime: ...


def rtt_sparklines(
    session: Session,
    devices: Iterable[Shown],
    since: datetime,
    now: datetime,
    windows: RttWindows = RTT_WINDOWS,
) -> dict[int, list[float]]:
    """Each device's average RTT since ``since``, oldest first, thinned for a sparkline.
    Devices whose window is held are read from ``now - SPARK_LAG`` on (or from where
    their window was last read), the others from ``since``; one query each."""
    database = str(session.get_bind().engine.url)
    keys = {d.id: (database, d.id, d.created_at) for d in devices}
    held = {d: w for d, key in keys.items() if (w := windows.get(key)) and w.read_at > since}
    fresh = [d for d in keys if d not in held]
    new_rows = _read_rtts(session, fresh, since) if fresh else {}
    if held:
        start = max(since, min(w.read_at for w in held.values()) - SPARK_LAG)
        new_rows.update(_read_rtts(session, list(held), start))
    cut = _key(session, since)
    out: dict[int, list[float]] = {}
    kept: dict[tuple[str, int, datetime], RttWindow] = {}
    for device_id, key in keys.items():
        new_keys, new_values = new_rows.get(device_id, ([], []))
        if (window := held.get(device_id)) is not None and window.keys:
            skip = bisect_right(new_keys, window.keys[-1])  # those it holds already
            new_keys = [*window.keys, *new_keys[skip:]]
            new_values = [*window.values, *new_values[skip:]]
        first = bisect_left(new_keys, cut)
        values = new_values[first:]
        kept[key] = RttWindow(tuple(new_keys[first:]), tuple(values), now)
        if values:
            out[device_id] = _thin_values(values, SPARK_POINTS)
    windows.put(kept)
    return out


def _thin_values(values: Sequence[float], most: int) -> list[float]:
    if len(values) <= most:
        return list(values)
    size = -(-len(values) // most)
    return [
        sum(run) / len(run) for run in (values[i : i + size] for i in range(0, len(values), size))
    ]


def bucket_seconds(start: datetime, end: datetime, most: int = CHART_POINTS) -> int:
    """The width of the time buckets that give at most ``most`` points over the range."""
    return max(1, -(-int((end - start).total_seconds()) // most))


def step_seconds(start: datetime, end: datetime, tier: int | None = None) -> int:
    """A chart's step: at most CHART_POINTS over the range, and with a rollup ``tier`` a
    whole number of its periods (a 5 min bucket is never split over two steps)."""
    width = bucket_seconds(start, end)
    return width if tier is None else -(-width // tier) * tier


def _epoch(session: Session, column: Any) -> ColumnElement[Any]:
    """A time column in seconds since the epoch, per dialect: on PostgreSQL a float
    (``date_part``; ``extract`` gives a numeric, whose arithmetic over 28,000 rollup rows
    took ~10 ms), on SQLite an integer from its text timestamps."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_part("epoch", column, type_=Float())
    return cast(func.strftime("%s", column), Integer)


def _epoch_bucket(session: Session, column: Any, width: int) -> ColumnElement[Any]:
    """A time column's bucket number (seconds since the epoch // width), per dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.floor(_epoch(session, column) / width)
    return _epoch(session, column) // width


def rollup_watermark(session: Session, period: int = ROLLUP_PERIOD) -> datetime | None:
    """Where the rollup tier ends: its newest bucket's end (None before its first run)."""
    newest = session.scalar(
        select(func.max(SampleRollup.bucket)).where(SampleRollup.period == period)
    )
    return None if newest is None else newest + timedelta(seconds=period)


def chart_series(
    session: Session,
    device_id: int,
    metrics: Iterable[str],
    start: datetime,
    end: datetime,
    *,
    tier: int | None = None,
) -> dict[str, list[Bucket]]:
    """Per metric, the samples between start and end averaged by the database into time
    steps (``step_seconds``: 7 days of 60 s polls are 10,080 rows a metric, a chart gets
    at most 600 points): (step start in epoch seconds, mean, highest), oldest first.

    With a rollup ``tier`` (300 or 3600: ``network_rollups.period``) the range is read from
    that tier up to its watermark (raw samples older than the raw retention exist only
    there; a week of the 1 h tier is 168 rows a metric, read as they are, one a step) and
    from the raw samples after it, which the rollup job has not reached yet."""
    names = list(metrics)
    out: dict[str, list[Bucket]] = {m: [] for m in names}
    if not names:
        return out
    width = step_seconds(start, end, tier)
    counts: dict[str, float] = {}  # each metric's last rolled-up step's sample count
    raw_from = start
    if tier and (watermark := rollup_watermark(session, tier)) is not None and watermark > start:
        raw_from = watermark
        if width == tier and session.get_bind().dialect.name == "postgresql":
            rows = _rollup_arrays(session, tier, device_id, names, start, watermark)
            for metric, keys, means, peaks, last in rows:
                out[metric] = [
                    (int(t) // width * width, m, h)
                    for t, m, h in zip(keys, means, peaks, strict=True)
                ]
                counts[metric] = float(last)
        else:
            steps = _rollup_steps(session, tier, device_id, names, start, watermark, width)
            for metric, number, mean, peak, count in steps:
                out[metric].append((int(number) * width, float(mean), float(peak)))
                counts[metric] = float(count)
    raw = session.connection().execute(_raw_steps(session, device_id, names, raw_from, end, width))
    for metric, number, mean, peak, count in raw:
        t, points = int(number) * width, out[metric]
        if points and points[-1][0] == t:  # the step the watermark cuts: both parts, weighted
            _, old_mean, old_peak = points[-1]
            old = counts[metric]
            both = (old_mean * old + float(mean) * count) / (old + count)
            points[-1] = (t, both, max(old_peak, float(peak)))
        else:
            points.append((t, float(mean), float(peak)))
    return out


def _rollup_steps(
    session: Session,
    tier: int,
    device_id: int,
    names: list[str],
    start: datetime,
    watermark: datetime,
    width: int,
) -> Any:
    """(metric, step number, mean, highest, count) of the rollup tier, per metric and step
    (``width`` a whole number of the tier's periods)."""
    where = (
        SampleRollup.period == tier,
        SampleRollup.device_id == device_id,
        SampleRollup.metric.in_(names),
        SampleRollup.bucket >= start,
        SampleRollup.bucket < watermark,
    )
    if width == tier:  # one bucket a step: no grouping
        stmt = select(
            SampleRollup.metric,
            cast(_epoch(session, SampleRollup.bucket), Integer) // width,
            SampleRollup.avg,
            SampleRollup.max,
            SampleRollup.count,
        ).order_by(SampleRollup.metric, SampleRollup.bucket)
    else:
        step = _epoch_bucket(session, SampleRollup.bucket, width).label("step")
        weight = func.sum(SampleRollup.count)
        stmt = (
            select(
                SampleRollup.metric,
                step,
                func.sum(SampleRollup.avg * SampleRollup.count) / weight,
                func.max(SampleRollup.max),
                weight,
            )
            .group_by(SampleRollup.metric, step)
            .order_by(SampleRollup.metric, step)
        )
    return session.connection().execute(stmt.where(*where))


# PostgreSQL, one bucket a step (the 24 h and 7 d charts): each metric's buckets as arrays,
# one row a metric (a scan of the primary key's range each, in its order: no sort), fetched
# in binary on the driver's cursor. As 4,000 rows (24 h, 14 series) through SQLAlchemy the
# fetch and the rows' handling took 8 ms, 2.5 times this. In time order as _SPARK_PG is.
_ROLLUP_ARRAYS_PG = """
    SELECT m.metric, r.k, r.a, r.x, r.last
      FROM unnest(%(names)s::text[]) AS m(metric),
           LATERAL (SELECT array_agg(w.k) AS k, array_agg(w.avg) AS a, array_agg(w.max) AS x,
                           (array_agg(w.count))[count(*)] AS last
                      FROM (SELECT date_part('epoch', bucket) AS k, avg, max, count
                              FROM network_rollups
                             WHERE period = %(period)s AND device_id = %(device)s
                               AND metric = m.metric AND bucket >= %(start)s AND bucket < %(stop)s
                             ORDER BY bucket) AS w) AS r
     WHERE r.k IS NOT NULL
"""


def _rollup_arrays(
    session: Session,
    tier: int,
    device_id: int,
    names: list[str],
    start: datetime,
    watermark: datetime,
) -> list[tuple[str, list[float], list[float], list[float], int]]:
    """Per metric of the tier's range: its buckets' starts (epoch seconds), means and
    highest values, oldest first, and the newest bucket's sample count (PostgreSQL)."""
    params = {
        "names": names,
        "period": tier,
        "device": device_id,
        "start": start,
        "stop": watermark,
    }
    rows: list[tuple[str, list[float], list[float], list[float], int]]
    rows = _pg_rows(session, _ROLLUP_ARRAYS_PG, params)
    return rows


# PostgreSQL: the raw samples of each metric by its own primary key range (device, metric,
# ts), a lateral scan a metric. With a plain ``metric IN (…)`` the planner, misled by one
# device holding most rows (the benchmark's week), walked the time index through the last
# hour of every device (28 ms for a 1 h tail). OFFSET 0 keeps the planner from flattening
# the lateral subquery into that same plan.
_RAW_STEPS_PG = text(
    """
    SELECT m.metric, floor(date_part('epoch', s.ts) / :width) AS step,
           avg(s.value), max(s.value), count(*)
      FROM unnest(CAST(:names AS text[])) AS m(metric)
      JOIN LATERAL (SELECT ts, value FROM network_samples
                     WHERE device_id = :device AND metric = m.metric
                       AND ts >= :start AND ts <= :end
                    OFFSET 0) AS s ON true
     GROUP BY m.metric, step
     ORDER BY m.metric, step
    """
).bindparams(
    bindparam("start", type_=UTCDateTime()),
    bindparam("end", type_=UTCDateTime()),
)


def _raw_steps(
    session: Session, device_id: int, names: list[str], start: datetime, end: datetime, width: int
) -> Any:
    """(metric, step number, mean, highest, count) of the raw samples, per metric and step."""
    if session.get_bind().dialect.name == "postgresql":
        params = {"names": names, "device": device_id, "start": start, "end": end}
        return _RAW_STEPS_PG.bindparams(width=float(width)).params(params)
    step = _epoch_bucket(session, Sample.ts, width).label("step")
    return (
        select(Sample.metric, step, func.avg(Sample.value), func.max(Sample.value), func.count())
        .where(
            Sample.device_id == device_id,
            Sample.metric.in_(names),
            Sample.ts >= start,
            Sample.ts <= end,
        )
        .group_by(Sample.metric, step)
        .order_by(Sample.metric, step)
    )


@dataclass(frozen=True)
class Latest:
    ts: datetime
    value: float


# The distinct metrics of a device under a prefix, by skipping through the primary key
# (device_id, metric, ts) one metric at a time: an index seek each, however many samples a
# metric has (a DISTINCT would read them all). Then each one's newest sample, by seeks too.
# "prefix" < metric < "prefix_end" (the prefix with its last character incremented).
_NEWEST = text(
    """
    WITH RECURSIVE m(metric) AS (
        SELECT MIN(metric) FROM network_samples
         WHERE device_id = :device AND metric >= :prefix AND metric < :prefix_end
        UNION ALL
        SELECT (SELECT MIN(metric) FROM network_samples
                 WHERE device_id = :device AND metric > m.metric AND metric < :prefix_end)
          FROM m WHERE m.metric IS NOT NULL
    )
    SELECT m.metric,
           (SELECT s.ts FROM network_samples s WHERE s.device_id = :device
             AND s.metric = m.metric ORDER BY s.ts DESC LIMIT 1) AS ts,
           (SELECT s.value FROM network_samples s WHERE s.device_id = :device
             AND s.metric = m.metric ORDER BY s.ts DESC LIMIT 1) AS value
      FROM m WHERE m.metric IS NOT NULL
    """
).columns(metric=String(), ts=UTCDateTime(), value=Float())


def newest(session: Session, device_id: int, prefix: str) -> dict[str, Latest]:
    """Every metric of the device that starts with ``prefix``, with its newest sample."""
    prefix_end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    rows = session.execute(
        _NEWEST, {"device": device_id, "prefix": prefix, "prefix_end": prefix_end}
    ).all()
    return {metric: Latest(ts, value) for metric, ts, value in rows if ts is not None}


def interface_name(metric: str) -> str | None:
    """``if.eth0.100.in_bps`` -> ``eth0.100``: names may hold dots, so the name is what
    lies between the prefix and a known suffix."""
    for suffix in IF_TABLE:
        if metric.startswith(IF_PREFIX) and metric.endswith(suffix):
            return metric[len(IF_PREFIX) : -len(suffix)]
    return None


# --- interface errors per second ------------------------------------------------------------


def error_rates(
    session: Session,
    device_id: int,
    counters: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    tier: int | None = None,
    lookback: int = 600,
) -> dict[str, list[Bucket]]:
    """Per error counter (``if.<name>.in_errors``/``out_errors``, stored as the agent's
    Counter32 values), its growth per second in the steps of ``chart_series``: (step start,
    mean, highest) of the rates in the step, oldest first.

    The raw samples give a rate per poll as ``snmp_polling`` computes the traffic rates
    (``counter_rate``: a counter lower than before wrapped at 2**32; none across an agent
    restart, seen by ``snmp.uptime_s`` going back), each poll against the one before it
    (read from ``lookback`` seconds before the range). With a rollup ``tier`` the range up
    to its watermark comes from the tier's buckets (``_tier_rates``), the raw samples after
    it as above."""
    out: dict[str, list[Bucket]] = {m: [] for m in counters}
    if not counters:
        return out
    width = step_seconds(start, end, tier)
    rates: dict[str, list[tuple[float, float]]] = {m: [] for m in counters}  # (time, rate)
    raw_from = start
    if tier and (watermark := rollup_watermark(session, tier)) is not None and watermark > start:
        raw_from = watermark
        _tier_rates(session, tier, device_id, counters, start, watermark, rates)
    _raw_rates(session, device_id, counters, raw_from, end, lookback, rates)
    for metric, points in rates.items():  # in time order: the tier's, then the raw ones
        steps: list[Bucket] = []
        count = 0  # the rates in the last step
        for at, rate in points:
            t = int(at) // width * width
            if steps and steps[-1][0] == t:
                _, mean, high = steps[-1]
                steps[-1] = (t, (mean * count + rate) / (count + 1), max(high, rate))
                count += 1
            else:
                steps.append((t, rate, rate))
                count = 1
        out[metric] = steps
    return out


# PostgreSQL: each metric's rows by its own primary key range, a lateral scan a metric, as
# arrays in time order on the driver's cursor (as _SPARK_PG and _ROLLUP_ARRAYS_PG; with a
# ``metric IN (…)`` the planner walked the time index through every device's rows).
_COUNTERS_RAW_PG = """
    SELECT m.metric, r.k, r.v
      FROM unnest(%(names)s::text[]) AS m(metric),
           LATERAL (SELECT array_agg(w.k) AS k, array_agg(w.value) AS v
                      FROM (SELECT date_part('epoch', ts) AS k, value FROM network_samples
                             WHERE device_id = %(device)s AND metric = m.metric
                               AND ts >= %(start)s AND ts <= %(stop)s
                             ORDER BY ts) AS w) AS r
     WHERE r.k IS NOT NULL
"""
_COUNTERS_TIER_PG = """
    SELECT m.metric, r.k, r.lo, r.hi
      FROM unnest(%(names)s::text[]) AS m(metric),
           LATERAL (SELECT array_agg(w.k) AS k, array_agg(w.min) AS lo, array_agg(w.max) AS hi
                      FROM (SELECT date_part('epoch', bucket) AS k, min, max
                              FROM network_rollups
                             WHERE period = %(period)s AND device_id = %(device)s
                               AND metric = m.metric AND bucket >= %(start)s AND bucket < %(stop)s
                             ORDER BY bucket) AS w) AS r
     WHERE r.k IS NOT NULL
"""


# SQLite: the same rows on the driver's cursor (SQLAlchemy's handling of ~2,500 rows cost
# more than the query), the times as epoch seconds with their fraction.
_COUNTERS_RAW_SQLITE = """
    SELECT metric, CAST(strftime('%s', ts) AS INTEGER) + CAST(substr(ts, 20) AS REAL), value
      FROM network_samples
     WHERE device_id = ? AND metric IN ({listed}) AND ts >= ? AND ts <= ?
     ORDER BY metric, ts
"""
_COUNTERS_TIER_SQLITE = """
    SELECT metric, CAST(strftime('%s', bucket) AS INTEGER), "min", "max" FROM network_rollups
     WHERE period = ? AND device_id = ? AND metric IN ({listed}) AND bucket >= ? AND bucket < ?
     ORDER BY metric, bucket
"""


def _pg_rows(session: Session, sql: str, params: dict[str, Any]) -> Any:
    """``sql``'s rows on psycopg's own cursor, fetched in binary, in the session's
    transaction (the arrays of the queries above, without SQLAlchemy's row handling)."""
    driver: Any = session.connection().connection.dbapi_connection
    with driver.cursor() as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def _arrays(session: Session, sql: str, params: dict[str, Any]) -> dict[str, tuple[list[Any], ...]]:
    return {row[0]: tuple(row[1:]) for row in _pg_rows(session, sql, params)}


def _sqlite_rows(session: Session, sql: str, listed: Sequence[Any], params: tuple[Any, ...]) -> Any:
    """``sql``'s rows on sqlite3's own cursor in the session's transaction, its ``{listed}``
    made one ``?`` per item of ``listed`` (those items are in ``params``)."""
    driver: Any = session.connection().connection.dbapi_connection
    cursor = driver.cursor()
    try:
        cursor.execute(sql.format(listed=",".join("?" * len(listed))), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _columns(rows: Iterable[Any]) -> dict[Any, tuple[list[Any], ...]]:
    """Rows (key, a, b, …) in key order as columns per key: key -> ([a…], [b…])."""
    out: dict[Any, tuple[list[Any], ...]] = {}
    for metric, *values in rows:
        if (columns := out.get(metric)) is None:
            columns = out[metric] = tuple([] for _ in values)
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return out


def _raw_counters(
    session: Session, device_id: int, names: list[str], start: datetime, end: datetime
) -> dict[str, tuple[list[Any], ...]]:
    """Per metric: its samples' times (epoch seconds) and values, oldest first."""
    if session.get_bind().dialect.name == "postgresql":
        params = {"names": names, "device": device_id, "start": start, "stop": end}
        return _arrays(session, _COUNTERS_RAW_PG, params)
    bounds = (device_id, *names, _key(session, start), _key(session, end))
    return _columns(_sqlite_rows(session, _COUNTERS_RAW_SQLITE, names, bounds))


def _tier_counters(
    session: Session,
    tier: int,
    device_id: int,
    names: list[str],
    start: datetime,
    watermark: datetime,
) -> dict[str, tuple[list[Any], ...]]:
    """Per metric: its buckets' starts (epoch seconds), lowest and highest values."""
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "names": names,
            "period": tier,
            "device": device_id,
            "start": start,
            "stop": watermark,
        }
        return _arrays(session, _COUNTERS_TIER_PG, params)
    bounds = (tier, device_id, *names, _key(session, start), _key(session, watermark))
    return _columns(_sqlite_rows(session, _COUNTERS_TIER_SQLITE, names, bounds))


def _raw_rates(
    session: Session,
    device_id: int,
    counters: Sequence[str],
    start: datetime,
    end: datetime,
    lookback: int,
    rates: dict[str, list[tuple[float, float]]],
) -> None:
    """Each poll's rate from the raw samples (those after ``start``), appended to ``rates``."""
    found = _raw_counters(
        session, device_id, [*counters, UPTIME], start - timedelta(seconds=lookback), end
    )
    times, values = found.pop(UPTIME, ([], []))
    uptime = dict(zip(times, values, strict=True))
    first = start.timestamp()
    for metric, (times, values) in found.items():
        for k in range(1, len(times)):
            at, before = times[k], times[k - 1]
            if at < first:
                continue
            # Without the uptime of both polls a restart cannot be seen: none is assumed.
            up_before, up_now = uptime.get(before), uptime.get(at)
            if up_before is None or up_now is None:
                up_before = up_now = 0.0
            rate = counter_rate(
                values[k - 1],
                up_before,
                datetime.fromtimestamp(before, UTC),
                values[k],
                up_now,
                datetime.fromtimestamp(at, UTC),
                COUNTER32_BITS,
            )
            if rate is not None:
                rates[metric].append((at, rate))


def _tier_rates(
    session: Session,
    tier: int,
    device_id: int,
    counters: Sequence[str],
    start: datetime,
    watermark: datetime,
    rates: dict[str, list[tuple[float, float]]],
) -> None:
    """Each bucket's rate from the rollup tier (the bucket before the range as the first
    one's base), appended to ``rates`` at the bucket's start.

    A bucket keeps a counter's lowest and highest value: without a wrap in it they are its
    first and last. The rate of a bucket is its growth from the previous one's end (``end``:
    its last value as far as it is known) over the time between the two buckets' starts:
    - lowest >= end: no wrap, growth highest - end; its end is its highest;
    - highest < end: it wrapped before the bucket's first poll (every value of the bucket is
      past the wrap), growth highest + 2**32 - end; its end is its highest;
    - otherwise it wrapped inside the bucket: growth lowest + 2**32 - end (up to its first
      value past the wrap, the lowest), and its end is that lowest value, so what it grew
      after that counts in the next bucket (the sum over both is exact, the split is not).
    No rate for a bucket whose lowest uptime is below the highest of the uptime's bucket
    before it (the agent restarted: its counters started again), as ``counter_rate``
    refuses a restart.
    """
    found = _tier_counters(
        session, tier, device_id, [*counters, UPTIME], start - timedelta(seconds=tier), watermark
    )
    times, lows, highs = found.pop(UPTIME, ([], [], []))
    restarted = {  # the buckets whose lowest uptime is below the previous one's highest
        int(times[k]) for k in range(1, len(times)) if lows[k] < highs[k - 1]
    }
    wrap = float(2**COUNTER32_BITS)
    for metric, (times, lows, highs) in found.items():
        before_t, end_value = int(times[0]), highs[0]  # the bucket before the range's first
        for epoch, low, high in zip(times[1:], lows[1:], highs[1:], strict=True):
            t = int(epoch)
            if t in restarted:
                before_t, end_value = t, high  # restarted: no rate
                continue
            if low >= end_value:
                growth, end_value = high - end_value, high
            elif high < end_value:
                growth, end_value = high + wrap - end_value, high
            else:
                growth, end_value = low + wrap - end_value, low
            rates[metric].append((float(t), growth / (t - before_t)))
            before_t = t
