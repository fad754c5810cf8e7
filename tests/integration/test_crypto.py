"""Crypto assets against a fake CoinGecko on loopback: adding one (checked with the source,
its last 24 hours loaded), every refusal a clear 4xx with nothing written, and the poll
tick storing one batched answer per quote currency."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import TransactionalDatabase
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.app import api
from vigil.core.runtime import Runtime
from vigil.markets import crypto
from vigil.markets.models import Asset, Price

T0 = 1_764_000_000  # unix seconds of the fake's "last updated"
CHART = [((T0 - 3600 + 300 * i) * 1000, f"9{i}000.5") for i in range(12)]
ASSETS = "/api/v1/markets/assets"


@pytest.fixture
def coingecko() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko(
        {"bitcoin": {"usd": "91000.25"}, "ethereum": {"usd": "3000.5", "eur": "2800.1"}},
        last_updated_at=T0,
        charts={"bitcoin": CHART, "ethereum": CHART[:3]},
    ) as fake:
        yield fake


@pytest.fixture
def app(db: TransactionalDatabase, coingecko: FakeCoinGecko) -> tuple[TestClient, Runtime]:
    return api(
        db,
        as_role="operator",
        coingecko_base_url=coingecko.base_url,
        coingecko_max_attempts=2,
        coingecko_backoff_initial_seconds=0,
        coingecko_backoff_max_seconds=0,
    )


def add(client: TestClient, **body: Any) -> Any:
    return client.post(ASSETS, json={"source": "coingecko", "quote": "usd", **body})


def prices_of(db: TransactionalDatabase, code: str) -> list[tuple[datetime, Decimal]]:
    with db.session() as session:
        stmt = (
            select(Price.ts, Price.price)
            .join(Asset, Asset.id == Price.asset_id)
            .where(Asset.code == code)
            .order_by(Price.ts)
        )
        return [(ts, Decimal(price)) for ts, price in session.execute(stmt)]


def asset_count(db: TransactionalDatabase) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Asset)) or 0


def test_adding_an_asset_checks_it_and_loads_its_last_day(
    db: TransactionalDatabase, app: tuple[TestClient, Runtime]
) -> None:
    client, _ = app
    created = add(client, symbol="btc", source_ref="bitcoin")
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["code"], body["kind"], body["source_ref"], body["quote"]) == (
        "BTC",
        "crypto",
        "bitcoin",
        "USD",
    )
    assert body["backfilled_rows"] == len(CHART)
    stored = prices_of(db, "BTC")
    assert stored[0] == (datetime.fromtimestamp(CHART[0][0] / 1000, UTC), Decimal("90000.5"))
    assert len(stored) == len(CHART)

    listed = client.get(ASSETS, params={"kind": "crypto"}).json()
    assert [(a["code"], a["source_ref"]) for a in listed["items"]] == [("BTC", "bitcoin")]
    assert client.get(ASSETS, params={"kind": "gold"}).json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"symbol": "ETH", "source_ref": "no-such-coin"}, 422, "no price for coin id"),
        ({"symbol": "ETH", "source_ref": "ethereum", "source": "binance"}, 422, "unknown source"),
        ({"symbol": "E", "source_ref": "ethereum"}, 422, "symbol"),
        ({"symbol": "ETH", "source_ref": "ether eum"}, 422, "not a CoinGecko coin id"),
        ({"symbol": "ETH", "source_ref": "ethereum", "quote": "u$d"}, 422, "quote currency"),
        ({"symbol": "ETH"}, 422, "source_ref"),
    ],
)
def test_refused_assets_are_a_clear_4xx_and_write_nothing(
    db: TransactionalDatabase,
    app: tuple[TestClient, Runtime],
    body: dict[str, str],
    status: int,
    needle: str,
) -> None:
    client, _ = app
    response = add(client, **body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert needle in response.json()["detail"]
    assert asset_count(db) == 0


def test_a_taken_symbol_is_a_conflict(
    db: TransactionalDatabase, app: tuple[TestClient, Runtime]
) -> None:
    client, _ = app
    assert add(client, symbol="BTC", source_ref="bitcoin").status_code == 201
    again = add(client, symbol="btc", source_ref="ethereum")
    assert again.status_code == 409
    assert "exists already" in again.json()["detail"]
    assert asset_count(db) == 1


def test_a_source_that_does_not_answer_is_a_503_and_writes_nothing(
    db: TransactionalDatabase, app: tuple[TestClient, Runtime], coingecko: FakeCoinGecko
) -> None:
    client, _ = app
    for _ in range(2):  # every attempt
        coingecko.queue_fault(500, b'{"error":"boom"}')
    response = add(client, symbol="BTC", source_ref="bitcoin")
    assert response.status_code == 503
    assert "try again later" in response.json()["detail"]
    assert asset_count(db) == 0


def test_the_poll_tick_stores_one_batched_answer_per_quote(
    db: TransactionalDatabase, app: tuple[TestClient, Runtime], coingecko: FakeCoinGecko
) -> None:
    client, runtime = app
    for symbol, ref, quote in (("BTC", "bitcoin", "usd"), ("ETH", "ethereum", "eur")):
        assert add(client, symbol=symbol, source_ref=ref, quote=quote).status_code == 201
    seen: list[dict[str, Any]] = []
    runtime.events.subscribe("prices.ingested", lambda _t, payload: seen.append(payload))
    coingecko.requests.clear()

    run = runtime.runner.run("markets.crypto.poll")
    assert (run.status, run.rows_written) == ("ok", 2)
    assert [r.path for r in coingecko.requests] == ["/api/v3/simple/price"] * 2  # usd, eur
    at = datetime.fromtimestamp(T0, UTC)
    assert prices_of(db, "BTC")[-1] == (at, Decimal("91000.25"))
    assert prices_of(db, "ETH")[-1] == (at, Decimal("2800.1"))
    assert sorted(e["asset"] for e in seen) == ["BTC", "ETH"]

    before = len(prices_of(db, "BTC"))
    runtime.runner.run("markets.crypto.poll")  # CoinGecko has not updated: same rows
    assert len(prices_of(db, "BTC")) == before
    coingecko.set_price("bitcoin", "usd", "91500", at=T0 + 60)
    runtime.runner.run("markets.crypto.poll")
    assert prices_of(db, "BTC")[-1] == (datetime.fromtimestamp(T0 + 60, UTC), Decimal("91500"))


def test_the_poll_is_scheduled_every_poll_interval(
    db: TransactionalDatabase, coingecko: FakeCoinGecko
) -> None:
    client, _ = api(db, coingecko_base_url=coingecko.base_url, coingecko_poll_seconds=30)
    upcoming = client.get("/api/v1/markets/stats/upcoming").json()
    poll = next(u for u in upcoming if u["job_type"] == "markets.crypto.poll")
    assert poll["cron"] == "@every 30s"
    first, second = (datetime.fromisoformat(t) for t in poll["next_runs"][:2])
    assert (second - first).total_seconds() == 30


# --- GET /prices: a window of recent prices -------------------------------------------------


def seed_minutes(db: TransactionalDatabase, now: datetime, count: int) -> list[Decimal]:
    """ETH priced every minute, 30 s off the minute so windows never cut at a point."""
    values = [Decimal(3000) + Decimal((i * 37) % 101) / 10 for i in range(count)]
    with db.session() as session:
        asset = Asset(code="ETH", name="ethereum", kind="crypto", source="coingecko", quote="USD")
        session.add(asset)
        session.flush()
        rows = [
            crypto.PriceRow(asset.id, now - timedelta(seconds=60 * i + 30), values[i])
            for i in range(count)
        ]
        crypto.store_prices(session, rows, "coingecko", now)
    return values


def test_a_window_of_prices_is_downsampled_keeping_its_shape(
    db: TransactionalDatabase, app: tuple[TestClient, Runtime]
) -> None:
    client, _ = app
    values = seed_minutes(db, datetime.now(UTC), 2000)
    short = client.get("/api/v1/markets/prices", params={"asset": "eth", "window": "15m"})
    assert short.status_code == 200, short.text
    body = short.json()
    assert (body["asset"], body["quote"], body["window"], body["total"]) == (
        "ETH",
        "USD",
        "15m",
        15,
    )
    assert [Decimal(p["price"]) for p in body["points"]] == values[:15][::-1]  # oldest first

    day = client.get(
        "/api/v1/markets/prices", params={"asset": "ETH", "window": "24h", "max_points": 100}
    ).json()
    assert day["total"] == 1440
    points = [Decimal(p["price"]) for p in day["points"]]
    assert 4 <= len(points) <= 100
    assert (points[0], points[-1]) == (values[1439], values[0])  # the ends are kept
    assert (min(points), max(points)) == (min(values[:1440]), max(values[:1440]))


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"asset": "ETH", "window": "1w"}, 422, "e.g. 15m, 1h, 24h, 7d or 30d"),
        ({"asset": "ETH", "window": "400d"}, 422, "365d"),
        ({"asset": "ETH", "max_points": 2}, 422, "max_points"),
        ({"asset": "DOGE"}, 404, "Unknown asset code 'DOGE'"),
    ],
)
def test_a_bad_window_request_is_a_clear_4xx(
    db: TransactionalDatabase,
    app: tuple[TestClient, Runtime],
    params: dict[str, Any],
    status: int,
    needle: str,
) -> None:
    client, _ = app
    seed_minutes(db, datetime.now(UTC), 10)
    response = client.get("/api/v1/markets/prices", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert needle in response.json()["detail"]
