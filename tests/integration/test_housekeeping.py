"""jobs_log retention: skipped runs go after hours, the others after days, running rows
stay, in batches (both backends)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from vigil.core import housekeeping
from vigil.core.db import utcnow
from vigil.core.events import InProcessEventBus
from vigil.core.jobs import JobRegistry, JobRunner
from vigil.core.models import JobLog
from vigil.core.runtime import Runtime
from vigil.settings import Settings

JOB = "core.prune_jobs_log"


def runner(db: TransactionalDatabase, **settings: int) -> JobRunner:
    registry = JobRegistry()
    registry.extend(housekeeping.JOBS)
    return JobRunner(db, Settings(**settings), InProcessEventBus(), registry)  # type: ignore[arg-type]


def add_runs(db: TransactionalDatabase, status: str, age: timedelta, count: int = 1) -> None:
    started = utcnow() - age
    with db.session(write=True) as session:
        session.add_all(
            JobLog(job_type="test.old", status=status, started_at=started, worker="t")
            for _ in range(count)
        )


def left(db: TransactionalDatabase) -> list[tuple[str, int]]:
    """(status, age in whole hours) of the test rows still there."""
    now = utcnow()
    with db.session() as session:
        rows = session.scalars(select(JobLog).where(JobLog.job_type == "test.old"))
        return sorted((r.status, int((now - r.started_at).total_seconds() // 3600)) for r in rows)


def test_skipped_runs_go_after_hours_and_the_rest_after_days(db: TransactionalDatabase) -> None:
    add_runs(db, "skipped", timedelta(hours=2))
    add_runs(db, "skipped", timedelta(hours=30))
    add_runs(db, "ok", timedelta(hours=30))
    add_runs(db, "failed", timedelta(days=9))
    add_runs(db, "ok", timedelta(days=11))
    add_runs(db, "running", timedelta(days=40))  # never touched: the start-up sweep owns it

    run = runner(db, jobs_log_retention_days=10, jobs_log_skipped_retention_hours=24).run(JOB)

    assert run.status == "ok", run.message
    assert "2 job runs" in (run.message or "")
    assert left(db) == [("failed", 9 * 24), ("ok", 30), ("running", 40 * 24), ("skipped", 2)]


def test_zero_skipped_hours_keeps_skipped_runs_as_long_as_the_others(
    db: TransactionalDatabase,
) -> None:
    add_runs(db, "skipped", timedelta(days=2))
    add_runs(db, "skipped", timedelta(days=6))

    runner(db, jobs_log_retention_days=5, jobs_log_skipped_retention_hours=0).run(JOB)

    assert left(db) == [("skipped", 48)]


def test_nothing_old_is_a_skipped_run_and_zero_keeps_everything(
    db: TransactionalDatabase,
) -> None:
    add_runs(db, "ok", timedelta(days=400))
    keep_all = runner(db, jobs_log_retention_days=0, jobs_log_skipped_retention_hours=0).run(JOB)
    assert keep_all.status == "skipped"
    assert "kept forever" in (keep_all.message or "")
    assert left(db) == [("ok", 400 * 24)]

    nothing = runner(db, jobs_log_retention_days=500).run(JOB)
    assert nothing.status == "skipped"
    assert left(db) == [("ok", 400 * 24)]


def test_a_large_backlog_is_deleted_in_batches(
    db: TransactionalDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "BATCH", 7)
    add_runs(db, "skipped", timedelta(days=3), count=23)
    add_runs(db, "skipped", timedelta(minutes=5), count=2)

    run = runner(db).run(JOB)

    assert "23 job runs" in (run.message or "")
    assert left(db) == [("skipped", 0), ("skipped", 0)]


def test_every_runtime_registers_the_prune_job_on_a_queue_workers_take() -> None:
    runtime = Runtime.create(Settings(redis_url=""))
    try:
        spec = runtime.registry.specs[JOB]
    finally:
        runtime.close()
    assert spec.schedule is not None
    assert spec.queue == "analytics"
