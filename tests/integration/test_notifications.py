"""Alert notifications to a real HTTP receiver on loopback: the three payload formats,
retries on 5xx, no retry on a refusal, and the whole path from a price move to the
webhook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from tests.integration.test_alerts import add_price, rule, seed
from tests.support.app import api
from tests.support.webhook import Receiver
from vigil.core.models import JobLog
from vigil.core.notify import Notice, WebhookTarget, send


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


NOTICE = Notice("alert", "Vigil alert: BTC up", "BTC moved +6 % in 60 min", {"asset": "BTC"})


def test_each_format_gets_its_payload(receiver: Receiver) -> None:
    targets = [
        WebhookTarget(url=receiver.url("/generic"), format="generic"),
        WebhookTarget(url=receiver.url("/slack"), format="slack"),
        WebhookTarget(url=receiver.url("/discord"), format="discord"),
    ]
    assert send(targets, NOTICE) == []
    assert receiver.on("/generic") == [
        {
            "event": "alert",
            "title": "Vigil alert: BTC up",
            "text": "BTC moved +6 % in 60 min",
            "details": {"asset": "BTC"},
        }
    ]
    assert receiver.on("/slack") == [{"text": "Vigil alert: BTC up: BTC moved +6 % in 60 min"}]
    assert receiver.on("/discord") == [{"content": "Vigil alert: BTC up: BTC moved +6 % in 60 min"}]


def test_a_failing_webhook_is_retried_with_backoff_and_a_refusal_is_not(
    receiver: Receiver,
) -> None:
    receiver.plan = {"/flaky": [500, 503], "/refusing": [400]}
    waits: list[float] = []
    errors = send(
        [
            WebhookTarget(url=receiver.url("/flaky")),
            WebhookTarget(url=receiver.url("/refusing")),
        ],
        NOTICE,
        max_attempts=5,
        backoff_initial=1,
        backoff_max=10,
        sleep=waits.append,
    )
    assert len(receiver.on("/flaky")) == 3  # 500, 503, then delivered
    assert len(waits) == 2
    assert all(0 < w <= 10 for w in waits)
    assert len(receiver.on("/refusing")) == 1  # a 400 is final
    [error] = errors
    assert "refused" in error
    assert "400" in error


def test_a_price_move_reaches_the_webhook(db: TransactionalDatabase, receiver: Receiver) -> None:
    client, runtime = api(
        db,
        as_role="operator",
        cache_ttl=0,
        webhooks=[{"url": receiver.url("/hook"), "format": "generic"}],
        webhook_backoff_initial_seconds=0,
        webhook_backoff_max_seconds=0,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    seed(db, "BTC", "crypto", [(now - timedelta(minutes=90 - i), "100") for i in range(80)])
    rule(client, asset="BTC", direction="up")
    add_price(db, "BTC", now - timedelta(seconds=2), "94")  # down: the rule watches up only
    add_price(db, "BTC", now - timedelta(seconds=1), "106")
    runtime.events.publish("prices.ingested", {"type": "crypto", "asset": "BTC"})
    runtime.queue.drain()  # alerts, then the notification it triggered
    [body] = receiver.on("/hook")
    assert body["event"] == "alert"
    assert body["details"]["asset"] == "BTC"
    assert body["details"]["change_pct"] == "6.0000"
    assert "BTC moved +6.0000 % in 60 min" in body["text"]


def test_a_webhook_that_stays_down_fails_the_job_and_keeps_the_alert(
    db: TransactionalDatabase, receiver: Receiver
) -> None:
    receiver.plan = {"/down": [500] * 10}
    client, runtime = api(
        db,
        as_role="operator",
        cache_ttl=0,
        webhooks=[{"url": receiver.url("/down")}],
        webhook_max_attempts=3,
        webhook_backoff_initial_seconds=0,
        webhook_backoff_max_seconds=0,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    seed(
        db,
        "BTC",
        "crypto",
        [(now - timedelta(minutes=60), "100"), (now - timedelta(seconds=1), "80")],
    )
    rule(client, asset="BTC")
    runtime.runner.run("markets.alerts", {"assets": ["BTC"]})
    runtime.queue.drain()
    assert len(receiver.on("/down")) == 3
    with db.session() as session:
        run = session.scalars(
            select(JobLog).where(JobLog.job_type == "markets.alerts.notify")
        ).one()
    assert run.status == "failed"
    assert "answered 500" in (run.error or "")
    assert client.get("/api/v1/markets/alerts").json()["total"] == 1
