"""API rate limiting: counted in memory, in the real Redis (shared by every app that uses it),
and in memory again while a private redis-server is dead."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.redis_server import LOCAL_REDIS_URL, PrivateRedis, local_redis
from vigil.core.ratelimit import KEY_PREFIX, RateLimiter
from vigil.settings import Settings

LIMITED = "/api/v1/markets/sources"  # needs no data: every answer is a 200 until the limit
EXEMPT = ("/health", "/health/ready", "/metrics", "/docs", "/openapi.json", "/redoc")


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def as_client(client: TestClient, address: str) -> TestClient:
    """Another client of the same app, calling from ``address``."""
    return TestClient(client.app, client=(address, 40000))


# --- settings ----------------------------------------------------------------------------------


def test_rate_limit_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().rate_limit == "600/minute"
    assert Settings(rate_limit=" 10/second;600/hour ").rate_limit == "10/second;600/hour"
    assert Settings(rate_limit="").rate_limit == ""
    monkeypatch.setenv("VIGIL_RATE_LIMIT", "100 per minute")
    assert Settings().rate_limit == "100 per minute"
    for bad, says in [("lots", "is not a rate limit"), ("0/minute", "1 request or more")]:
        with pytest.raises(ValidationError, match=says) as raised:
            Settings(rate_limit=bad)
        assert "VIGIL_RATE_LIMIT" in str(raised.value)


# --- in memory ---------------------------------------------------------------------------------


def test_over_the_limit_is_a_429_problem_with_retry_after(db: TransactionalDatabase) -> None:
    client, _ = api(db, rate_limit="3/minute")
    rejected = metric("vigil_ratelimit_rejected_total")
    for remaining in (2, 1, 0):
        ok = client.get(LIMITED)
        assert ok.status_code == 200
        assert ok.headers["x-ratelimit-limit"] == "3"
        assert ok.headers["x-ratelimit-remaining"] == str(remaining)
        assert 0 <= int(ok.headers["x-ratelimit-reset"]) <= 60

    refused = client.get(LIMITED, headers={"X-Request-ID": "over-the-limit"})
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-request-id"] == "over-the-limit"  # inside the request context
    assert refused.json() == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Too many requests from your address: the limit is 3 per 1 minute. "
        f"Retry in {retry_after} second{'s' if retry_after != 1 else ''}.",
        "instance": LIMITED,
        "request_id": "over-the-limit",
    }
    assert client.get("/api/v1/markets/nothing-here").status_code == 429  # before routing
    assert metric("vigil_ratelimit_rejected_total") == rejected + 2
    assert (
        REGISTRY.get_sample_value(
            "vigil_http_requests_total",
            {"method": "GET", "route": "<unmatched>", "status": "429"},
        )
        or 0
    ) >= 2  # refusals show up in the request metrics too


def test_other_clients_are_not_affected(db: TransactionalDatabase) -> None:
    client, _ = api(db, rate_limit="2/minute")
    for _ in range(2):
        assert client.get(LIMITED).status_code == 200
    assert client.get(LIMITED).status_code == 429
    other = as_client(client, "192.0.2.10")
    assert [other.get(LIMITED).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get(LIMITED).status_code == 429  # still refused: nothing reset


def test_exempt_paths_are_never_limited(db: TransactionalDatabase) -> None:
    client, _ = api(db, rate_limit="1/minute")
    for path in EXEMPT:
        for _ in range(3):
            response = client.get(path)
            assert response.status_code == 200, path
            assert "x-ratelimit-limit" not in response.headers, path
    # and they did not use up the client's one request
    assert client.get(LIMITED).status_code == 200
    assert client.get(LIMITED).status_code == 429
    assert client.get("/health").status_code == 200


def test_every_limit_of_a_list_applies(db: TransactionalDatabase) -> None:
    client, _ = api(db, rate_limit="5/minute;3/hour")
    first = client.get(LIMITED)
    # the headers describe the limit closest to running out
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (
        "3",
        "2",
    )
    assert [client.get(LIMITED).status_code for _ in range(3)] == [200, 200, 429]
    assert "3 per 1 hour" in client.get(LIMITED).json()["detail"]


def test_empty_setting_turns_rate_limiting_off(db: TransactionalDatabase) -> None:
    client, _ = api(db, rate_limit="")
    for _ in range(30):
        response = client.get(LIMITED)
        assert response.status_code == 200
        assert "x-ratelimit-limit" not in response.headers
    default, _ = api(db)
    assert default.get(LIMITED).headers["x-ratelimit-limit"] == "600"


# --- in the real Redis -------------------------------------------------------------------------


@pytest.fixture
def client_address() -> Iterator[str]:
    """A client address of this test alone, so that its counts in the shared Redis (the key
    holds the address) meet no other test's; its keys are deleted afterwards."""
    address = f"test-{uuid.uuid4().hex}"
    yield address
    server = local_redis()
    keys = list(server.scan_iter(match=f"{KEY_PREFIX}:*{address}*"))
    if keys:
        server.delete(*keys)


