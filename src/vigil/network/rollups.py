"""Downsampling and retention of the network samples: raw → 5 min → 1 h.

``network_rollups`` holds, per period (300 or 3600 s), device, metric and bucket start, the
average, minimum, maximum and the number of raw samples summarised. The 5 min tier is
computed from the raw samples, the 1 h tier from the 5 min one (the average weighted by the
counts, so it equals the raw average).

- **Idempotent.** A run starts again at the last bucket it wrote (its watermark: the tier's
  newest bucket) and upserts, so re-running it, or running it twice at once, writes the same
  rows. Only complete buckets are rolled up (the 5 min ones ``grace`` seconds after they
  ended, for late samples; the 1 h ones once their last 5 min bucket is written).
- **Nothing lost when killed.** One transaction per batch of buckets; the watermark only
  moves with a committed batch. Retention deletes only what the next tier already holds.
- **Same code on SQLite and PostgreSQL:** one INSERT … SELECT … GROUP BY … ON CONFLICT per
  batch; only the bucket expression differs (epoch arithmetic in each dialect).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from vigil.core.db import Database, UTCDateTime, utcnow
from vigil.network.models import Sample, SampleRollup
from vigil.settings import Settings

FIVE_MIN, HOUR = 300, 3600
RAW_DELETE_STEP = timedelta(hours=1)
ROLLUP_DELETE_STEP = timedelta(days=1)


@dataclass
class Report:
    rows: int = 0
    batches: int = 0
    deleted: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        gone = ", ".join(f"{tier} {n}" for tier, n in self.deleted.items() if n)
        return f"{self.rows} rollup rows in {self.batches} batches" + (
            f"; deleted {gone}" if gone else ""
        )


def floor_time(moment: datetime, period: int) -> datetime:
    seconds = int(moment.timestamp()) // period * period
    return datetime.fromtimestamp(seconds, UTC)


def _bucket_sql(dialect: str, column: str, period: int) -> str:
    if dialect == "postgresql":
        return f"to_timestamp(floor(extract(epoch from {column}) / {period}) * {period})"
    # SQLite keeps UTC times as 'YYYY-MM-DD HH:MM:SS.ffffff' text (SQLAlchemy's format).
    return (
        f"strftime('%Y-%m-%d %H:%M:%S.000000', "
        f"(CAST(strftime('%s', {column}) AS INTEGER) / {period}) * {period}, 'unixepoch')"
    )


def _aggregate_sql(dialect: str, period: int) -> str:
    upsert = (
        'ON CONFLICT (period, device_id, metric, bucket) DO UPDATE SET "avg" = excluded."avg", '
        '"min" = excluded."min", "max" = excluded."max", "count" = excluded."count"'
    )
    columns = (
        "INSERT INTO network_rollups "
        '(period, device_id, metric, bucket, "avg", "min", "max", "count")'
    )
    if period == FIVE_MIN:
        bucket = _bucket_sql(dialect, "ts", period)
        return (
            f"{columns} SELECT {period}, device_id, metric, {bucket} AS b, avg(value), "
            "min(value), max(value), count(*) FROM network_samples "
            "WHERE ts >= :start AND ts < :stop GROUP BY device_id, metric, b "
            f"{upsert}"
        )
    bucket = _bucket_sql(dialect, "bucket", period)
    return (
        f"{columns} SELECT {period}, device_id, metric, {bucket} AS b, "
        'sum("avg" * "count") / sum("count"), min("min"), max("max"), sum("count") '
        f"FROM network_rollups WHERE period = {FIVE_MIN} AND bucket >= :start AND bucket < :stop "
        f"GROUP BY device_id, metric, b {upsert}"
    )


def _newest_bucket(session: Session, period: int) -> datetime | None:
    return session.scalar(
        select(func.max(SampleRollup.bucket)).where(SampleRollup.period == period)
    )


def _first_source_time(session: Session, period: int, after: datetime | None) -> datetime | None:
    """The oldest source row of a tier at or after ``after`` (the next thing to roll up)."""
    if period == FIVE_MIN:
        stmt = select(func.min(Sample.ts))
        if after is not None:
            stmt = stmt.where(Sample.ts >= after)
    else:
        stmt = select(func.min(SampleRollup.bucket)).where(SampleRollup.period == FIVE_MIN)
        if after is not None:
            stmt = stmt.where(SampleRollup.bucket >= after)
    return session.scalar(stmt)


def roll_up(db: Database, period: int, end: datetime, batch_buckets: int) -> tuple[int, int]:
    """Rolls the tier of ``period`` up to ``end`` (exclusive, a bucket boundary) in
    batches, one transaction each; returns (rows written, batches)."""
    rows = batches = 0
    with db.session() as session:
        start = _newest_bucket(session, period)
        if start is None:
            first = _first_source_time(session, period, None)
            start = floor_time(first, period) if first is not None else None
    while start is not None and start < end:
        stop = min(start + timedelta(seconds=period * batch_buckets), end)
        with db.session(write=True) as session:
            dialect = session.get_bind().dialect.name
            statement = text(_aggregate_sql(dialect, period)).bindparams(
                bindparam("start", type_=UTCDateTime()), bindparam("stop", type_=UTCDateTime())
            )
            result = session.execute(statement, {"start": start, "stop": stop})
            written = max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
        rows += written
        batches += 1
        if written:
            start = stop
            continue
        # Nothing there: jump over the gap to the next source row.
        with db.session() as session:
            following = _first_source_time(session, period, stop)
        start = floor_time(following, period) if following is not None else None
    return rows, batches


def _delete_before(
    db: Database, table: str, column: str, cutoff: datetime, step: timedelta, period: int | None
) -> int:
    """Deletes the rows older than ``cutoff`` in slices of ``step``, one transaction each."""
    where_period = f" AND period = {period}" if period is not None else ""
    deleted = 0
    with db.session() as session:
        oldest = session.scalar(
            text(f"SELECT min({column}) FROM {table} WHERE 1 = 1{where_period}")
        )
    if oldest is None:
        return 0
    start = oldest if isinstance(oldest, datetime) else None
    if start is None:  # SQLite gives the text back
        start = datetime.fromisoformat(str(oldest))
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    while start < cutoff:
        stop = min(start + step, cutoff)
        with db.session(write=True) as session:
            statement = text(
                f"DELETE FROM {table} WHERE {column} < :stop{where_period}"
            ).bindparams(bindparam("stop", type_=UTCDateTime()))
            result = session.execute(statement, {"stop": stop})
            deleted += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
        start = stop
    return deleted


def run(db: Database, settings: Settings, now: datetime | None = None) -> Report:
    now = now or utcnow()
    report = Report()
    end_5m = floor_time(now - timedelta(seconds=settings.network_rollup_grace_seconds), FIVE_MIN)
    batch = settings.network_rollup_batch_buckets
    rows, batches = roll_up(db, FIVE_MIN, end_5m, batch)
    report.rows, report.batches = rows, batches
    with db.session() as session:
        newest_5m = _newest_bucket(session, FIVE_MIN)
    if newest_5m is not None:
        # A whole hour once its last 5 min bucket is there.
        end_1h = floor_time(newest_5m + timedelta(seconds=FIVE_MIN), HOUR)
        rows, batches = roll_up(db, HOUR, end_1h, max(1, batch // 12))
        report.rows += rows
        report.batches += batches
    with db.session() as session:
        newest_1h = _newest_bucket(session, HOUR)
    days = timedelta(days=1)
    if newest_5m is not None:
        # Never the newest bucket's sources: the next run computes that bucket again.
        cutoff = floor_time(
            min(now - settings.network_raw_retention_days * days, newest_5m), FIVE_MIN
        )
        report.deleted["raw"] = _delete_before(
            db, "network_samples", "ts", cutoff, RAW_DELETE_STEP, None
        )
    if newest_1h is not None:
        cutoff = floor_time(min(now - settings.network_5m_retention_days * days, newest_1h), HOUR)
        report.deleted["5m"] = _delete_before(
            db, "network_rollups", "bucket", cutoff, ROLLUP_DELETE_STEP, FIVE_MIN
        )
    cutoff = now - settings.network_1h_retention_days * days
    report.deleted["1h"] = _delete_before(
        db, "network_rollups", "bucket", cutoff, ROLLUP_DELETE_STEP, HOUR
    )
    return report
