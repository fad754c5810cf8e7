"""API rate limiting: requests per client address, counted in Redis when ``VIGIL_REDIS_URL`` is
set (every API process shares the count) and in process memory otherwise.

``VIGIL_RATE_LIMIT`` holds one or more ``limits`` rate strings (``"10/second;600/hour"``);
a request is refused when any of them is spent. Windows are fixed (the ``limits`` fixed-window
strategy): a client's window opens with its first request and the count resets when it ends.
Over the limit the answer is a 429 problem document with ``Retry-After``; every limited
response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``
(seconds until the window resets). Health, metrics and the API docs are never limited.

Redis is optional at run time: while it is unreachable the process counts in memory (per
process, starting from zero), one warning is logged per outage, ``vigil_ratelimit_errors_total``
counts the failures, and Redis is tried again every few seconds until it answers.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, Storage
from prometheus_client import Counter
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.problems import problem_response

log = logging.getLogger(__name__)

RATELIMIT_REJECTED = Counter(
    "vigil_ratelimit_rejected_total",
    "Requests refused with 429 because the client was over the rate limit.",
)
RATELIMIT_ERRORS = Counter(
    "vigil_ratelimit_errors_total",
    "Rate-limit storage calls that failed (Redis unreachable); memory counted instead.",
)

EXEMPT_PATHS = frozenset(
    {"/health", "/health/ready", "/metrics", "/docs", "/openapi.json", "/redoc"}
)
KEY_PREFIX = "vigil:ratelimit"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one request against the most restrictive limit (the one it broke, or
    the one with the fewest requests left)."""

    allowed: bool
    limit: RateLimitItem
    remaining: int
    reset_in: float  # seconds until that limit's window resets

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit.amount).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset_in)).encode()),
        ]

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_in))


class RateLimiter:
    """Counts requests per key against ``rate`` (a ``limits`` rate string): in Redis when
    ``redis_url`` is given (with memory standing in while Redis is down), in memory otherwise.

    Calls are synchronous and run on the event loop: one Redis round trip on a local network is
    cheaper than a hop to a thread, and the short timeouts (no client-side retries) plus
    ``retry_interval`` bound what a dead Redis costs: at most one timed-out call per interval.
    """

    def __init__(
        self,
        rate: str,
        redis_url: str = "",
        *,
        key_prefix: str = KEY_PREFIX,
        timeout: float = 0.2,
        retry_interval: float = 2.0,
    ) -> None:
        self.items = tuple(parse_many(rate))  # the settings have checked it
        self._memory = MemoryStorage()
        self._redis: RedisStorage | None = None
        if redis_url:
            pool = redis.ConnectionPool.from_url(
                redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # the default retries, backing off for seconds
            )
            self._redis = RedisStorage(redis_url, connection_pool=pool, key_prefix=key_prefix)
        self._retry_interval = retry_interval
        self._down_until: float | None = None  # monotonic time of the next Redis attempt
        self._lock = threading.Lock()

    def hit(self, key: str) -> Verdict:
        if self._redis is not None and self._redis_due():
            try:
                verdict = self._hit(self._redis, key)
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                self._ok()
                return verdict
        return self._hit(self._memory, key)

    def _hit(self, storage: Storage, key: str) -> Verdict:
        tightest: Verdict | None = None
        for item in self.items:
            # The fixed-window strategy of `limits` (FixedWindowRateLimiter.hit is this incr),
            # done here so that the count comes back from the same call: one round trip less.
            limit_key = item.key_for(key)
            count = storage.incr(limit_key, item.get_expiry())
            reset_in = max(0.0, storage.get_expiry(limit_key) - time.time())
            verdict = Verdict(count <= item.amount, item, max(0, item.amount - count), reset_in)
            if not verdict.allowed:
                return verdict  # the later limits are not charged for a refused request
            if tightest is None or verdict.remaining < tightest.remaining:
                tightest = verdict
        assert tightest is not None  # items is never empty
        return tightest

    def _redis_due(self) -> bool:
        down_until = self._down_until
        return down_until is None or time.monotonic() >= down_until

    def _failed(self, exc: Exception) -> None:
        RATELIMIT_ERRORS.inc()
        with self._lock:
            first = self._down_until is None
            self._down_until = time.monotonic() + self._retry_interval
        if first:
            log.warning(
                "Redis unavailable for rate limiting (%s); counting in process memory until it "
                "is back",
                exc,
            )

    def _ok(self) -> None:
        if self._down_until is None:
            return
        with self._lock:
            back, self._down_until = self._down_until is not None, None
        if back:
            log.info("Redis reachable again; rate limits are counted there again")


class RateLimitMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it runs on every request, so it stays thin."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        verdict = self.limiter.hit(client[0] if client else "unknown")
        headers = verdict.headers()
        if not verdict.allowed:
            RATELIMIT_REJECTED.inc()
            retry = verdict.retry_after
            response = problem_response(
                Request(scope),
                429,
                "Too Many Requests",
                f"Too many requests from your address: the limit is {verdict.limit}. "
                f"Retry in {retry} second{'s' if retry != 1 else ''}.",
                headers={
                    "Retry-After": str(retry),
                    **{name.decode(): value.decode() for name, value in headers},
                },
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
