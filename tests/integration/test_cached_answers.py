"""The fast path for repeated URLs: the same answer as FastAPI's, counted and limited the
same way, dropped with the cache entry, and never learned from an error."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi import Depends, Request, Response
from prometheus_client import REGISTRY

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from vigil.core.answers import CACHE_KEY_SCOPE, CachedAnswerMiddleware, cached_json
from vigil.core.auth.policy import POLICY_SCOPE, PUBLIC, require
from vigil.core.cache import MemoryCache
from vigil.markets import service
from vigil.markets.sources.base import Quote, SeriesKind

DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(5)]
RATES = "/api/v1/markets/rates"


def seed(db: TransactionalDatabase) -> None:
    with db.session() as session:
        service.store_quotes(
            session,
            [Quote("USD", "USD", d, Decimal("4.0")) for d in DAYS],
            SeriesKind.CURRENCY,
            "nbp",
        )


def requests_counted(route: str, status: str = "200") -> float:
    labels = {"method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("vigil_http_requests_total", labels) or 0


def test_a_repeated_url_gets_the_same_answer_headers_and_metrics(
    db: TransactionalDatabase,
) -> None:
    seed(db)
    client, _ = api(db)
    before = requests_counted(RATES)
    miss = client.get(RATES, params={"code": "USD", "limit": 3})
    hit = client.get(RATES, params={"code": "USD", "limit": 3})  # FastAPI's cache hit
    fast = client.get(RATES, params={"code": "USD", "limit": 3})  # the middleware's
    assert [r.headers["x-cache"] for r in (miss, hit, fast)] == ["miss", "hit", "hit"]
    assert fast.content == hit.content == miss.content
    assert fast.headers["content-type"] == hit.headers["content-type"] == "application/json"
    assert fast.headers["content-length"] == hit.headers["content-length"]
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in (miss, hit, fast)]
    assert remaining[0] - 2 == remaining[1] - 1 == remaining[2]  # the fast path is counted
    assert fast.headers["x-request-id"] != hit.headers["x-request-id"]
    assert requests_counted(RATES) == before + 3  # under its route, not "<unmatched>"


def test_new_data_drops_the_fast_answer_too(db: TransactionalDatabase) -> None:
    seed(db)
    client, runtime = api(db)
    for _ in range(3):
        assert client.get(RATES, params={"code": "USD"}).json()["total"] == 5
    with db.session() as session:
        service.store_quotes(
            session,
            [Quote("USD", "USD", DAYS[-1] + timedelta(days=1), Decimal("4.2"))],
            SeriesKind.CURRENCY,
            "nbp",
        )
    runtime.events.publish("rates.ingested", {"type": "currency", "asset": "USD"})
    fresh = client.get(RATES, params={"code": "USD"})
    assert fresh.headers["x-cache"] == "miss"
    assert fresh.json()["total"] == 6


def test_errors_are_never_answered_by_the_fast_path(db: TransactionalDatabase) -> None:
    seed(db)
    client, _ = api(db)
    for _ in range(3):
        response = client.get(RATES, params={"code": "XYZ"})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    for _ in range(3):
        assert client.get(RATES, params={"code": "USD", "limit": 0}).status_code == 422


class FakeRoute:
    """The app behind the middleware: answers 200 and names its cache key, like a route
    built on cached_json; counts how often it is reached."""

    def __init__(self, cache: MemoryCache, status: int = 200, public: bool = True) -> None:
        self.cache, self.status, self.calls, self.public = cache, status, 0, public

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        key = f"cache:test:{scope['query_string'].decode()}"
        scope[CACHE_KEY_SCOPE] = key
        if self.public:  # what Depends(public) does
            scope[POLICY_SCOPE] = PUBLIC
        self.cache.set(key, b"{}", ttl=60)
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def get(app: Any, query: bytes, method: str = "GET") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": method, "path": "/x", "query_string": query}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_only_urls_answered_with_200_are_learned_and_the_oldest_are_forgotten() -> None:
    cache = MemoryCache()
    route = FakeRoute(cache)
    app = CachedAnswerMiddleware(route, cache, max_urls=2)
    for query in (b"a", b"a", b"b", b"a", b"c", b"b"):
        get(app, query)
    # a (learned), a (fast), b (learned), a (fast), c (learned, b forgotten), b (learned)
    assert route.calls == 4
    get(app, b"a", method="HEAD")
    assert route.calls == 5  # only GET takes the fast path

    failing = FakeRoute(cache, status=404)
    app = CachedAnswerMiddleware(failing, cache)
    get(app, b"z")
    get(app, b"z")
    assert failing.calls == 2

    app = CachedAnswerMiddleware(route, cache)
    get(app, b"d")
    cache.delete_prefix("cache:test:d")
    get(app, b"d")  # learned, but its entry is gone: the route answers again
    assert route.calls == 7


def test_answers_of_routes_that_need_a_permission_are_never_learned() -> None:
    cache = MemoryCache()
    route = FakeRoute(cache, public=False)
    app = CachedAnswerMiddleware(route, cache)
    for _ in range(3):
        get(app, b"secret")
    assert route.calls == 3  # every request reached the route (and its policy check)


def test_a_protected_cached_get_is_checked_every_time(db: TransactionalDatabase) -> None:
    """A route that needs a permission and answers through the cache: repeated by a signed-in
    Admin, it is never answered before routing, so the anonymous and the unentitled still get
    401 and 403."""
    client, runtime = api(db, as_role="admin")
    app = client.app

    @app.get("/api/v1/test/secret", dependencies=[Depends(require("audit.read"))])  # type: ignore[attr-defined,misc]
    async def secret(request: Request) -> Response:
        return await cached_json(
            request, runtime.db, runtime.cache, 60, "cache:test:secret", lambda _s: b'{"s":1}'
        )

    for _ in range(3):
        assert client.get("/api/v1/test/secret").status_code == 200
    anonymous = client.get("/api/v1/test/secret", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    viewer, _ = api(db, as_role="viewer")
    viewer.app = app  # the same app (and middleware memory), a viewer's token
    viewer_token = viewer.headers["Authorization"]
    denied = client.get("/api/v1/test/secret", headers={"Authorization": viewer_token})
    assert denied.status_code == 403
