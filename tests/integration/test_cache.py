"""The response cache: in memory and in a real Redis (a private redis-server that the tests
start and kill), invalidation by events, and serving from the database while Redis is down."""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.redis_server import PrivateRedis
from vigil.core.cache import MemoryCache, RedisCache, cache_key, cached
from vigil.markets import service
from vigil.markets.sources.base import Quote, SeriesKind

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(10)]


def test_memory_cache_ttl_lru_and_prefix_delete() -> None:
    cache = MemoryCache(max_entries=3)
    cache.set("cache:a:1", b"1", ttl=60)
    cache.set("cache:a:2", b"2", ttl=0.05)
    cache.set("cache:b:1", b"3", ttl=60)
    assert cache.get("cache:a:1") == b"1"
    time.sleep(0.1)
    assert cache.get("cache:a:2") is None  # expired
    cache.set("cache:c:1", b"4", ttl=60)
    cache.set("cache:c:2", b"5", ttl=60)  # over 3 entries: the least recently used goes
    assert cache.get("cache:b:1") is None
    assert cache.get("cache:a:1") == b"1"
    epoch = cache.epoch()
    assert cache.delete_prefix("cache:c:") == 2
    assert cache.epoch() == (epoch or 0) + 1
    assert cache.get("cache:c:1") is None


def test_an_answer_produced_during_an_invalidation_is_not_stored() -> None:
    cache = MemoryCache()

    def produce_while_data_changes() -> bytes:
        cache.delete_prefix("cache:rates:USD:")  # the miner committed meanwhile
        return b"old"

    assert cached(cache, "cache:rates:USD:x", 60, produce_while_data_changes) == (b"old", False)
    assert cache.get("cache:rates:USD:x") is None
    assert cached(cache, "cache:rates:USD:x", 60, lambda: b"new") == (b"new", False)
    assert cached(cache, "cache:rates:USD:x", 60, lambda: b"never") == (b"new", True)


def test_keys() -> None:
    assert cache_key("rates", "USD", None, date(2024, 1, 2), 10, 0) == (
        "cache:rates:USD:-:2024-01-02:10:0"
    )


# --- through the API ---------------------------------------------------------------------------


def seed(db: TransactionalDatabase) -> None:
    with db.session() as session:
        for code in ("USD", "EUR"):
            service.store_quotes(
                session,
                [Quote(code, code, d, Decimal("4.0")) for d in DAYS],
                SeriesKind.CURRENCY,
                "nbp",
            )
        service.store_quotes(
            session, [Quote("XAU", "gold", d, Decimal("250")) for d in DAYS], SeriesKind.GOLD, "nbp"
        )


def test_answers_are_cached_until_new_data_arrives(db: TransactionalDatabase) -> None:
    seed(db)
    client, runtime = api(db)
    first = client.get("/api/v1/markets/rates", params={"code": "USD"})
    again = client.get("/api/v1/markets/rates", params={"code": "USD"})
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.json() == first.json()
    gold = client.get("/api/v1/markets/gold")
    assert client.get("/api/v1/markets/gold").headers["x-cache"] == "hit"

    # EUR changed: USD stays cached; USD changed: its answer is fresh at once
    runtime.events.publish("rates.ingested", {"type": "currency", "asset": "EUR"})
    assert client.get("/api/v1/markets/rates", params={"code": "USD"}).headers["x-cache"] == "hit"
    with db.session() as session:
        service.store_quotes(
            session,
            [Quote("USD", "USD", DAYS[-1] + timedelta(days=1), Decimal("4.5"))],
            SeriesKind.CURRENCY,
            "nbp",
        )
    runtime.events.publish("rates.ingested", {"type": "currency", "asset": "USD"})
    fresh = client.get("/api/v1/markets/rates", params={"code": "USD"})
    assert fresh.headers["x-cache"] == "miss"
    assert fresh.json()["total"] == 11
    assert client.get("/api/v1/markets/gold").headers["x-cache"] == "hit"
    runtime.events.publish("rates.ingested", {"type": "gold", "asset": "XAU"})
    assert client.get("/api/v1/markets/gold").headers["x-cache"] == "miss"
    assert gold.status_code == 200


