"""``vigil up`` as a real process: it migrates a fresh database, backfills the whole NBP history
from a fake NBP (which fails every 23rd request), serves it over the API, exits cleanly on
SIGTERM, and after a SIGKILL mid-backfill resumes to exactly the same data."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.e2e.conftest import (
    Backend,
    Expected,
    FakeNbpProcess,
    StartVigil,
    StoredRows,
    VigilProcess,
    wait_for,
)
from vigil.markets.models import SignalRow

pytestmark = pytest.mark.e2e

StartNbp = Callable[..., FakeNbpProcess]


BACKFILL = "markets.backfill"
BACKFILL_TIMEOUT = 120.0


def assert_rows_match(stored: StoredRows, expected: Expected) -> None:
    """The database holds exactly the fake's quotes: no row missing, extra, wrong or repeated."""
    assert stored.rows == stored.distinct_keys, (
        f"{stored.rows - stored.distinct_keys} duplicate (asset, date) rows"
    )
    assert stored.rows == expected.total, f"{stored.rows} rows stored, {expected.total} expected"
    missing = expected.rates.keys() - stored.rates.keys()
    extra = stored.rates.keys() - expected.rates.keys()
    assert not missing, f"{len(missing)} rates missing, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} unexpected rates, e.g. {sorted(extra)[:5]}"
    wrong = [(k, v, expected.rates[k]) for k, v in stored.rates.items() if v != expected.rates[k]]
    assert not wrong, f"{len(wrong)} rates differ (key, stored, expected): {wrong[:5]}"
    assert stored.gold == expected.gold


def backfill_stats(vigil: VigilProcess) -> dict[str, Any]:
    stats = vigil.get_json("/api/v1/markets/stats/miner")
    by_type = {job["job_type"]: job for job in stats["jobs"]}
    assert BACKFILL in by_type, f"no {BACKFILL} in {stats['jobs']}"
    found: dict[str, Any] = by_type[BACKFILL]
    return found


