"""jobs_log retention: skipped runs go after hours, the others after days, running rows
stay, in batches (both backends); resolved Alertmanager alerts go after
VIGIL_OPS_ALERTS_RETENTION_DAYS, firing ones stay."""

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
from vigil.core.ops_alerts.models import OpsAlert
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


# --- resolved Alertmanager alerts (ops_alerts) ---------------------------------------------

ALERTS_JOB = "core.prune_ops_alerts"


def add_alert(
    db: TransactionalDatabase, fingerprint: str, status: str, ended_days_ago: float | None
) -> None:
    now = utcnow()
    ends = None if ended_days_ago is None else now - timedelta(days=ended_days_ago)
    starts = (ends or now) - timedelta(hours=1)
    with db.session(write=True) as session:
        session.add(
            OpsAlert(
                fingerprint=fingerprint, status=status, alertname="VigilTest", severity="warning",
                labels={"alertname": "VigilTest"}, annotations={}, starts_at=starts, ends_at=ends,
                generator_url="", receiver="vigil", external_url="", first_received_at=starts,
                last_received_at=ends or now, times_received=1,
            )
        )  # fmt: skip


def alerts_left(db: TransactionalDatabase) -> list[str]:
    with db.session() as session:
        return sorted(session.scalars(select(OpsAlert.fingerprint)))


def test_resolved_alerts_go_after_the_retention_and_firing_ones_stay(
    db: TransactionalDatabase,
) -> None:
    add_alert(db, "a1", "resolved", ended_days_ago=31)
    add_alert(db, "a2", "resolved", ended_days_ago=29)
    add_alert(db, "a3", "firing", ended_days_ago=None)  # however old: still firing
    add_alert(db, "a4", "firing", ended_days_ago=90)  # fired again after an old end
    add_alert(db, "a5", "resolved", ended_days_ago=400)

    run = runner(db).run(ALERTS_JOB)  # the default: 30 days

    assert run.status == "ok", run.message
    assert "2 resolved alerts" in (run.message or "")
    assert alerts_left(db) == ["a2", "a3", "a4"]
    again = runner(db).run(ALERTS_JOB)
    assert again.status == "skipped"
    assert alerts_left(db) == ["a2", "a3", "a4"]


def test_alert_retention_is_a_setting_zero_keeps_them_and_batches_are_used(
    db: TransactionalDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        add_alert(db, f"old{i:02}", "resolved", ended_days_ago=3)
    add_alert(db, "recent", "resolved", ended_days_ago=1)
    keep = runner(db, ops_alerts_retention_days=0).run(ALERTS_JOB)
    assert keep.status == "skipped"
    assert "kept forever" in (keep.message or "")
    assert len(alerts_left(db)) == 13

    monkeypatch.setattr(housekeeping, "BATCH", 5)
    run = runner(db, ops_alerts_retention_days=2).run(ALERTS_JOB)
    assert "12 resolved alerts older than 2 days" in (run.message or "")
    assert alerts_left(db) == ["recent"]


def test_every_runtime_registers_the_alert_prune_job_daily() -> None:
    runtime = Runtime.create(Settings(redis_url=""))
    try:
        spec = runtime.registry.specs[ALERTS_JOB]
    finally:
        runtime.close()
    assert spec.schedule == "27 3 * * *"
    assert spec.queue == "analytics"