def test_apps_sharing_redis_share_the_limit(db: TransactionalDatabase, client_address: str) -> None:
    server = local_redis()
    first, _ = api(db, rate_limit="3/minute", redis_url=LOCAL_REDIS_URL)
    second, _ = api(db, rate_limit="3/minute", redis_url=LOCAL_REDIS_URL)
    one, two = as_client(first, client_address), as_client(second, client_address)
    assert [one.get(LIMITED).status_code for _ in range(2)] == [200, 200]
    assert two.get(LIMITED).headers["x-ratelimit-remaining"] == "0"
    assert two.get(LIMITED).status_code == 429
    assert one.get(LIMITED).status_code == 429
    keys = list(server.scan_iter(match=f"{KEY_PREFIX}:*{client_address}*"))
    assert len(keys) == 1
    assert int(server.get(keys[0]) or 0) == 5  # every request, refused ones too

    # the contrast: without Redis each app counts alone
    alone_one, _ = api(db, rate_limit="3/minute")
    alone_two, _ = api(db, rate_limit="3/minute")
    assert [as_client(alone_one, client_address).get(LIMITED).status_code for _ in range(3)] == [
        200
    ] * 3
    assert as_client(alone_two, client_address).get(LIMITED).status_code == 200


# --- a private Redis that goes away ------------------------------------------------------------


def test_limiter_counts_in_memory_while_redis_is_down(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"test:{uuid.uuid4().hex}"
    limiter = RateLimiter("3/minute", private_redis.url, key_prefix=prefix, retry_interval=0)
    assert [limiter.hit("a").remaining for _ in range(2)] == [2, 1]
    assert limiter.hit("b").remaining == 2  # per key

    private_redis.kill()
    errors = metric("vigil_ratelimit_errors_total")
    with caplog.at_level(logging.INFO, logger="vigil.core.ratelimit"):
        # memory starts from zero: three more for "a", then refused
        assert [limiter.hit("a").allowed for _ in range(5)] == [True, True, True, False, False]
    assert [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()] != []
    assert len(caplog.records) == 1  # one warning per outage, not per request
    assert caplog.records[0].levelno == logging.WARNING
    assert metric("vigil_ratelimit_errors_total") == errors + 5  # Redis tried on every hit

    private_redis.start()  # an empty Redis again on the same port
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vigil.core.ratelimit"):
        back = limiter.hit("a")
        assert (back.allowed, back.remaining) == (True, 2)  # counted in the new Redis
        assert limiter.hit("a").remaining == 1
    assert [r.getMessage() for r in caplog.records] == [
        "Redis reachable again; rate limits are counted there again"
    ]
    assert metric("vigil_ratelimit_errors_total") == errors + 5


def test_limiter_tries_a_dead_redis_once_per_interval(private_redis: PrivateRedis) -> None:
    limiter = RateLimiter("100/minute", private_redis.url, retry_interval=3600)
    assert limiter.hit("a").allowed
    private_redis.kill()
    errors = metric("vigil_ratelimit_errors_total")
    for _ in range(10):
        assert limiter.hit("a").allowed
    assert metric("vigil_ratelimit_errors_total") == errors + 1  # the rest went to memory


def test_api_keeps_limiting_while_redis_is_down(
    db: TransactionalDatabase, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = api(db, rate_limit="2/minute", redis_url=private_redis.url)
    assert client.get(LIMITED).status_code == 200
    private_redis.kill()
    with caplog.at_level(logging.WARNING, logger="vigil.core.ratelimit"):
        codes = [client.get(LIMITED).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]  # in memory, from zero
    assert len([r for r in caplog.records if r.name == "vigil.core.ratelimit"]) == 1
    assert client.get("/health/ready").status_code == 200