def assert_api_serves(vigil: VigilProcess, expected: Expected) -> None:
    # USD, the whole history in one page.
    usd = expected.series("USD")
    page = vigil.get_json("/api/v1/markets/rates", code="USD", limit=10_000)
    assert page["total"] == len(usd)
    assert page["limit"] == 10_000
    assert page["offset"] == 0
    assert page["next_offset"] is None
    items = page["items"]
    assert len(items) == len(usd)
    days = [date.fromisoformat(item["effective_date"]) for item in items]
    assert days == sorted(usd), "USD rates are not the expected dates in date order"
    assert {item["code"] for item in items} == {"USD"}
    assert {item["source"] for item in items} == {"nbp"}
    assert all(isinstance(item["rate_mid"], str) for item in items), "rate_mid must be text"
    for item in (items[0], items[len(items) // 2], items[-1]):
        day = date.fromisoformat(item["effective_date"])
        assert Decimal(item["rate_mid"]) == usd[day], item
    assert {date.fromisoformat(i["effective_date"]): Decimal(i["rate_mid"]) for i in items} == usd

    # A date range of another currency, lower-case code.
    eur = expected.series("EUR")
    first, last = sorted(eur)[100], sorted(eur)[160]
    page = vigil.get_json(
        "/api/v1/markets/rates",
        code="eur",
        **{"from": first.isoformat(), "to": last.isoformat()},
    )
    assert page["total"] == 61
    assert [
        (date.fromisoformat(i["effective_date"]), Decimal(i["rate_mid"])) for i in page["items"]
    ] == [(d, v) for d, v in sorted(eur.items()) if first <= d <= last]

    # Gold, the whole history in one page.
    gold = vigil.get_json("/api/v1/markets/gold", limit=10_000)
    assert gold["total"] == len(expected.gold)
    assert gold["next_offset"] is None
    served = {date.fromisoformat(i["effective_date"]): Decimal(i["price"]) for i in gold["items"]}
    assert len(gold["items"]) == len(expected.gold)
    assert served == expected.gold

    # Every currency of table A (HRK included: it left table A at the end of 2022).
    currencies = vigil.get_json("/api/v1/markets/currencies")
    codes = {code for code, _day in expected.rates}
    assert currencies["total"] == len(codes)
    assert {item["code"] for item in currencies["items"]} == codes


def assert_metrics(vigil: VigilProcess, ok_runs: int) -> None:
    response = vigil.client.get("/metrics")
    assert response.status_code == 200, response.text
    sample = 'vigil_jobs_runs_total{job_type="markets.backfill",status="ok"}'
    lines = [line for line in response.text.splitlines() if line.startswith(sample)]
    assert lines, f"/metrics has no {sample}"
    assert float(lines[0].split()[-1]) == ok_runs, lines[0]


#: backend -> every stored signal of the uninterrupted run, to compare the killed run with.
UNINTERRUPTED_SIGNALS: dict[str, list[tuple[Any, ...]]] = {}


def stored_signals(backend: Backend) -> list[tuple[Any, ...]]:
    with Session(backend.engine) as session:
        rows = session.execute(
            select(
                SignalRow.asset_code,
                SignalRow.as_of,
                SignalRow.signal,
                SignalRow.macd,
                SignalRow.signal_line,
                SignalRow.histogram,
            ).order_by(SignalRow.asset_code, SignalRow.as_of)
        )
        return [tuple(row) for row in rows]


def assert_signals_follow(vigil: VigilProcess, expected: Expected) -> None:
    """The brain reacted to the ingest events: every USD day after MACD's 33-day warm-up has
    a signal, up to the last one, and there is an analysis snapshot."""
    usd_days = sorted(expected.series("USD"))

    def complete() -> dict[str, Any] | None:
        page: dict[str, Any] = vigil.get_json("/api/v1/markets/signals", code="USD", limit=1)
        return page if page["total"] == len(usd_days) - 33 else None

    page = wait_for(
        complete, timeout=60, what="USD signals for every day", diagnostics=vigil.diagnostics
    )
    (latest,) = page["items"]
    assert latest["as_of"] == usd_days[-1].isoformat()
    assert latest["signal"] in {"BUY", "HOLD", "SELL"}
    analysis = vigil.get_json("/api/v1/markets/analysis", code="USD")
    assert analysis["stats"]["to"] == usd_days[-1].isoformat()


def stop_cleanly(vigil: VigilProcess) -> list[dict[str, Any]]:
    """SIGTERM: vigil shuts down gracefully. Returns its log records (all JSON)."""
    returncode = vigil.terminate()
    # uvicorn re-raises the SIGTERM it handled once it has shut down (uvicorn >= 0.29), so the
    # exit status is -SIGTERM; the log shows whether the shutdown was the graceful one.
    assert returncode in (0, -signal.SIGTERM), f"exit code {returncode}\n{vigil.diagnostics()}"
    records = vigil.log_records()
    messages = [record.get("msg") for record in records]
    assert "Application shutdown complete." in messages, vigil.diagnostics()
    errors = [r for r in records if r.get("level") in ("error", "critical")]
    assert not errors, f"errors logged: {errors[:3]}"
    return records


def test_up_backfills_serves_and_stops_cleanly(
    backend: Backend,
    start_fake_nbp: StartNbp,
    start_vigil: StartVigil,
    uninterrupted_rows: dict[str, StoredRows],
) -> None:
    nbp = start_fake_nbp(0.01)
    expected = nbp.expected
    vigil = start_vigil(backend, nbp)
    vigil.wait_ready()

    run = vigil.wait_backfill_finished(timeout=BACKFILL_TIMEOUT)
    assert run["status"] == "ok", f"backfill ended {run}\n{vigil.diagnostics()}"
    assert run["error"] is None
    assert run["rows_written"] == expected.total

    stored = backend.stored_rows()
    assert_rows_match(stored, expected)
    uninterrupted_rows[backend.name] = stored

    stats = backfill_stats(vigil)
    assert (stats["runs"], stats["ok"], stats["failed"], stats["running"]) == (1, 1, 0, 0)
    assert stats["rows_written"] == expected.total
    assert_api_serves(vigil, expected)
    assert_metrics(vigil, ok_runs=1)
    assert_signals_follow(vigil, expected)
    assert vigil.wait_jobs_idle()
    UNINTERRUPTED_SIGNALS[backend.name] = stored_signals(backend)

    records = stop_cleanly(vigil)
    retries = [r for r in records if r.get("logger", "").endswith("sources.nbp")]
    assert retries, "no NBP retry was logged, yet the fake answered 500 to every 23rd request"


def test_up_resumes_after_sigkill_mid_backfill(
    backend: Backend,
    start_fake_nbp: StartNbp,
    start_vigil: StartVigil,
    uninterrupted_rows: dict[str, StoredRows],
) -> None:
    nbp = start_fake_nbp(0.03, fault_status=429)  # rate limited now and then
    expected = nbp.expected

    # First run: killed once part of the history is stored.
    first = start_vigil(backend, nbp)
    first.wait_ready()

    def partly_loaded() -> int | None:
        first.ensure_alive()
        count = backend.price_count()
        return count if count and count >= expected.total // 5 else None

    wait_for(
        partly_loaded,
        timeout=BACKFILL_TIMEOUT,
        what="part of the history to be stored",
        interval=0.05,
        diagnostics=first.diagnostics,
    )
    first.kill()
    rows_before = backend.price_count()
    assert rows_before is not None
    assert 0 < rows_before < expected.total, (
        f"{rows_before} of {expected.total} rows at SIGKILL: the backfill was not interrupted"
    )
    (killed_run,) = backend.job_runs(BACKFILL)
    assert killed_run.status == "running"
    assert killed_run.worker.endswith(f":{first.pid}"), killed_run.worker
    partial = backend.stored_rows()
    assert partial.rows == partial.distinct_keys
    assert all(expected.rates[k] == v for k, v in partial.rates.items())

    # Second run on the same database: closes the dead run and loads the rest.
    second = start_vigil(backend, nbp)
    second.wait_ready()
    run = second.wait_backfill_finished(after_id=killed_run.id, timeout=BACKFILL_TIMEOUT)
    assert run["status"] == "ok", f"backfill ended {run}\n{second.diagnostics()}"
    assert run["rows_written"] == expected.total - rows_before

    stored = backend.stored_rows()
    assert_rows_match(stored, expected)
    if backend.name in uninterrupted_rows:
        assert stored == uninterrupted_rows[backend.name]

    runs = backend.job_runs(BACKFILL)
    assert [r.id for r in runs] == [killed_run.id, run["id"]]
    dead, resumed = runs
    assert dead.status == "failed"
    assert dead.finished_at is not None
    assert dead.error is not None
    assert "interrupted" in dead.error
    assert str(first.pid) in dead.error
    assert resumed.status == "ok"
    assert resumed.worker.endswith(f":{second.pid}"), resumed.worker

    stats = backfill_stats(second)
    assert (stats["runs"], stats["ok"], stats["failed"], stats["running"]) == (2, 1, 1, 0)
    assert_metrics(second, ok_runs=1)
    # The brain, killed too, catches up: the same signals as the uninterrupted run, bit for bit.
    assert_signals_follow(second, expected)
    assert second.wait_jobs_idle()
    if backend.name in UNINTERRUPTED_SIGNALS:
        assert stored_signals(backend) == UNINTERRUPTED_SIGNALS[backend.name]

    stop_cleanly(second)
