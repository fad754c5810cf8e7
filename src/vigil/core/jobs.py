"""The job registry and runner.

A job is declared next to its module's code (name, function, cron schedule) and registered
with core through the module object. Every run writes exactly one ``jobs_log`` row: it is
inserted as ``running`` when the run starts and closed as ``ok``, ``skipped`` or ``failed``.
A run that finds the same job already running is recorded as ``skipped`` and does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from prometheus_client import Counter, Histogram
from sqlalchemy import case, func, select, type_coerce, update
from sqlalchemy.orm import Session

from vigil.core.db import Database, UTCDateTime, utcnow
from vigil.core.events import EventBus
from vigil.core.locks import job_lock
from vigil.core.models import JobLog
from vigil.core.progress import NullProgress, Progress
from vigil.settings import Settings

log = logging.getLogger(__name__)

JobStatus = Literal["running", "ok", "skipped", "failed"]

# The label is `job_type`, not `job`: Prometheus sets `job` on every scraped series itself
# (the scrape job), and would rename ours to `exported_job`.
JOB_RUNS = Counter(
    "vigil_jobs_runs_total", "Job runs by job type and final status.", ["job_type", "status"]
)
JOB_DURATION = Histogram(
    "vigil_jobs_duration_seconds",
    "Job run duration by job and final status.",
    ["job_type", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)


@dataclass
class JobResult:
    status: Literal["ok", "skipped"] = "ok"
    rows_written: int = 0
    message: str = ""


@dataclass
class JobContext:
    """What a job function gets: its run id and parameters, and the platform services."""

    job_id: int
    name: str
    params: dict[str, Any]
    db: Database
    settings: Settings
    events: EventBus
    progress: Progress
    rows_written: int = 0  # jobs add committed rows as they go, so a failure reports them
    enqueue: Callable[[str, dict[str, Any]], None] | None = None  # run another job later

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"vigil.jobs.{self.name}")


JobFunction = Callable[[JobContext], JobResult]


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: JobFunction
    schedule: str | None = None  # cron expression (UTC), None = on demand only
    queue: str = "default"
    run_on_start: bool = False
    description: str = ""
    schedule_setting: str | None = None  # Settings field that overrides `schedule`
    #: Settings field holding an interval in seconds: the job runs that often (for
    #: schedules finer than cron's minute, e.g. a poll every 30 s), instead of `schedule`.
    interval_setting: str | None = None
    #: Jobs sharing a lock never run at the same time (default: the job's own name).
    lock: str | None = None
    #: Combines the parameters of two pending runs into one (queued jobs coalesce).
    merge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    #: A queued run waits until no new request came for this long (a burst of events
    #: becomes one run), but never longer than ``max_delay_seconds`` after the first one.
    settle_seconds: float = 0.0
    max_delay_seconds: float = 0.0

    @property
    def lock_name(self) -> str:
        return f"job:{self.lock or self.name}"

    def interval(self, settings: Settings) -> float | None:
        if self.interval_setting:
            return float(getattr(settings, self.interval_setting))
        return None

    def cron(self, settings: Settings) -> str | None:
        if self.interval_setting:
            return None
        if self.schedule_setting:
            return str(getattr(settings, self.schedule_setting))
        return self.schedule


@dataclass
class JobRegistry:
    specs: dict[str, JobSpec] = field(default_factory=dict)

    def add(self, spec: JobSpec) -> None:
        if spec.name in self.specs:
            raise ValueError(f"job {spec.name!r} is registered twice")
        self.specs[spec.name] = spec

    def extend(self, specs: Iterable[JobSpec]) -> None:
        for spec in specs:
            self.add(spec)

    def get(self, name: str) -> JobSpec:
        try:
            return self.specs[name]
        except KeyError:
            known = ", ".join(sorted(self.specs)) or "none"
            raise KeyError(f"unknown job {name!r}; registered jobs: {known}") from None

    def __iter__(self) -> Any:
        return iter(self.specs.values())


@dataclass(frozen=True)
class JobRun:
    id: int
    name: str
    status: JobStatus
    rows_written: int
    error: str | None
    message: str | None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobRunner:
    def __init__(self, db: Database, settings: Settings, events: EventBus, registry: JobRegistry):
        self.db, self.settings, self.events, self.registry = db, settings, events, registry
        #: Where jobs send follow-up work (set by the runtime once its queue exists).
        self.enqueue: Callable[[str, dict[str, Any]], None] | None = None

    def run(
        self, name: str, params: dict[str, Any] | None = None, progress: Progress | None = None
    ) -> JobRun:
        spec = self.registry.get(name)
        params = dict(params or {})
        with job_lock(self.db.engine, spec.lock_name) as acquired:
            if not acquired:
                return self._record_skip(name, params, "already running elsewhere; not started")
            return self._run_locked(spec, params, progress or NullProgress())

    def _record_skip(self, name: str, params: dict[str, Any], message: str) -> JobRun:
        now = utcnow()
        row = JobLog(
            job_type=name,
            status="skipped",
            started_at=now,
            finished_at=now,
            duration_seconds=0.0,
            rows_written=0,
            parameters=params,
            message=message,
            worker=worker_id(),
        )
        with self.db.session(write=True) as session:
            session.add(row)
            session.flush()
            job_id = row.id
        JOB_RUNS.labels(name, "skipped").inc()
        log.info("job %s skipped: %s", name, message, extra={"job": name, "job_id": job_id})
        return JobRun(job_id, name, "skipped", 0, None, message)

    def _run_locked(self, spec: JobSpec, params: dict[str, Any], progress: Progress) -> JobRun:
        started = utcnow()
        with self.db.session(write=True) as session:
            row = JobLog(
                job_type=spec.name,
                status="running",
                started_at=started,
                rows_written=0,
                parameters=params,
                worker=worker_id(),
            )
            session.add(row)
            session.flush()
            job_id = row.id
        ctx = JobContext(
            job_id,
            spec.name,
            params,
            self.db,
            self.settings,
            self.events,
            progress,
            enqueue=self.enqueue,
        )
        t0 = time.perf_counter()
        status: JobStatus
        error: str | None = None
        message = ""
        try:
            result = spec.func(ctx)
            status, message = result.status, result.message
            rows = max(result.rows_written, ctx.rows_written)
        except Exception as exc:  # the log row must be closed whatever went wrong
            status, rows = "failed", ctx.rows_written
            error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", spec.name, extra={"job": spec.name, "job_id": job_id})
        finally:
            progress.finish()
        elapsed = time.perf_counter() - t0
        with self.db.session(write=True) as session:
            session.execute(
                update(JobLog)
                .where(JobLog.id == job_id)
                .values(
                    status=status,
                    finished_at=utcnow(),
                    duration_seconds=elapsed,
                    rows_written=rows,
                    error=error,
                    message=message or None,
                )
            )
        JOB_RUNS.labels(spec.name, status).inc()
        JOB_DURATION.labels(spec.name, status).observe(elapsed)
        log.info(
            "job %s %s: %d rows in %.2fs %s",
            spec.name,
            status,
            rows,
            elapsed,
            message,
            extra={"job": spec.name, "job_id": job_id, "status": status, "rows": rows},
        )
        return JobRun(job_id, spec.name, status, rows, error, message or None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_interrupted_runs(session: Session) -> int:
    """Marks ``running`` rows left by dead processes on this host as failed. Returns how many."""
    host = socket.gethostname()
    rows = session.scalars(select(JobLog).where(JobLog.status == "running")).all()
    closed = 0
    for row in rows:
        owner_host, _, pid = row.worker.rpartition(":")
        if owner_host != host or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        row.status = "failed"
        row.finished_at = utcnow()
        row.duration_seconds = (row.finished_at - row.started_at).total_seconds()
        row.error = f"interrupted: the process running this job (pid {pid}) ended first"
        closed += 1
    session.flush()
    return closed


@dataclass(frozen=True)
class JobTypeStats:
    job_type: str
    runs: int
    ok: int
    skipped: int
    failed: int
    running: int
    rows_written: int
    avg_duration_seconds: float | None
    last_started_at: datetime | None
    last_success_at: datetime | None


def job_type_stats(session: Session, prefix: str) -> list[JobTypeStats]:
    """Per job type whose name starts with ``prefix``: counts by status, rows, durations;
    one aggregate query whatever the size of the log."""

    def count(status: str) -> Any:
        return func.count(case((JobLog.status == status, 1)))

    def utc(expression: Any) -> Any:  # aggregates lose the column type (text on SQLite)
        return type_coerce(expression, UTCDateTime())

    stmt = (
        select(
            JobLog.job_type,
            func.count(),
            count("ok"),
            count("skipped"),
            count("failed"),
            count("running"),
            func.coalesce(func.sum(JobLog.rows_written), 0),
            func.avg(JobLog.duration_seconds),
            utc(func.max(JobLog.started_at)),
            utc(func.max(case((JobLog.status == "ok", JobLog.finished_at)))),
        )
        .where(JobLog.job_type.startswith(prefix, autoescape=True))
        .group_by(JobLog.job_type)
        .order_by(JobLog.job_type)
    )
    out = []
    for row in session.execute(stmt):
        job_type, runs, ok, skipped, failed, running, rows, avg, last_started, last_ok = row
        out.append(
            JobTypeStats(
                job_type=job_type,
                runs=runs,
                ok=ok,
                skipped=skipped,
                failed=failed,
                running=running,
                rows_written=int(rows),
                avg_duration_seconds=float(avg) if avg is not None else None,
                last_started_at=last_started,
                last_success_at=last_ok,
            )
        )
    return out


def recent_runs(session: Session, prefix: str, limit: int) -> list[JobLog]:
    stmt = (
        select(JobLog)
        .where(JobLog.job_type.startswith(prefix, autoescape=True))
        .order_by(JobLog.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
