"""Issue #8's prediction target: "Prediction for a user with 5 years of history (10,000
sessions, 200 books on the list): target < 20 ms", and the backtest of the models against
the naive baseline on that history.

    .venv/bin/python -m pytest bench/test_bench_reading.py -p no:cacheprovider --benchmark-only

The history is generated (tests/support/reading_history.py): five years up to 2026-11-26,
exactly 10,000 timed sessions, the ~300 books they finish (each also in the simple log) and
200 books on the pile. Timed:

- ``pure``: the models fitted on the arrays and the contextual forecast with its P10-P90
  range for the 200 books (what the endpoint computes, without the database);
- ``endpoint``: ``predictions.predict`` as GET /api/v1/reading/prediction calls it: the
  user's log, sessions (the last 200 days of them) and list read from SQLite or PostgreSQL,
  then the same computation;
- ``reads``: the database part alone (``load_history`` and ``reading_queue``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from bench._support import PG_ADMIN_DSN, postgres_available
from pytest_benchmark.fixture import BenchmarkFixture
from tests.support.reading_history import Generated, generate, seed

from vigil.core.auth import service as auth_service
from vigil.core.auth.passwords import Passwords
from vigil.core.db import Database
from vigil.core.migrate import upgrade_to_head
from vigil.reading.analytics.forecast import backtest, fit, run
from vigil.reading.predictions import load_history, predict, reading_queue

TARGET_SECONDS = 0.020
UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture(scope="module")
def history() -> Generated:
    return generate(years=5, sessions=10_000, tbr=200)


def _report(
    benchmark: BenchmarkFixture, capsys: pytest.CaptureFixture[str], what: str, **extra: Any
) -> None:
    stats: Any = benchmark.stats.stats  # type: ignore[union-attr]
    seconds = np.array(stats.data, dtype=np.float64)
    p50, p95 = np.percentile(seconds, [50, 95])
    benchmark.extra_info.update(
        p50_seconds=round(float(p50), 5), p95_seconds=round(float(p95), 5), **extra
    )
    verdict = "met" if p50 < TARGET_SECONDS else "MISSED"
    with capsys.disabled():
        print(
            f"\n[bench] reading prediction, {what}: p50 {p50 * 1000:.1f} ms, "
            f"p95 {p95 * 1000:.1f} ms, min {seconds.min() * 1000:.1f} ms "
            f"(target < {TARGET_SECONDS * 1000:.0f} ms: {verdict}) {extra}"
        )


def test_prediction_pure(
    benchmark: BenchmarkFixture, history: Generated, capsys: pytest.CaptureFixture[str]
) -> None:
    today = history.today.toordinal()

    def once() -> Any:
        return run(fit(history.history, today), "contextual", today, history.tbr_pages)

    benchmark.group = "reading: prediction"
    forecast = benchmark.pedantic(once, rounds=60, iterations=1, warmup_rounds=3)  # type: ignore[no-untyped-call]
    assert forecast is not None
    assert (forecast.finish >= 0).all()
    _report(benchmark, capsys, "pure (fit + contextual, 200 books)",
            sessions=len(history.history.pages), books=len(forecast.finish))  # fmt: skip


def test_backtest_against_the_baseline(
    benchmark: BenchmarkFixture, history: Generated, capsys: pytest.CaptureFixture[str]
) -> None:
    benchmark.group = "reading: backtest"
    result = benchmark.pedantic(  # type: ignore[no-untyped-call]
        backtest,
        args=(history.history, history.started, history.finished, history.book_pages),
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(books=result.books, mae_days=result.mae_days)
    with capsys.disabled():
        figures = ", ".join(f"{k} {v:.2f}" for k, v in result.mae_days.items())
        print(f"\n[bench] reading backtest, {result.books} finished books, MAE days: {figures}")
    for model in ("simple", "speed", "contextual"):
        assert result.mae_days[model] < result.mae_days["baseline"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stored(
    request: pytest.FixtureRequest,
    history: Generated,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Database, int]]:
    import psycopg  # noqa: PLC0415

    name = "vigil_bench_reading"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('reading') / 'vigil.db'}"
    else:
        if (why := postgres_available()) is not None:
            pytest.skip(why)
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        url = f"{url}/{name}"
    database = Database.from_url(url)
    upgrade_to_head(database.engine)
    with database.session(write=True) as s:
        reader = auth_service.create_user(s, Passwords(1, 8, 1), "reader@example.org", "x" * 12)
        seed(s, reader.id, history)
        user_id = reader.id
    yield request.param, database, user_id
    database.dispose()
    if request.param == "postgresql":
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_prediction_endpoint(
    benchmark: BenchmarkFixture,
    stored: tuple[str, Database, int],
    history: Generated,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backend, database, user_id = stored
    now = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)

    def once() -> Any:
        with database.session() as s:
            return predict(s, user_id, UTC_ZONE, now)

    benchmark.group = "reading: prediction"
    found = benchmark.pedantic(once, rounds=40, iterations=1, warmup_rounds=3)  # type: ignore[no-untyped-call]
    assert found.model == "contextual"
    assert len(found.books) == 200
    _report(benchmark, capsys, f"endpoint on {backend} (read + compute)", books=len(found.books))


def test_prediction_reads(
    benchmark: BenchmarkFixture,
    stored: tuple[str, Database, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The database part of the endpoint alone: the history (log, windowed sessions as
    epoch seconds) and the list still to read."""
    backend, database, user_id = stored

    def once() -> Any:
        with database.session() as s:
            return load_history(s, user_id, UTC_ZONE), reading_queue(s, user_id)

    benchmark.group = "reading: prediction"
    history, queue = benchmark.pedantic(once, rounds=40, iterations=1, warmup_rounds=3)  # type: ignore[no-untyped-call]
    assert len(queue) == 200
    assert len(history.pages) > 0
    _report(benchmark, capsys, f"reads on {backend} (history + list)", sessions=len(history.pages))
