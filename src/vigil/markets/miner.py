"""The Charon miner: fetches date ranges from a source chunk by chunk and stores each chunk in
its own transaction, so an interrupted backfill keeps every finished chunk and resumes after
the last one. After each chunk that wrote rows it publishes ``rates.ingested`` per asset."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

from vigil.core.jobs import JobContext
from vigil.markets import service
from vigil.markets.sources.base import Quote, SeriesKind, SourceClient, date_chunks

RATES_INGESTED = "rates.ingested"
PREFETCH_CHUNKS = 1  # chunks fetched ahead of the one being stored


@dataclass
class IngestReport:
    rows: int = 0
    chunks: int = 0
    ranges: dict[SeriesKind, list[tuple[date, date]]] = field(default_factory=dict)

    def describe(self) -> str:
        parts = []
        for kind, ranges in self.ranges.items():
            spans = ", ".join(f"{a}..{b}" for a, b in ranges) or "nothing missing"
            parts.append(f"{kind.value}: {spans}")
        return f"{self.rows} rows in {self.chunks} requests ({'; '.join(parts)})"


def plan(
    ctx: JobContext,
    source: SourceClient,
    start: date | None,
    end: date | None,
    *,
    resume_only: bool,
    history_start: dict[SeriesKind, date] | None = None,
) -> dict[SeriesKind, list[tuple[date, date]]]:
    """Date ranges to fetch per kind. A backfill fills both ends of the stored span; a sync
    (``resume_only``) only goes forward from the last stored date. Without ``start``, each
    kind starts at ``history_start`` (default: the source's first date)."""
    history_start = {**source.history_start, **(history_start or {})}
    today = source.latest_available_date()
    ranges: dict[SeriesKind, list[tuple[date, date]]] = {}
    with ctx.db.session() as session:
        for kind in sorted(source.kinds):
            first = start or history_start.get(kind, today)
            last = min(end or today, today)
            span = service.stored_span(session, kind)
            if resume_only and span is not None:
                first = max(first, span[1] + timedelta(days=1))
                span = None
            ranges[kind] = service.missing_ranges(span, first, last)
    return ranges


def ingest(
    ctx: JobContext, source: SourceClient, ranges: dict[SeriesKind, list[tuple[date, date]]]
) -> IngestReport:
    report = IngestReport(ranges=ranges)
    chunks = [
        (kind, a, b)
        for kind, kind_ranges in ranges.items()
        for start, end in kind_ranges
        for a, b in date_chunks(start, end, source.max_range_days)
    ]
    ctx.progress.start(f"{source.name}: loading {len(chunks)} date ranges", len(chunks))
    # The next chunk is fetched while this one is written: the source's latency and the
    # database's share of the write overlap. Chunks are still stored in order, one
    # transaction each, so an interrupted run resumes after the last stored one.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-prefetch")
    pending: deque[tuple[tuple[SeriesKind, date, date], Future[list[Quote]]]] = deque()
    upcoming = iter(chunks)

    def prefetch() -> None:
        chunk = next(upcoming, None)
        if chunk is not None:
            pending.append((chunk, pool.submit(source.fetch, *chunk)))

    try:
        for _ in range(PREFETCH_CHUNKS):
            prefetch()
        while pending:
            (kind, chunk_start, chunk_end), fetched = pending.popleft()
            quotes = fetched.result()
            prefetch()
            _store_chunk(ctx, source, report, kind, quotes, chunk_start, chunk_end)
    finally:
        # On failure, don't wait for fetches nobody will store.
        pool.shutdown(wait=False, cancel_futures=True)
    return report


def _store_chunk(
    ctx: JobContext,
    source: SourceClient,
    report: IngestReport,
    kind: SeriesKind,
    quotes: list[Quote],
    chunk_start: date,
    chunk_end: date,
) -> None:
    with ctx.db.session(write=True) as session:
        written = service.store_quotes(session, quotes, kind, source.name)
    rows = sum(w.rows for w in written)
    report.rows += rows
    report.chunks += 1
    ctx.rows_written += rows
    for w in written:
        ctx.events.publish(
            RATES_INGESTED,
            {
                "type": kind.value,
                "asset": w.code,
                "from": w.first.isoformat(),
                "to": w.last.isoformat(),
                "rows": w.rows,
                "job_id": ctx.job_id,
            },
        )
    ctx.progress.advance(1, f"{kind.value} {chunk_start}..{chunk_end}: {rows} rows")
