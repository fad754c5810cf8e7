"""The miner's jobs against a fake NBP over real HTTP on loopback, on SQLite and PostgreSQL:
complete loads, idempotent re-runs, resume after a failure, hourly sync, retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from tests.fakes.nbp_server import FakeNBP
from vigil.core.models import JobLog
from vigil.core.runtime import Runtime
from vigil.markets.models import Asset, Price
from vigil.markets.sources import nbp
from vigil.settings import Settings

FAKE_TODAY = date(2023, 1, 31)
START = date(2022, 6, 1)  # 245 days: 3 chunks of 93 days per kind


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeNBP]:
    with FakeNBP(today=FAKE_TODAY) as server:
        yield server


class Clock:
    """Today in Warsaw, as the NBP client sees it."""

    def __init__(self) -> None:
        self.today = FAKE_TODAY

    def __call__(self) -> date:
        return self.today


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(nbp, "warsaw_today", clock)
    return clock


@pytest.fixture
def runtime(db: TransactionalDatabase, fake: FakeNBP, clock: Clock) -> Runtime:
    fake.reset()
    settings = Settings(
        nbp_base_url=fake.base_url,
        nbp_currency_start=START,
        nbp_gold_start=START,
        nbp_backoff_initial_seconds=0,
        nbp_backoff_max_seconds=0,
        nbp_max_attempts=3,
    )
    return Runtime.create(settings, db=db)


def stored(db: TransactionalDatabase) -> dict[tuple[str, date], Decimal]:
    with db.session() as session:
        rows = session.execute(
            select(Asset.code, Price.effective_date, Price.price).join(
                Price, Price.asset_id == Asset.id
            )
        ).all()
    assert len(rows) == len({(c, d) for c, d, _ in rows}), "duplicate rows"
    return {(code, day): price for code, day, price in rows}


def expected(
    fake: FakeNBP, start: date = START, end: date = FAKE_TODAY
) -> dict[tuple[str, date], Decimal]:
    rates = {k: v for k, v in fake.expected_rates().items() if start <= k[1] <= end}
    gold = {("XAU", d): v for d, v in fake.expected_gold().items() if start <= d <= end}
    return rates | gold


def fetch_errors() -> float:
    labels = {"source": "nbp"}
    return REGISTRY.get_sample_value("vigil_markets_source_fetch_errors_total", labels) or 0


def job_rows(db: TransactionalDatabase) -> list[JobLog]:
    with db.session() as session:
        return list(session.scalars(select(JobLog).order_by(JobLog.id)))


def test_backfill_loads_exactly_what_nbp_publishes(
    runtime: Runtime, db: TransactionalDatabase, fake: FakeNBP
) -> None:
    events: list[dict[str, Any]] = []
    runtime.events.subscribe("rates.ingested", lambda topic, payload: events.append(payload))

    run = runtime.runner.run("markets.backfill")

    want = expected(fake)
    assert run.status == "ok"
    assert run.rows_written == len(want)
    assert stored(db) == want
    # no request ever asked for more than 93 days or past the fake's today
    assert all(status == 200 for _, status in fake.requests)
    assert len(fake.requests) == 6
    # one event per asset per chunk, with the documented payload
    assert sum(e["rows"] for e in events) == len(want)
    assert {e["type"] for e in events} == {"currency", "gold"}
    usd = [e for e in events if e["asset"] == "USD"]
    assert len(usd) == 3
    assert set(usd[0]) == {"type", "asset", "from", "to", "rows", "job_id"}
    assert usd[0]["job_id"] == run.id
    assert usd[0]["from"] <= usd[0]["to"]
    (row,) = job_rows(db)
    assert (row.job_type, row.status, row.rows_written) == ("markets.backfill", "ok", len(want))
    assert row.finished_at is not None
    assert row.finished_at >= row.started_at


def test_second_backfill_is_skipped_and_writes_nothing(
    runtime: Runtime, db: TransactionalDatabase, fake: FakeNBP
) -> None:
    runtime.runner.run("markets.backfill")
    before = stored(db)
    fake.requests.clear()
    events: list[dict[str, Any]] = []
    runtime.events.subscribe("rates.ingested", lambda topic, payload: events.append(payload))

    run = runtime.runner.run("markets.backfill")

    assert run.status == "skipped"
    assert run.rows_written == 0
    assert fake.requests == []
    assert events == []
    assert stored(db) == before
    assert [r.status for r in job_rows(db)] == ["ok", "skipped"]


def test_failed_backfill_keeps_finished_chunks_and_the_next_run_completes(
    runtime: Runtime, db: TransactionalDatabase, fake: FakeNBP
) -> None:
    ok_before_failure = 2
    fake.fault_every = ok_before_failure + 1
    fake.fault_status = 503
    runtime.settings.nbp_max_attempts = 1
    samples_before = (
        REGISTRY.get_sample_value(
            "vigil_jobs_runs_total", {"job_type": "markets.backfill", "status": "failed"}
        )
        or 0
    )
    errors_before = fetch_errors()

    failed = runtime.runner.run("markets.backfill")
    assert fetch_errors() == errors_before + 1

    assert failed.status == "failed"
    assert failed.error is not None
    assert "503" in failed.error
    partial = stored(db)
    assert 0 < len(partial) < len(expected(fake))
    assert failed.rows_written == len(partial)
    assert (
        REGISTRY.get_sample_value(
            "vigil_jobs_runs_total", {"job_type": "markets.backfill", "status": "failed"}
        )
        == samples_before + 1
    )

    fake.reset()
    started = time.time()
    resumed = runtime.runner.run("markets.backfill")
    last_ok = REGISTRY.get_sample_value(
        "vigil_markets_source_last_success_timestamp_seconds", {"source": "nbp"}
    )
    assert last_ok is not None
    assert last_ok >= started

    assert resumed.status == "ok"
    assert stored(db) == expected(fake)
    assert resumed.rows_written == len(expected(fake)) - len(partial)
    # The newest day NBP has data for, which the "no new NBP data" alert rule reads.
    newest = max(day for _, day in expected(fake))
    assert (
        REGISTRY.get_sample_value(
            "vigil_markets_source_newest_data_timestamp_seconds", {"source": "nbp"}
        )
        == datetime.combine(newest, datetime.min.time(), tzinfo=UTC).timestamp()
    )
    first, second = job_rows(db)
    assert (first.status, second.status) == ("failed", "ok")
    assert first.error
    assert "503" in first.error


def test_transient_429_and_500_are_retried(
    runtime: Runtime, db: TransactionalDatabase, fake: FakeNBP
) -> None:
    fake.faults = [429, 500]  # max_attempts is 3: the third attempt gets through
    run = runtime.runner.run("markets.backfill")
    assert run.status == "ok"
    assert [s for _, s in fake.requests][:3] == [429, 500, 200]
    assert stored(db) == expected(fake)


def test_sync_fetches_from_the_day_after_the_last_stored_date(
    runtime: Runtime, db: TransactionalDatabase, fake: FakeNBP, clock: Clock
) -> None:
    clock.today = date(2023, 1, 20)
    assert runtime.runner.run("markets.backfill").status == "ok"
    assert max(d for _, d in stored(db)) == date(2023, 1, 20)

    clock.today = FAKE_TODAY
    fake.requests.clear()
    run = runtime.runner.run("markets.sync")

    assert run.status == "ok"
    assert stored(db) == expected(fake)
    assert run.rows_written == len(expected(fake, date(2023, 1, 21)))
    paths = [p for p, _ in fake.requests]
    assert all("2023-01-21/2023-01-31" in p for p in paths)
    assert len(paths) == 2


def test_sync_without_new_quotes_is_skipped(
    runtime: Runtime, db: TransactionalDatabase, fake: FakeNBP, clock: Clock
) -> None:
    clock.today = date(2023, 1, 27)  # a Friday
    runtime.runner.run("markets.backfill")
    clock.today = date(2023, 1, 29)  # Sunday: NBP has nothing for Sat-Sun (404)
    run = runtime.runner.run("markets.sync")
    assert run.status == "skipped"
    assert run.message is not None
    assert "no new quotes" in run.message
    assert {s for _, s in fake.requests[-2:]} == {404}


def test_sync_on_an_empty_database_loads_the_configured_history(
    runtime: Runtime, db: TransactionalDatabase, fake: FakeNBP
) -> None:
    run = runtime.runner.run("markets.sync")
    assert run.status == "ok"
    assert stored(db) == expected(fake)


def test_backfill_with_explicit_range_fills_only_that_range(
    runtime: Runtime, db: TransactionalDatabase, fake: FakeNBP
) -> None:
    run = runtime.runner.run("markets.backfill", {"from": "2023-01-02", "to": "2023-01-06"})
    assert run.status == "ok"
    assert stored(db) == expected(fake, date(2023, 1, 2), date(2023, 1, 6))
    # extending backwards and forwards later loads only the missing ends
    fake.requests.clear()
    runtime.runner.run("markets.backfill")
    assert stored(db) == expected(fake)
    assert not any("2023-01-02/2023-01-06" in p for p, _ in fake.requests)
