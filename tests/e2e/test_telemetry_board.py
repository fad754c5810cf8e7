"""The telemetry board end to end, as real processes on PostgreSQL and a private Redis:
`vigil api` adds BTC (checked with a local CoinGecko that replays CoinGecko's shapes) and an
alert rule; `vigil scheduler` ticks every second; `vigil worker` polls, stores, evaluates the
rule when the price moves, and notifies a local webhook. The alert is served by /alerts,
logged as one JSON line, counted in the worker's /metrics and received by the webhook."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    Backend,
    FakeNbpProcess,
    StartVigil,
    free_port,
    wait_for,
)
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.redis_server import PrivateRedis
from tests.support.webhook import Receiver

pytestmark = pytest.mark.e2e


def test_a_price_move_becomes_an_alert_everywhere(
    postgres: Backend,
    private_redis: PrivateRedis,
    start_fake_nbp: Any,
    start_vigil: StartVigil,
) -> None:
    now = int(time.time())
    chart = [((now - 5400 + 300 * i) * 1000, "100") for i in range(17)]  # flat, last hour+
    receiver = Receiver()
    with FakeCoinGecko(
        {"bitcoin": {"usd": "100"}}, last_updated_at=now - 240, charts={"bitcoin": chart}
    ) as coingecko:
        nbp: FakeNbpProcess = start_fake_nbp(delay=0.0)
        worker_metrics = free_port()
        env = {
            "VIGIL_REDIS_URL": private_redis.url,
            "VIGIL_COINGECKO_BASE_URL": coingecko.base_url,
            "VIGIL_COINGECKO_POLL_SECONDS": "1",
            "VIGIL_WEBHOOKS": json.dumps([{"url": receiver.url("/hook")}]),
            "VIGIL_WEBHOOK_BACKOFF_INITIAL_SECONDS": "0",
            "VIGIL_RUN_JOBS_ON_START": "false",  # no NBP backfill: this is about crypto
        }
        api = start_vigil(postgres, nbp, ("api",), env)
        api.wait_ready()
        # The first account of a new installation is its Admin; its token adds the asset.
        account = {"email": "ops@example.org", "password": "a long e2e password"}
        assert api.client.post("/api/v1/auth/register", json=account).status_code == 201
        signed_in = api.client.post(
            "/api/v1/auth/token",
            data={"username": account["email"], "password": account["password"]},
        )
        assert signed_in.status_code == 200, signed_in.text
        api.client.headers["Authorization"] = f"Bearer {signed_in.json()['access_token']}"
        added = api.client.post(
            "/api/v1/markets/assets",
            json={"symbol": "BTC", "source": "coingecko", "source_ref": "bitcoin", "quote": "usd"},
        )
        assert added.status_code == 201, added.text
        rule = api.client.post(
            "/api/v1/markets/alert-rules",
            json={"asset": "BTC", "threshold_pct": "5", "window_minutes": 60, "direction": "up"},
        )
        assert rule.status_code == 201, rule.text

        worker = start_vigil(postgres, nbp, ("worker", "--metrics-port", str(worker_metrics)), env)
        scheduler = start_vigil(postgres, nbp, ("scheduler",), env)

        def polled() -> bool | None:
            worker.ensure_alive()
            scheduler.ensure_alive()
            window = api.get_json("/api/v1/markets/prices", asset="BTC", window="15m")
            return True if window["total"] >= 1 else None  # the tick stored the spot price

        wait_for(polled, timeout=60, what="the first poll", diagnostics=worker.diagnostics)
        coingecko.set_price("bitcoin", "usd", "106.5", at=int(datetime.now(UTC).timestamp()))

        def alerted() -> list[Any] | None:
            items: list[Any] = api.get_json("/api/v1/markets/alerts", asset="BTC")["items"]
            return items or None

        [alert] = wait_for(
            alerted, timeout=60, what="the alert in /alerts", diagnostics=worker.diagnostics
        )
        assert (alert["direction"], alert["change_pct"]) == ("up", "6.5000")
        [notice] = wait_for(
            lambda: receiver.on("/hook") or None, timeout=30, what="the webhook notice"
        )
        assert notice["details"]["id"] == alert["id"]

        metrics = httpx.get(f"http://127.0.0.1:{worker_metrics}/metrics", timeout=5).text
        assert 'alerts_total{asset="BTC",direction="up"} 1.0' in metrics
        lines = [r for r in worker.log_records() if "alert" in r and isinstance(r["alert"], dict)]
        assert [r["alert"]["change_pct"] for r in lines] == ["6.5000"]

        time.sleep(2.5)  # more ticks of the same rally: no second alert
        assert len(api.get_json("/api/v1/markets/alerts", asset="BTC")["items"]) == 1
        for process in (scheduler, worker):
            assert process.terminate() == 0
    receiver.close()
