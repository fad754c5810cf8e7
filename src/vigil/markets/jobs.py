"""Markets jobs, declared here and registered with core through the module object."""

from __future__ import annotations

from datetime import date

from vigil.core.jobs import JobContext, JobResult, JobSpec
from vigil.markets import miner
from vigil.markets.sources import SeriesKind, create_source

NBP = "nbp"
# Backfill and sync write the same series: one waits for (skips while) the other.
NBP_INGEST_LOCK = "markets.nbp-ingest"


def _date_param(ctx: JobContext, key: str) -> date | None:
    value = ctx.params.get(key)
    return date.fromisoformat(value) if value else None


def _history_start(ctx: JobContext) -> dict[SeriesKind, date]:
    return {
        SeriesKind.CURRENCY: ctx.settings.nbp_currency_start,
        SeriesKind.GOLD: ctx.settings.nbp_gold_start,
    }


def backfill(ctx: JobContext) -> JobResult:
    """Loads whatever part of [from, to] (default: the source's whole history) is missing."""
    with create_source(NBP, ctx.settings) as source:
        ranges = miner.plan(
            ctx,
            source,
            _date_param(ctx, "from"),
            _date_param(ctx, "to"),
            resume_only=False,
            history_start=_history_start(ctx),
        )
        report = miner.ingest(ctx, source, ranges)
    if report.rows == 0:
        return JobResult("skipped", 0, f"history already complete; {report.describe()}")
    return JobResult("ok", report.rows, report.describe())


def sync(ctx: JobContext) -> JobResult:
    """Fetches from the day after the last stored date to today (fills gaps after downtime)."""
    with create_source(NBP, ctx.settings) as source:
        ranges = miner.plan(
            ctx, source, None, None, resume_only=True, history_start=_history_start(ctx)
        )
        report = miner.ingest(ctx, source, ranges)
    if report.rows == 0:
        return JobResult(
            "skipped",
            0,
            f"no new quotes (weekend, holiday or not yet published); {report.describe()}",
        )
    return JobResult("ok", report.rows, report.describe())


JOBS = (
    JobSpec(
        name="markets.backfill",
        func=backfill,
        queue="ingest",
        lock=NBP_INGEST_LOCK,
        run_on_start=True,
        description="Load the full NBP history (currencies since 2002, gold since 2013).",
    ),
    JobSpec(
        name="markets.sync",
        func=sync,
        queue="ingest",
        lock=NBP_INGEST_LOCK,
        schedule="0 * * * *",
        schedule_setting="nbp_sync_cron",
        description="Fetch NBP quotes published since the last stored date.",
    ),
)
