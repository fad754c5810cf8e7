"""The job runner: one jobs_log row per run whatever happens, no double start, interrupted
runs closed, metrics (both backends)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from vigil.core.events import InProcessEventBus
from vigil.core.jobs import (
    JobContext,
    JobRegistry,
    JobResult,
    JobRunner,
    JobSpec,
    close_interrupted_runs,
    job_type_stats,
    worker_id,
)
from vigil.core.locks import job_lock
from vigil.core.models import JobLog
from vigil.settings import Settings


def make_runner(db: TransactionalDatabase, *specs: JobSpec) -> JobRunner:
    registry = JobRegistry()
    registry.extend(specs)
    return JobRunner(db, Settings(), InProcessEventBus(), registry)


def rows(db: TransactionalDatabase) -> list[JobLog]:
    with db.session() as session:
        return list(session.scalars(select(JobLog).order_by(JobLog.id)))


def runs_metric(job: str, status: str) -> float:
    return (
        REGISTRY.get_sample_value("vigil_jobs_runs_total", {"job_type": job, "status": status}) or 0
    )


def test_ok_run_writes_one_closed_row_with_parameters(db: TransactionalDatabase) -> None:
    def work(ctx: JobContext) -> JobResult:
        with ctx.db.session() as session:  # the row exists, as `running`, while the job runs
            assert session.get(JobLog, ctx.job_id).status == "running"  # type: ignore[union-attr]
        return JobResult("ok", 7, "seven rows")

    runner = make_runner(db, JobSpec("test.ok", work))
    before = runs_metric("test.ok", "ok")
    run = runner.run("test.ok", {"from": "2024-01-01"})
    (row,) = rows(db)
    assert (run.status, run.rows_written, run.id) == ("ok", 7, row.id)
    assert (row.status, row.rows_written, row.message) == ("ok", 7, "seven rows")
    assert row.parameters == {"from": "2024-01-01"}
    assert row.error is None
    assert row.worker == worker_id()
    assert row.finished_at is not None
    assert row.finished_at >= row.started_at
    assert runs_metric("test.ok", "ok") == before + 1


def test_failing_job_is_recorded_with_its_error_and_partial_rows(
    db: TransactionalDatabase,
) -> None:
    def work(ctx: JobContext) -> JobResult:
        ctx.rows_written += 3
        raise RuntimeError("source exploded")

    run = make_runner(db, JobSpec("test.fail", work)).run("test.fail")
    (row,) = rows(db)
    assert run.status == row.status == "failed"
    assert row.error == "RuntimeError: source exploded"
    assert row.rows_written == 3
    assert row.finished_at is not None


def test_a_job_already_running_is_not_started_twice(db: TransactionalDatabase) -> None:
    calls: list[int] = []

    def work(ctx: JobContext) -> JobResult:
        calls.append(ctx.job_id)
        return JobResult()

    runner = make_runner(db, JobSpec("test.locked", work))
    with job_lock(db.engine, "job:test.locked") as held:
        assert held
        run = runner.run("test.locked")
    assert run.status == "skipped"
    assert calls == []
    assert run.message is not None
    assert "already running" in run.message
    assert runner.run("test.locked").status == "ok"  # lock released: runs again
    assert [r.status for r in rows(db)] == ["skipped", "ok"]


def test_lock_is_exclusive_and_reentrant_after_release(db: TransactionalDatabase) -> None:
    with job_lock(db.engine, "job:x") as first:
        with job_lock(db.engine, "job:x") as second:
            assert first
            assert not second
        with job_lock(db.engine, "job:y") as other:
            assert other
    with job_lock(db.engine, "job:x") as again:
        assert again


def test_unknown_job_names_the_registered_ones(db: TransactionalDatabase) -> None:
    runner = make_runner(db, JobSpec("test.a", lambda ctx: JobResult()))
    with pytest.raises(KeyError, match=r"test\.a"):
        runner.run("test.nope")


def test_runs_left_running_by_a_dead_process_are_closed(db: TransactionalDatabase) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = worker_id().rpartition(":")[0]
    now = datetime.now(UTC)
    with db.session() as session:
        session.add_all(
            [
                JobLog(
                    job_type="markets.backfill",
                    status="running",
                    started_at=now,
                    rows_written=5,
                    parameters={},
                    worker=f"{host}:{dead.pid}",
                ),
                JobLog(
                    job_type="markets.backfill",
                    status="running",
                    started_at=now,
                    rows_written=0,
                    parameters={},
                    worker=worker_id(),
                ),
                JobLog(
                    job_type="markets.backfill",
                    status="running",
                    started_at=now,
                    rows_written=0,
                    parameters={},
                    worker="another-host:1",
                ),
            ]
        )
    with db.session() as session:
        assert close_interrupted_runs(session) == 1
    dead_row, alive_row, remote_row = rows(db)
    assert dead_row.status == "failed"
    assert "interrupted" in (dead_row.error or "")
    assert dead_row.finished_at is not None
    assert alive_row.status == remote_row.status == "running"


def test_stats_per_job_type(db: TransactionalDatabase) -> None:
    def fail(ctx: JobContext) -> JobResult:
        raise ValueError("no")

    runner = make_runner(
        db,
        JobSpec("stats.ok", lambda ctx: JobResult("ok", 10)),
        JobSpec("stats.fail", fail),
        JobSpec("other.job", lambda ctx: JobResult("ok", 1)),
    )
    runner.run("stats.ok")
    runner.run("stats.ok")
    runner.run("stats.fail")
    runner.run("other.job")
    with db.session() as session:
        stats = {s.job_type: s for s in job_type_stats(session, "stats.")}
    assert set(stats) == {"stats.ok", "stats.fail"}
    ok = stats["stats.ok"]
    assert (ok.runs, ok.ok, ok.failed, ok.rows_written) == (2, 2, 0, 20)
    assert ok.last_success_at is not None
    assert ok.avg_duration_seconds is not None
    fail_stats = stats["stats.fail"]
    assert (fail_stats.runs, fail_stats.failed, fail_stats.last_success_at) == (1, 1, None)


def test_jobs_sharing_a_lock_do_not_overlap(db: TransactionalDatabase) -> None:
    runner = make_runner(
        db,
        JobSpec("ingest.backfill", lambda ctx: JobResult(), lock="ingest"),
        JobSpec("ingest.sync", lambda ctx: JobResult(), lock="ingest"),
        JobSpec("other.job", lambda ctx: JobResult()),
    )
    with job_lock(db.engine, "job:ingest"):  # as if the backfill were running
        assert runner.run("ingest.sync").status == "skipped"
        assert runner.run("other.job").status == "ok"
    assert runner.run("ingest.sync").status == "ok"
