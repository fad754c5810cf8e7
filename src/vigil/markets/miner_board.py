"""What the Miner page shows: the markets jobs' recent runs (jobs_log), per job its counts and
last success, per source its last successful run and last stored price, and the upcoming
schedule. Reads through core's job bookkeeping and scheduling; writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.core.jobs import JobRegistry, JobTypeStats, job_type_stats
from vigil.core.models import JobLog
from vigil.core.scheduling import Upcoming, upcoming_runs
from vigil.markets import configured_sources
from vigil.markets.jobs import COINGECKO, NBP
from vigil.markets.models import Asset, Price
from vigil.settings import Settings

PREFIX = "markets."
#: The source each ingest job fetches from (the other jobs read stored prices only).
JOB_SOURCES = {"markets.backfill": NBP, "markets.sync": NBP, "markets.crypto.poll": COINGECKO}
RUN_COUNTS = (20, 50, 100, 200)
DEFAULT_RUNS = 50
CHART_RUNS = 500  # runs drawn in the "rows per run" chart


@dataclass(frozen=True)
class JobSummary:
    stats: JobTypeStats
    source: str | None


@dataclass(frozen=True)
class SourceSummary:
    name: str
    jobs: list[str]
    last_success_at: datetime | None  # newest successful run of its jobs
    last_fetched_at: datetime | None  # newest price stored from it


@dataclass(frozen=True)
class MinerBoard:
    job: str | None  # the job picked, None for all
    runs: list[JobLog]  # newest first
    chart_runs: list[JobLog]  # newest first, for the chart
    jobs: list[JobSummary]
    sources: list[SourceSummary]
    upcoming: list[Upcoming]
    now: datetime


def job_names(registry: JobRegistry) -> list[str]:
    return sorted(spec.name for spec in registry if spec.name.startswith(PREFIX))


def runs_of(session: Session, job: str | None, limit: int) -> list[JobLog]:
    """The newest ``limit`` runs of one job (exactly that name), or of every markets job."""
    stmt = select(JobLog)
    if job is None:
        stmt = stmt.where(JobLog.job_type.startswith(PREFIX, autoescape=True))
    else:
        stmt = stmt.where(JobLog.job_type == job)
    return list(session.scalars(stmt.order_by(JobLog.id.desc()).limit(limit)))


def last_fetch_by_source(session: Session) -> dict[str, datetime]:
    """When a price was last stored from each source: the fetch time of each asset's
    newest price, found through the primary key (asset, ts); a max over every price row
    took 70 ms on SQLite with the full NBP history. (A correction of an older day, stored
    later, is not seen here; the jobs table shows that run.)"""
    newest_ts = (
        select(func.max(Price.ts)).where(Price.asset_id == Asset.id).correlate(Asset)
    ).scalar_subquery()
    stmt = select(Price.source, Price.fetched_at).join(
        Asset, (Price.asset_id == Asset.id) & (Price.ts == newest_ts)
    )
    fetched: dict[str, datetime] = {}
    for source, at in session.execute(stmt):
        if source not in fetched or at > fetched[source]:
            fetched[source] = at
    return fetched


def source_summaries(session: Session, jobs: list[JobSummary]) -> list[SourceSummary]:
    fetched = last_fetch_by_source(session)
    names = sorted(set(JOB_SOURCES.values()) | set(fetched))
    out = []
    for name in names:
        own = [j for j in jobs if j.source == name]
        successes = [j.stats.last_success_at for j in own if j.stats.last_success_at]
        out.append(
            SourceSummary(
                name=name,
                jobs=sorted(k for k, v in JOB_SOURCES.items() if v == name),
                last_success_at=max(successes) if successes else None,
                last_fetched_at=fetched.get(name),
            )
        )
    return out


def miner_board(
    session: Session,
    registry: JobRegistry,
    settings: Settings,
    job: str | None,
    limit: int,
    now: datetime | None = None,
) -> MinerBoard:
    now = now or datetime.now(UTC)
    runs = runs_of(session, job, max(limit, CHART_RUNS))
    jobs = [JobSummary(s, JOB_SOURCES.get(s.job_type)) for s in job_type_stats(session, PREFIX)]
    overrides = configured_sources.schedule_overrides(session)
    upcoming = upcoming_runs(registry, settings, PREFIX, 3, now=now, overrides=overrides)
    return MinerBoard(
        job=job,
        runs=runs[:limit],
        chart_runs=runs[:CHART_RUNS],
        jobs=jobs,
        sources=source_summaries(session, jobs),
        upcoming=upcoming,
        now=now,
    )