def test_signals_are_invalidated_by_signals_updated(db: TransactionalDatabase) -> None:
    seed(db)
    client, runtime = api(db)
    assert client.get("/api/v1/markets/signals").headers["x-cache"] == "miss"
    assert client.get("/api/v1/markets/signals").headers["x-cache"] == "hit"
    runtime.events.publish("signals.updated", {"asset": "USD"})
    assert client.get("/api/v1/markets/signals").headers["x-cache"] == "miss"


def test_errors_are_not_cached_and_ttl_zero_disables(db: TransactionalDatabase) -> None:
    seed(db)
    client, _ = api(db)
    for _ in range(2):
        assert client.get("/api/v1/markets/rates", params={"code": "XYZ"}).status_code == 404
    uncached, _ = api(db, cache_ttl=0)
    for _ in range(2):
        response = uncached.get("/api/v1/markets/rates", params={"code": "USD"})
        assert response.headers["x-cache"] == "miss"


def test_hits_and_misses_are_metrics(db: TransactionalDatabase) -> None:
    seed(db)
    client, _ = api(db)

    def count(result: str) -> float:
        return REGISTRY.get_sample_value("vigil_cache_requests_total", {"result": result}) or 0

    hits, misses = count("hit"), count("miss")
    client.get("/api/v1/markets/rates", params={"code": "EUR"})
    client.get("/api/v1/markets/rates", params={"code": "EUR"})
    assert (count("hit") - hits, count("miss") - misses) == (1, 1)


# --- a real Redis that goes away --------------------------------------------------------------


def test_redis_cache_survives_an_outage(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCache(private_redis.url, timeout=0.2)
    cache.set("cache:rates:USD:1", b"page", ttl=60)
    assert cache.get("cache:rates:USD:1") == b"page"
    assert cache.delete_prefix("cache:rates:USD:") == 1
    cache.set("cache:rates:USD:1", b"page", ttl=60)

    private_redis.kill()
    errors = REGISTRY.get_sample_value("vigil_cache_errors_total", {"op": "get"}) or 0
    with caplog.at_level(logging.WARNING, logger="vigil.core.cache"):
        for _ in range(5):
            assert cache.get("cache:rates:USD:1") is None  # a miss, not an exception
            cache.set("cache:x", b"y", ttl=60)
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one warning per outage, not per request
    assert REGISTRY.get_sample_value("vigil_cache_errors_total", {"op": "get"}) == errors + 5

    private_redis.start()  # an empty Redis again on the same port
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vigil.core.cache"):
        assert cache.get("cache:rates:USD:1") is None  # first contact: recovery, flush
        cache.set("cache:rates:USD:1", b"new", ttl=60)
        assert cache.get("cache:rates:USD:1") == b"new"
    assert [r.getMessage() for r in caplog.records if "again" in r.getMessage()] == [
        "Redis cache reachable again; dropping what it held"
    ]


def test_api_answers_from_the_database_while_redis_is_down(
    db: TransactionalDatabase, private_redis: PrivateRedis
) -> None:
    seed(db)
    client, _ = api(db, redis_url=private_redis.url)
    assert client.get("/api/v1/markets/rates", params={"code": "USD"}).headers["x-cache"] == "miss"
    assert client.get("/api/v1/markets/rates", params={"code": "USD"}).headers["x-cache"] == "hit"
    private_redis.kill()
    started = time.monotonic()
    down = client.get("/api/v1/markets/rates", params={"code": "USD"})
    assert down.status_code == 200
    assert down.json()["total"] == 10
    assert down.headers["x-cache"] == "miss"
    assert time.monotonic() - started < 3  # bounded by the short Redis timeouts
    assert client.get("/health/ready").status_code == 200
