"""The brain on both backends: MACD signals stored per day, incremental runs identical to a
full recompute, settings changes, snapshots, the event trigger and the watchdog."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import TransactionalDatabase
from vigil.core.api import create_app
from vigil.core.runtime import Runtime
from vigil.markets import brain, crypto, service
from vigil.markets.analytics.macd import MacdParams, macd
from vigil.markets.analytics.signals import classify
from vigil.markets.jobs import merge_signal_requests
from vigil.markets.models import AnalysisSnapshot, Asset, SignalRow
from vigil.markets.sources.base import Quote, SeriesKind
from vigil.settings import Settings

SERIES = Path(__file__).parents[1] / "fixtures" / "nbp" / "series"
BRAIN = brain.BrainSettings(MacdParams(), horizon_days=5, window_days=90)


def real_series(code: str) -> list[tuple[date, Decimal]]:
    with (SERIES / f"{code}.csv").open() as handle:
        return [
            (date.fromisoformat(r["effective_date"]), Decimal(r["mid"]))
            for r in csv.DictReader(handle)
        ]


USD = real_series("USD")


def store(session: Session, code: str, points: list[tuple[date, Decimal]]) -> Asset:
    service.store_quotes(
        session, [Quote(code, code, d, v) for d, v in points], SeriesKind.CURRENCY, "nbp"
    )
    return service.get_asset(session, code)


def stored_signals(session: Session, code: str) -> list[SignalRow]:
    return list(
        session.scalars(
            select(SignalRow).where(SignalRow.asset_code == code).order_by(SignalRow.as_of)
        )
    )


def test_full_compute_stores_one_row_per_day_after_the_warm_up(session: Session) -> None:
    asset = store(session, "USD", USD)
    written = brain.compute_signals(session, asset, None, BRAIN)
    rows = stored_signals(session, "USD")
    lookback = MacdParams().lookback
    assert written.full
    assert written.rows == len(rows) == len(USD) - lookback
    assert rows[0].as_of == USD[lookback][0]
    assert rows[-1].as_of == USD[-1][0]
    expected = macd([float(v) for _, v in USD])
    assert [r.macd for r in rows] == expected.macd[lookback:].tolist()
    assert [r.histogram for r in rows] == expected.histogram[lookback:].tolist()
    labels = classify(expected.histogram[lookback:], None)
    assert [r.signal for r in rows] == [label.value for label in labels]
    assert {r.signal for r in rows} == {"BUY", "HOLD", "SELL"}
    assert all(
        (r.fast_period, r.slow_period, r.signal_period, r.horizon_days) == (12, 26, 9, 5)
        for r in rows
    )


def test_incremental_runs_equal_a_full_recompute(session: Session) -> None:
    asset = store(session, "USD", USD[:3000])
    brain.compute_signals(session, asset, None, BRAIN)
    for start, end in [(3000, 3001), (3001, 3100), (3100, len(USD))]:
        store(session, "USD", USD[start:end])
        written = brain.compute_signals(session, asset, USD[start][0], BRAIN)
        assert not written.full
        assert written.rows == end - start
    incremental = [
        (r.as_of, r.macd, r.signal_line, r.histogram, r.signal)
        for r in stored_signals(session, "USD")
    ]
    brain.compute_signals(session, asset, None, BRAIN)  # from scratch
    full = [
        (r.as_of, r.macd, r.signal_line, r.histogram, r.signal)
        for r in stored_signals(session, "USD")
    ]
    assert incremental == full  # bit for bit, labels included


def test_a_corrected_price_recomputes_from_that_day(session: Session) -> None:
    asset = store(session, "USD", USD)
    brain.compute_signals(session, asset, None, BRAIN)
    day, value = USD[4000]
    store(session, "USD", [(day, value + Decimal("0.1"))])
    written = brain.compute_signals(session, asset, day, BRAIN)
    assert not written.full
    assert written.rows == len(USD) - 4000
    values = [float(v) for _, v in USD]
    values[4000] = float(value + Decimal("0.1"))
    expected = macd(values)
    rows = stored_signals(session, "USD")
    assert [r.macd for r in rows] == expected.macd[MacdParams().lookback :].tolist()


def test_a_change_inside_the_warm_up_recomputes_everything(session: Session) -> None:
    asset = store(session, "USD", USD[:200])
    brain.compute_signals(session, asset, None, BRAIN)
    written = brain.compute_signals(session, asset, USD[10][0], BRAIN)
    assert written.full


def test_too_few_prices_store_nothing(session: Session) -> None:
    asset = store(session, "USD", USD[:33])
    written = brain.compute_signals(session, asset, None, BRAIN)
    assert written.rows == 0
    assert stored_signals(session, "USD") == []


def test_new_periods_make_the_asset_stale_and_replace_its_signals(session: Session) -> None:
    asset = store(session, "USD", USD[:500])
    brain.compute_signals(session, asset, None, BRAIN)
    assert brain.stale_assets(session, BRAIN.params) == {}
    other = replace(BRAIN, params=MacdParams(5, 35, 5))
    assert brain.stale_assets(session, other.params) == {"USD": None}
    brain.compute_signals(session, asset, None, other)
    rows = stored_signals(session, "USD")
    assert len(rows) == 500 - other.params.lookback
    assert {(r.fast_period, r.slow_period, r.signal_period) for r in rows} == {(5, 35, 5)}


def test_prices_newer_than_signals_are_stale_from_the_next_day(session: Session) -> None:
    asset = store(session, "USD", USD[:500])
    brain.compute_signals(session, asset, None, BRAIN)
    store(session, "USD", USD[500:503])
    store(session, "EUR", real_series("EUR")[:20])  # too short to signal: not stale
    assert brain.stale_assets(session, BRAIN.params) == {
        "USD": date.fromordinal(USD[499][0].toordinal() + 1)
    }


def test_snapshot_summarises_the_window(session: Session) -> None:
    asset = store(session, "USD", USD)
    brain.compute_signals(session, asset, None, BRAIN)
    stats = brain.refresh_snapshot(session, asset, 90)
    assert stats is not None
    row = session.get(AnalysisSnapshot, ("USD", 90))
    assert row is not None
    assert row.stats == stats
    assert stats["last"] == float(USD[-1][1])
    assert stats["to"] == USD[-1][0].isoformat()
    window = [float(v) for d, v in USD if (USD[-1][0] - d).days < 90]
    assert stats["points"] == len(window)
    assert stats["min"] == min(window)
    assert stats["max"] == max(window)
    assert np.isclose(stats["mean"], np.mean(window))


def test_merge_keeps_the_earliest_start_per_asset() -> None:
    merged = merge_signal_requests(
        {"assets": {"USD": "2024-01-05", "EUR": "2024-01-02"}},
        {"assets": {"USD": "2024-01-03", "EUR": None, "CHF": "2024-02-01"}},
    )
    assert merged == {"assets": {"USD": "2024-01-03", "EUR": None, "CHF": "2024-02-01"}}


def test_ingest_event_triggers_signals_through_the_queue(db: TransactionalDatabase) -> None:
    runtime = Runtime.create(Settings(), db=db)
    updates: list[dict[str, Any]] = []
    runtime.events.subscribe("signals.updated", lambda topic, payload: updates.append(payload))
    with db.session() as session:
        service.store_quotes(
            session, [Quote("USD", "USD", d, v) for d, v in USD[:100]], SeriesKind.CURRENCY, "nbp"
        )
    for first, last in [(USD[0][0], USD[59][0]), (USD[60][0], USD[99][0])]:
        runtime.events.publish(
            "rates.ingested",
            {
                "type": "currency",
                "asset": "USD",
                "from": first.isoformat(),
                "to": last.isoformat(),
                "rows": 50,
                "job_id": 1,
            },
        )
    # both events wait in one coalesced run, from the earliest date
    assert runtime.queue.pending() == [
        ("markets.signals", {"assets": {"USD": "2002-01-02"}}),
        ("markets.alerts", {"assets": ["USD"]}),  # no rule: it fires nothing
    ]
    assert runtime.queue.drain() == 2
    with db.session() as session:
        assert len(stored_signals(session, "USD")) == 100 - 33
    (update,) = updates
    assert update["asset"] == "USD"
    assert update["rows"] == 67
    assert update["signal"] in {"BUY", "HOLD", "SELL"}
    # The newest signal for the dashboard: 1 BUY, 0 HOLD, -1 SELL.
    exported = REGISTRY.get_sample_value("vigil_markets_signal", {"asset": "USD"})
    assert exported == {"BUY": 1, "HOLD": 0, "SELL": -1}[update["signal"]]


def test_watchdog_queues_what_the_events_missed(db: TransactionalDatabase) -> None:
    runtime = Runtime.create(Settings(), db=db)
    with db.session() as session:
        store(session, "USD", USD[:100])  # no event published: as if Redis had been down
    run = runtime.runner.run("markets.signals.watchdog")
    assert run.status == "ok"
    assert "USD" in (run.message or "")
    runtime.queue.drain()
    assert runtime.runner.run("markets.signals.watchdog").status == "skipped"
    with db.session() as session:
        assert len(stored_signals(session, "USD")) == 67


@pytest.mark.parametrize("code", ["USD", "usd"])
def test_signals_api_newest_first(db: TransactionalDatabase, code: str) -> None:
    with db.session() as session:
        asset = store(session, "USD", USD[:300])
        brain.compute_signals(session, asset, None, BRAIN)
        gold = service.store_quotes(
            session, [Quote("XAU", "gold", d, v * 40) for d, v in USD[:100]], SeriesKind.GOLD, "nbp"
        )
        assert gold
        brain.compute_signals(session, service.get_asset(session, "XAU"), None, BRAIN)
        brain.refresh_snapshot(session, asset, 90)
    client = TestClient(create_app(Runtime.create(Settings(), db=db)))
    body = client.get("/api/v1/markets/signals", params={"code": code, "limit": 5}).json()
    assert body["total"] == 300 - 33
    assert len(body["items"]) == 5
    days = [i["as_of"] for i in body["items"]]
    assert days == sorted(days, reverse=True)
    assert days[0] == USD[299][0].isoformat()
    assert body["items"][0]["periods"] == {"fast": 12, "slow": 26, "signal": 9}
    latest = client.get("/api/v1/markets/signals").json()
    assert [(i["asset_code"], i["as_of"]) for i in latest["items"]] == [
        ("USD", USD[299][0].isoformat()),
        ("XAU", USD[99][0].isoformat()),
    ]
    analysis = client.get("/api/v1/markets/analysis", params={"code": code}).json()
    assert analysis["asset_code"] == "USD"
    assert analysis["window_days"] == 90
    assert analysis["stats"]["to"] == USD[299][0].isoformat()
    missing = client.get("/api/v1/markets/analysis", params={"code": "XAU"})
    assert missing.status_code == 404
    assert "No analysis" in missing.json()["detail"]
    unknown = client.get("/api/v1/markets/signals", params={"code": "ABC"})
    assert unknown.status_code == 404
    assert "Unknown asset code" in unknown.json()["detail"]


def test_intraday_prices_get_daily_signals_from_each_days_close(
    db: TransactionalDatabase,
) -> None:
    """A crypto asset's hourly prices: one signal per UTC day, computed on the day's last
    price; a new tick today moves today's signal, not a new row."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hours = 24 * 45
    prices = [Decimal(100) + Decimal((h * 7919) % 1000) / 100 for h in range(hours)]
    with db.session() as session:
        asset = Asset(code="BTC", name="bitcoin", kind="crypto", source="coingecko", quote="USD")
        session.add(asset)
        session.flush()
        rows = [
            crypto.PriceRow(asset.id, start + timedelta(hours=h), prices[h]) for h in range(hours)
        ]
        crypto.store_prices(session, rows, "coingecko", start)
    runtime = Runtime.create(Settings(), db=db)
    last_hour = start + timedelta(hours=hours - 1)
    runtime.events.publish(
        "prices.ingested", {"type": "crypto", "asset": "BTC", "from": start.isoformat()}
    )
    runtime.queue.drain()

    closes = [float(prices[day * 24 + 23]) for day in range(45)]
    expected = macd(closes, MacdParams())
    with db.session() as session:
        signals = stored_signals(session, "BTC")
    lookback = MacdParams().lookback
    assert [s.as_of for s in signals] == [
        (start + timedelta(days=d)).date() for d in range(lookback, 45)
    ]
    assert [s.macd for s in signals] == pytest.approx(list(expected.macd[lookback:]), abs=1e-12)

    with db.session() as session:  # a later tick of the last day
        asset_id = session.scalar(select(Asset.id).where(Asset.code == "BTC"))
        tick = crypto.PriceRow(asset_id, last_hour + timedelta(minutes=30), Decimal(500))
        crypto.store_prices(session, [tick], "coingecko", last_hour)
    runtime.events.publish(
        "prices.ingested",
        {"type": "crypto", "asset": "BTC", "from": (last_hour + timedelta(minutes=30)).isoformat()},
    )
    runtime.queue.drain()
    with db.session() as session:
        after = stored_signals(session, "BTC")
    assert len(after) == len(signals)
    assert after[-1].macd != signals[-1].macd
    again = macd([*closes[:-1], 500.0], MacdParams())
    assert after[-1].macd == pytest.approx(float(again.macd[-1]), abs=1e-12)
