"""The distributed roles as real processes against the real PostgreSQL and a private Redis:
``vigil api``, two ``vigil scheduler`` (one active, one on standby) and ``vigil worker``.

The database starts with history up to a past date and the API has cached its answers. The
active scheduler sends the start-up backfill to the worker's ``ingest`` queue; the worker
loads the rest of the history, its ingest events travel over Redis to the ``analytics``
listener, which computes the signals; ``signals.updated`` and ``rates.ingested`` reach the API
process, which drops its cached answers, so it serves the new data at once (the cache TTL is
five minutes)."""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.e2e.conftest import (
    Backend,
    FakeNbpProcess,
    StartVigil,
    free_port,
    vigil_command,
    vigil_env,
    wait_for,
)
from tests.support.redis_server import PrivateRedis
from vigil.core.models import JobLog
from vigil.core.runtime import Runtime
from vigil.markets.models import Asset, Price, SignalRow
from vigil.settings import Settings

pytestmark = pytest.mark.e2e

HISTORY_START = "2023-01-02"  # a short history keeps the test quick; the path is the same
SEEDED_UNTIL = date(2024, 6, 28)


def newest_signal(backend: Backend, code: str) -> date | None:
    with Session(backend.engine) as session:
        return session.scalar(select(func.max(SignalRow.as_of)).where(SignalRow.asset_code == code))


def runs(backend: Backend, job_type: str) -> list[JobLog]:
    with Session(backend.engine) as session:
        return list(session.scalars(select(JobLog).where(JobLog.job_type == job_type)))


