"""Alert rules over the API and alerts fired by the job, on both databases: "N % in M
minutes" on crypto (minute prices) and NBP (daily rates) assets, once per move, with the
row, the log line and the metric."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from vigil.core.runtime import Runtime
from vigil.markets import crypto
from vigil.markets.models import Asset

RULES = "/api/v1/markets/alert-rules"


def seed(
    db: TransactionalDatabase, code: str, kind: str, points: list[tuple[datetime, str]]
) -> None:
    with db.session() as session:
        asset = Asset(code=code, name=code.lower(), kind=kind, source="test", quote="USD")
        session.add(asset)
        session.flush()
        rows = [crypto.PriceRow(asset.id, ts, Decimal(price)) for ts, price in points]
        crypto.store_prices(session, rows, "test", datetime.now(UTC))


def add_price(db: TransactionalDatabase, code: str, ts: datetime, price: str) -> None:
    with db.session() as session:
        asset_id = session.query(Asset.id).filter(Asset.code == code).scalar()
        crypto.store_prices(session, [crypto.PriceRow(asset_id, ts, Decimal(price))], "test", ts)


def rule(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(RULES, json={"window_minutes": 60, "threshold_pct": "5", **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def alerts_total(asset: str, direction: str) -> float:
    labels = {"asset": asset, "direction": direction}
    return REGISTRY.get_sample_value("alerts_total", labels) or 0


@pytest.fixture
def app(db: TransactionalDatabase) -> tuple[TestClient, Runtime]:
    return api(db, as_role="operator", cache_ttl=0)


def test_rules_are_created_read_replaced_and_deleted(
    db: TransactionalDatabase, app: tuple[TestClient, Runtime]
) -> None:
    client, _ = app
    seed(db, "BTC", "crypto", [])
    default = rule(client)  # no asset: every asset's default
    own = rule(client, asset="btc", direction="up", cooldown_minutes=30)
    assert (default["asset"], own["asset"], own["direction"]) == (None, "BTC", "up")
    assert own["threshold_pct"] == "5"
    assert client.get(RULES).json()["total"] == 2
    assert [r["id"] for r in client.get(RULES, params={"asset": "BTC"}).json()["items"]] == [
        own["id"]
    ]
    replaced = client.put(
        f"{RULES}/{own['id']}",
        json={"asset": "BTC", "threshold_pct": "2.5", "window_minutes": 15, "direction": "down"},
    )
    assert replaced.status_code == 200
    assert (replaced.json()["threshold_pct"], replaced.json()["window_minutes"]) == ("2.5", 15)
    assert client.delete(f"{RULES}/{own['id']}").status_code == 204
    gone = client.get(f"{RULES}/{own['id']}")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"asset": "DOGE"}, "no asset 'DOGE'"),
        ({"threshold_pct": "0"}, "threshold_pct"),
        ({"threshold_pct": "-1"}, "threshold_pct"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"direction": "sideways"}, "direction"),
        ({"cooldown_minutes": 0}, "cooldown_minutes"),
    ],
)
def test_a_bad_rule_is_a_422_and_nothing_is_stored(
    app: tuple[TestClient, Runtime], body: dict[str, Any], needle: str
) -> None:
    client, _ = app
    response = client.post(RULES, json={"window_minutes": 60, "threshold_pct": "5", **body})
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert client.get(RULES).json()["total"] == 0


def test_a_move_fires_once_with_its_details_log_line_and_metric(
    db: TransactionalDatabase,
    app: tuple[TestClient, Runtime],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, runtime = app
    now = datetime.now(UTC).replace(microsecond=0)
    seed(db, "BTC", "crypto", [(now - timedelta(minutes=90 - i), "100") for i in range(80)])
    rule(client, asset="BTC", direction="up")
    before = alerts_total("BTC", "up")

    add_price(db, "BTC", now - timedelta(seconds=5), "106")  # +6 % in the last hour
    with caplog.at_level(logging.WARNING, logger="vigil.markets.alerting"):
        runtime.events.publish("prices.ingested", {"type": "crypto", "asset": "BTC"})
        runtime.queue.drain()
    [alert] = client.get("/api/v1/markets/alerts", params={"asset": "BTC"}).json()["items"]
    assert (alert["direction"], alert["change_pct"], alert["window_minutes"]) == (
        "up",
        "6.0000",
        60,
    )
    assert (alert["start_price"], alert["end_price"]) == ("100", "106")
    assert alerts_total("BTC", "up") == before + 1
    [line] = [r for r in caplog.records if hasattr(r, "alert")]
    assert line.alert["asset"] == "BTC"  # type: ignore[attr-defined]
    assert line.alert["change_pct"] == "6.0000"  # type: ignore[attr-defined]

    add_price(db, "BTC", now, "107")  # the rally goes on: the same move, no new alert
    run = runtime.runner.run("markets.alerts", {"assets": ["BTC"]})
    assert (run.status, run.rows_written) == ("ok", 0)
    assert client.get("/api/v1/markets/alerts").json()["total"] == 1


def test_own_rules_replace_the_default_and_nbp_daily_rates_alert_too(
    db: TransactionalDatabase, app: tuple[TestClient, Runtime]
) -> None:
    client, runtime = app
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seed(db, "USD", "currency", [(today - timedelta(days=1), "4.0000"), (today, "4.0500")])
    seed(db, "EUR", "currency", [(today - timedelta(days=1), "4.3000"), (today, "4.3500")])
    rule(client, threshold_pct="1", window_minutes=1440)  # default: 1 % in a day
    rule(client, asset="EUR", threshold_pct="5", window_minutes=1440)  # EUR's own: 5 %

    run = runtime.runner.run("markets.alerts", {"assets": ["USD", "EUR"]})
    assert (run.status, run.rows_written) == ("ok", 1)
    [alert] = client.get("/api/v1/markets/alerts").json()["items"]
    assert (alert["asset"], alert["direction"], alert["change_pct"]) == ("USD", "up", "1.2500")


def test_without_any_rule_the_job_is_skipped(
    db: TransactionalDatabase, app: tuple[TestClient, Runtime]
) -> None:
    _, runtime = app
    seed(db, "BTC", "crypto", [(datetime.now(UTC), "1")])
    run = runtime.runner.run("markets.alerts", {"assets": ["BTC"]})
    assert run.status == "skipped"
