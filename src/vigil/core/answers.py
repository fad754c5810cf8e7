"""Cached JSON answers for read endpoints, and a fast path that serves repeated URLs.

A route builds its answer with :func:`cached_json`: a hit comes from the cache on the event
loop; a miss runs the route's query in a worker thread with a read-only session and stores
the bytes (see ``core.cache`` for invalidation). The route also tells
:class:`CachedAnswerMiddleware` which cache key answered its URL; the next GET of exactly
that URL is then answered from the cache before FastAPI routes and validates it, which is
most of the cost of a hit (the answer, its headers and its metrics are the same). A URL the
middleware has not seen answered with 200, or whose entry was invalidated, takes the normal
path, so validation and errors stay FastAPI's.

Only answers of public routes are learned: the policy dependency marks the request
(``vigil.core.auth.policy``), so a route that needs a permission always goes through its
check, however often its URL is asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.auth.policy import POLICY_SCOPE, PUBLIC
from vigil.core.cache import Cache, fill
from vigil.core.db import Database

CACHE_KEY_SCOPE = "vigil.cache_key"  # set by cached_json, read by the middleware

_HIT, _MISS = {"X-Cache": "hit"}, {"X-Cache": "miss"}


async def cached_json(
    request: Request,
    db: Database,
    cache: Cache,
    ttl: float,
    key: str,
    produce: Callable[[Session], bytes],
) -> Response:
    """The answer from the cache, or ``produce(session)`` cached for ``ttl`` seconds
    (``X-Cache`` says which). Errors (an unknown code, say) are raised by ``produce`` and
    never cached."""
    if ttl > 0:
        request.scope[CACHE_KEY_SCOPE] = key
        body = await cache.aget(key)
        if body is not None:
            return Response(body, media_type="application/json", headers=_HIT)

    def miss() -> bytes:
        with db.session() as session:
            if ttl <= 0:
                return produce(session)
            return fill(cache, key, ttl, lambda: produce(session))

    body = await run_in_threadpool(miss)
    return Response(body, media_type="application/json", headers=_MISS)


class CachedAnswerMiddleware:
    """Serves a GET of a URL that :func:`cached_json` answered before straight from the
    cache. Keeps the last ``max_urls`` URLs (raw path and query string) with their cache key
    and route (the route names the request in metrics and logs)."""

    def __init__(self, app: ASGIApp, cache: Cache, max_urls: int = 4096) -> None:
        self.app = app
        self.cache = cache
        self.max_urls = max_urls
        self._urls: OrderedDict[tuple[str, bytes], tuple[str, Any]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        url = (scope["path"], scope["query_string"])
        known = self._urls.get(url)
        if known is not None:
            key, route = known
            body = await self.cache.aget(key)
            if body is not None:
                if url in self._urls:  # (another request may have pushed it out meanwhile)
                    self._urls.move_to_end(url)  # least recently used URLs go first
                scope["route"] = route
                await _send_hit(send, body)
                return

        async def learn(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                key = scope.get(CACHE_KEY_SCOPE)
                if key is not None and scope.get(POLICY_SCOPE) is PUBLIC:
                    self._remember(url, key, scope.get("route"))
            await send(message)

        await self.app(scope, receive, learn)

    def _remember(self, url: tuple[str, bytes], key: str, route: Any) -> None:
        self._urls[url] = (key, route)
        self._urls.move_to_end(url)
        while len(self._urls) > self.max_urls:
            self._urls.popitem(last=False)


async def _send_hit(send: Send, body: bytes) -> None:
    # The same status, headers and body as Response(body, media_type=..., headers=_HIT).
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
                (b"x-cache", b"hit"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