def test_a_backfill_in_the_worker_reaches_the_api_through_redis(
    postgres: Backend,
    private_redis: PrivateRedis,
    start_fake_nbp: Any,
    start_vigil: StartVigil,
    tmp_path: Path,
) -> None:
    nbp: FakeNbpProcess = start_fake_nbp(delay=0.0)
    history = {"VIGIL_NBP_CURRENCY_START": HISTORY_START, "VIGIL_NBP_GOLD_START": HISTORY_START}
    usd_days = sorted(d for d in nbp.expected.series("USD") if d >= date(2023, 1, 2))

    # The past: loaded by a CLI backfill without Redis (it computes its signals itself).
    seed_env = vigil_env(postgres, nbp, free_port(), tmp_path / "data") | history
    seeded = subprocess.run(
        [*vigil_command(), "markets", "backfill", "--to", SEEDED_UNTIL.isoformat()],
        env=seed_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert newest_signal(postgres, "USD") == max(d for d in usd_days if d <= SEEDED_UNTIL)

    distributed = history | {"VIGIL_REDIS_URL": private_redis.url, "VIGIL_CACHE_TTL": "300"}
    api = start_vigil(postgres, nbp, ("api",), distributed)
    api.wait_ready()

    def cached_twice(path: str, **params: Any) -> dict[str, Any]:
        first = api.client.get(path, params=params)
        again = api.client.get(path, params=params)
        assert (first.status_code, again.status_code) == (200, 200), first.text
        assert again.headers["x-cache"] == "hit", f"{path} was not cached"
        body: dict[str, Any] = again.json()
        return body

    before_rates = cached_twice("/api/v1/markets/rates", code="USD", limit=10_000)
    before_signals = cached_twice("/api/v1/markets/signals", code="USD", limit=1)
    assert before_rates["total"] == sum(d <= SEEDED_UNTIL for d in usd_days)
    assert before_signals["items"][0]["as_of"] <= SEEDED_UNTIL.isoformat()

    worker = start_vigil(postgres, nbp, ("worker", "-Q", "ingest,analytics"), distributed)
    schedulers = [start_vigil(postgres, nbp, ("scheduler",), distributed) for _ in range(2)]

    def caught_up() -> bool | None:
        for process in (api, worker, *schedulers):
            process.ensure_alive()
        return True if newest_signal(postgres, "USD") == usd_days[-1] else None

    wait_for(
        caught_up,
        timeout=120,
        what="the worker to backfill and signal the rest of the USD history",
        interval=0.5,
        diagnostics=lambda: "\n".join(p.diagnostics() for p in (worker, *schedulers)),
    )

    # Only the active scheduler sent the start-up backfill; the worker ran it.
    backfills = runs(postgres, "markets.backfill")
    assert len(backfills) == 2, [(r.worker, r.status) for r in backfills]  # seed + worker
    assert backfills[-1].status == "ok"
    assert backfills[-1].worker.endswith(f":{worker.pid}")
    signal_runs = [
        r for r in runs(postgres, "markets.signals") if r.worker.endswith(f":{worker.pid}")
    ]
    assert signal_runs, "the worker's analytics listener computed no signals"

    # The API process heard the events over Redis: the old answers are gone from the cache.
    def fresh(path: str, **params: Any) -> dict[str, Any] | None:
        response = api.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json() if response.headers["x-cache"] == "miss" else None

    rates = wait_for(
        lambda: fresh("/api/v1/markets/rates", code="USD", limit=10_000),
        timeout=10,
        what="the API to drop its cached USD rates",
    )
    assert rates["total"] == len(usd_days)
    assert rates["items"][-1]["effective_date"] == usd_days[-1].isoformat()
    signals = api.get_json("/api/v1/markets/signals", code="USD", limit=1)
    assert signals["items"][0]["as_of"] == usd_days[-1].isoformat()
    assert usd_days[-1] - SEEDED_UNTIL > timedelta(days=30)  # the test did move time on

    # Clean shutdowns: the worker finishes, the standby and active schedulers let go.
    codes = [process.terminate() for process in (*schedulers, worker)]
    assert codes == [0, 0, 0], "\n".join(p.diagnostics() for p in (*schedulers, worker))
    api.terminate()


def test_a_job_whose_worker_was_killed_runs_again_on_another_worker(
    private_redis: PrivateRedis,
    start_fake_nbp: Any,
    start_vigil: StartVigil,
    tmp_path: Path,
) -> None:
    path = (tmp_path / "db" / "vigil.db").as_posix()
    backend = Backend("sqlite", env_url=f"sqlite:///{path}", sqlalchemy_url=f"sqlite:///{path}")
    nbp: FakeNbpProcess = start_fake_nbp(delay=0.25)  # slow enough to be killed mid-way
    env = {
        "VIGIL_NBP_CURRENCY_START": HISTORY_START,
        "VIGIL_NBP_GOLD_START": HISTORY_START,
        "VIGIL_REDIS_URL": private_redis.url,
        "VIGIL_JOB_VISIBILITY_TIMEOUT": "12",  # longer than the job, or it runs twice
    }
    first = start_vigil(backend, nbp, ("worker", "-Q", "ingest"), env)
    # Sent the way the API or the scheduler sends a job.
    sender = Runtime.create(
        Settings(database_url=backend.env_url, redis_url=private_redis.url), role="api"
    )
    sender.dispatch.enqueue("markets.backfill", {})
    sender.close()

    def mid_way() -> bool | None:
        first.ensure_alive()
        count = backend.price_count()
        return True if count and count > 1000 else None

    wait_for(
        mid_way, timeout=60, what="the backfill to be under way", diagnostics=first.diagnostics
    )
    first.kill()
    second = start_vigil(backend, nbp, ("worker", "-Q", "ingest"), env)

    def finished() -> list[JobLog] | None:
        second.ensure_alive()
        found = runs(backend, "markets.backfill")
        return found if any(r.status == "ok" for r in found) else None

    found = wait_for(
        finished, timeout=90, what="the backfill to run again", diagnostics=second.diagnostics
    )
    assert [r.status for r in found] == ["failed", "ok"]
    assert "interrupted" in (found[0].error or "")
    assert found[1].worker.endswith(f":{second.pid}")
    usd_days = [d for d in nbp.expected.series("USD") if d >= date(2023, 1, 2)]
    with Session(backend.engine) as session:
        stored = session.scalar(
            select(func.count())
            .select_from(Price)
            .join(Asset, Asset.id == Price.asset_id)
            .where(Asset.code == "USD")
        )
    assert stored == len(usd_days)
    assert second.terminate() == 0


def test_a_worker_on_rabbitmq_without_redis_runs_what_it_is_sent(
    rabbitmq_url: str, start_fake_nbp: Any, start_vigil: StartVigil, tmp_path: Path
) -> None:
    path = (tmp_path / "db" / "vigil.db").as_posix()
    backend = Backend("sqlite", env_url=f"sqlite:///{path}", sqlalchemy_url=f"sqlite:///{path}")
    nbp: FakeNbpProcess = start_fake_nbp(delay=0.0)
    env = {
        "VIGIL_NBP_CURRENCY_START": "2026-01-02",
        "VIGIL_NBP_GOLD_START": "2026-01-02",
        "VIGIL_BROKER_URL": rabbitmq_url,
    }
    worker = start_vigil(backend, nbp, ("worker",), env)
    sender = Runtime.create(
        Settings(database_url=backend.env_url, broker_url=rabbitmq_url), role="api"
    )
    sender.dispatch.enqueue("markets.backfill", {})
    sender.close()

    def done() -> list[JobLog] | None:
        worker.ensure_alive()
        try:
            found = runs(backend, "markets.backfill")
        except OperationalError:  # the worker has not created the schema yet
            return None
        return found if found and found[-1].status != "running" else None

    found = wait_for(
        done, timeout=60, what="the backfill sent over RabbitMQ", diagnostics=worker.diagnostics
    )
    assert [(r.status, r.worker.endswith(f":{worker.pid}")) for r in found] == [("ok", True)]
    # No Redis: the events stayed in the worker, whose own queue computed the signals.
    wait_for(
        lambda: True if newest_signal(backend, "USD") else None,
        timeout=30,
        what="signals computed in the worker",
        diagnostics=worker.diagnostics,
    )
    assert worker.terminate() == 0
