"""Platform jobs that keep the database small: old ``jobs_log`` rows and old resolved
Alertmanager alerts (``ops_alerts``) are deleted.

Interval jobs (crypto every minute, ICMP every few seconds) write a ``skipped`` row on every
tick that finds nothing to do: thousands a day that say nothing after a while. Those go
after ``VIGIL_JOBS_LOG_SKIPPED_RETENTION_HOURS``; every other finished run after
``VIGIL_JOBS_LOG_RETENTION_DAYS``. Running rows are never touched (a run may be long; the
start-up sweep closes the ones a dead process left behind).

Alerts that Alertmanager delivered and that ended (resolved) more than
``VIGIL_OPS_ALERTS_RETENTION_DAYS`` ago go too; a firing alert is never deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from vigil.core.db import utcnow
from vigil.core.jobs import JobContext, JobResult, JobSpec
from vigil.core.models import JobLog
from vigil.core.ops_alerts import service as ops_alerts

#: Rows deleted per statement: a long-neglected table is pruned in short transactions, so
#: the job never holds SQLite's write lock (or a PostgreSQL snapshot) for long.
BATCH = 5_000
FINISHED = ("ok", "skipped", "failed")


@dataclass(frozen=True)
class Cutoffs:
    """Rows that finished before these times are deleted (None: kept forever)."""

    skipped: datetime | None
    finished: datetime | None


def cutoffs(now: datetime, retention_days: int, skipped_retention_hours: int) -> Cutoffs:
    return Cutoffs(
        skipped=now - timedelta(hours=skipped_retention_hours) if skipped_retention_hours else None,
        finished=now - timedelta(days=retention_days) if retention_days else None,
    )


def _delete_in_batches(
    ctx: JobContext, description: str, total: int, delete_batch: Callable[[Session], int]
) -> int:
    """Calls ``delete_batch`` (which deletes at most BATCH rows and says how many) in a write
    transaction of its own until a batch comes back short; progress against ``total``."""
    ctx.progress.start(description, total)
    deleted = 0
    while True:
        with ctx.db.session(write=True) as session:
            count = delete_batch(session)
        deleted += count
        ctx.progress.advance(count)
        if count < BATCH:
            break
    ctx.progress.finish()
    return deleted


def _expired(limits: Cutoffs) -> ColumnElement[bool] | None:
    parts: list[ColumnElement[bool]] = []
    if limits.skipped is not None:
        parts.append(and_(JobLog.status == "skipped", JobLog.started_at < limits.skipped))
    if limits.finished is not None:
        parts.append(and_(JobLog.status.in_(FINISHED), JobLog.started_at < limits.finished))
    return or_(*parts) if parts else None


def prune_jobs_log(ctx: JobContext) -> JobResult:
    settings = ctx.settings
    limits = cutoffs(
        utcnow(), settings.jobs_log_retention_days, settings.jobs_log_skipped_retention_hours
    )
    expired = _expired(limits)
    if expired is None:
        return JobResult("skipped", 0, "job runs are kept forever (both retentions are 0)")
    with ctx.db.session() as session:
        total = session.scalar(select(func.count()).select_from(JobLog).where(expired)) or 0
    if not total:
        return JobResult("skipped", 0, "no job run older than the retention")

    def delete_batch(session: Session) -> int:
        ids = list(
            session.scalars(select(JobLog.id).where(expired).order_by(JobLog.id).limit(BATCH))
        )
        if ids:
            session.execute(delete(JobLog).where(JobLog.id.in_(ids)))
        return len(ids)

    deleted = _delete_in_batches(ctx, "deleting old job runs", total, delete_batch)
    return JobResult("ok", 0, f"{deleted} job runs older than the retention deleted")


def prune_ops_alerts(ctx: JobContext) -> JobResult:
    days = ctx.settings.ops_alerts_retention_days
    if not days:
        return JobResult("skipped", 0, "resolved alerts are kept forever (retention 0)")
    before = utcnow() - timedelta(days=days)
    with ctx.db.session() as session:
        total = ops_alerts.count_expired(session, before)
    if not total:
        return JobResult("skipped", 0, "no resolved alert older than the retention")
    deleted = _delete_in_batches(
        ctx,
        "deleting old resolved alerts",
        total,
        lambda session: ops_alerts.delete_expired(session, before, BATCH),
    )
    return JobResult("ok", 0, f"{deleted} resolved alerts older than {days} days deleted")


JOBS = (
    JobSpec(
        "core.prune_jobs_log",
        prune_jobs_log,
        schedule="17 3 * * *",
        # A queue every deployment's workers take (the compose worker and the chart's
        # analytics Deployment), so the job has somewhere to run in the distributed mode.
        queue="analytics",
        description="Deletes old jobs_log rows (skipped runs after a day, the rest after 30 days).",
    ),
    JobSpec(
        "core.prune_ops_alerts",
        prune_ops_alerts,
        schedule="27 3 * * *",
        queue="analytics",
        description="Deletes Alertmanager alerts resolved more than "
        "VIGIL_OPS_ALERTS_RETENTION_DAYS (30) days ago.",
    ),
)
