"""The Redis event bus against a real Redis: delivery across processes' buses, channel names
from settings, competing consumers, malformed messages, and an outage of a private
redis-server that the test kills and restarts."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis

from tests.support.redis_server import PrivateRedis
from vigil.core.events import InProcessEventBus, RedisEventBus, create_event_bus
from vigil.settings import Settings


class Inbox:
    """Collects events and lets a test wait for a number of them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        with self._cond:
            self.events.append((topic, payload))
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.events) >= count, timeout)


@pytest.fixture
def topic() -> str:
    """A topic of this test's own, so parallel runs on the shared Redis don't cross."""
    return f"test.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def buses() -> Iterator[list[RedisEventBus]]:
    made: list[RedisEventBus] = []
    yield made
    for bus in made:
        bus.stop()


def listening(bus: RedisEventBus, buses: list[RedisEventBus]) -> RedisEventBus:
    buses.append(bus)
    bus.start()
    assert bus.subscribed.wait(5), "the listener did not subscribe"
    return bus


def test_an_event_reaches_every_process_that_listens(
    shared_redis: str, topic: str, buses: list[RedisEventBus]
) -> None:
    publisher = RedisEventBus(shared_redis)  # publishes only: no listener needed
    first, second = Inbox(), Inbox()
    for inbox in (first, second):
        bus = RedisEventBus(shared_redis)
        bus.subscribe(topic, inbox)
        listening(bus, buses)

    publisher.publish(topic, {"asset": "USD", "from": "2024-01-02", "rows": 3})

    for inbox in (first, second):
        assert inbox.wait_for(1)
        [(got_topic, payload)] = inbox.events
        assert got_topic == topic
        assert {k: payload[k] for k in ("asset", "from", "rows")} == {
            "asset": "USD",
            "from": "2024-01-02",
            "rows": 3,
        }


def test_channel_names_come_from_the_settings(
    shared_redis: str, topic: str, buses: list[RedisEventBus]
) -> None:
    channel = f"{topic}.renamed"
    settings = Settings(redis_url=shared_redis, event_channels={topic: channel})
    client = redis.Redis.from_url(shared_redis)
    listener = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    listener.subscribe(channel)
    bus = create_event_bus(settings.redis_url, settings.event_channels)
    assert isinstance(bus, RedisEventBus)

    bus.publish(topic, {"n": 1})

    message = None
    for _ in range(50):
        message = listener.get_message(timeout=0.1)
        if message is not None:
            break
    listener.close()
    assert message is not None, f"nothing arrived on channel {channel}"
    assert orjson.loads(message["data"])["payload"] == {"n": 1}


def test_a_group_handles_each_event_once_whatever_the_number_of_processes(
    shared_redis: str, topic: str, buses: list[RedisEventBus]
) -> None:
    grouped = [Inbox() for _ in range(3)]
    everyone = [Inbox() for _ in range(3)]
    for member, watcher in zip(grouped, everyone, strict=True):
        bus = RedisEventBus(shared_redis)
        bus.subscribe(topic, member, group="trigger:test")
        bus.subscribe(topic, watcher)
        listening(bus, buses)
    publisher = RedisEventBus(shared_redis)

    for n in range(10):
        publisher.publish(topic, {"n": n})

    for watcher in everyone:  # ungrouped handlers see all ten, in every process
        assert watcher.wait_for(10)
        assert [p["n"] for _, p in watcher.events] == list(range(10))
    handled = sorted(p["n"] for inbox in grouped for _, p in inbox.events)
    assert handled == list(range(10))  # each exactly once across the group


def test_a_malformed_message_is_ignored_and_the_listener_goes_on(
    shared_redis: str, topic: str, buses: list[RedisEventBus], caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()
    bus = RedisEventBus(shared_redis)
    bus.subscribe(topic, inbox)
    listening(bus, buses)
    raw = redis.Redis.from_url(shared_redis)
    with caplog.at_level(logging.WARNING, logger="vigil.core.events"):
        raw.publish(topic, b"not json")
        raw.publish(topic, orjson.dumps({"topic": "other.topic", "payload": {}}))
        RedisEventBus(shared_redis).publish(topic, {"ok": True})
        assert inbox.wait_for(1)
    assert [p["ok"] for _, p in inbox.events] == [True]
    assert sum("ignored" in r.getMessage() for r in caplog.records) == 2


def test_without_redis_the_in_process_bus_is_used() -> None:
    assert isinstance(create_event_bus("", {}), InProcessEventBus)


def test_an_outage_keeps_events_in_the_process_and_the_listener_comes_back(
    private_redis: PrivateRedis,
    topic: str,
    buses: list[RedisEventBus],
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = Inbox()
    bus = RedisEventBus(private_redis.url, timeout=0.2, retry_seconds=0.1)
    bus.subscribe(topic, inbox)
    listening(bus, buses)
    bus.publish(topic, {"n": 0})
    assert inbox.wait_for(1)

    private_redis.kill()
    with caplog.at_level(logging.WARNING, logger="vigil.core.events"):
        for n in range(1, 6):
            bus.publish(topic, {"n": n})  # delivered here, directly
    assert [p["n"] for _, p in inbox.events] == [0, 1, 2, 3, 4, 5]
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one per outage, not one per event

    deadline = time.monotonic() + 5
    while bus.subscribed.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)  # let the listener notice, so "subscribed" below means "again"
    assert not bus.subscribed.is_set(), "the listener did not notice the outage"
    private_redis.start()
    assert bus.subscribed.wait(10), "the listener did not resubscribe"
    other = RedisEventBus(private_redis.url)
    other.publish(topic, {"n": 6})  # from another process: only Redis can bring it
    assert inbox.wait_for(7)
    assert inbox.events[-1][1]["n"] == 6
