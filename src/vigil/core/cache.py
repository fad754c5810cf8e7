"""Response cache: Redis when ``VIGIL_REDIS_URL`` is set, in-process memory otherwise.

Values are the bytes a route would send. Keys are namespaced strings
(``cache:rates:USD:2024-01-01:2024-02-01:…``); new data deletes the affected keys by prefix,
so a stale answer lives at most until the event that made it stale. Redis is optional at run
time: while it is unreachable every lookup is a miss and every write is skipped, one warning
is logged per outage (not per request), ``vigil_cache_errors_total`` counts the failures, and
the client reconnects by itself when Redis is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import anyio.to_thread
import redis
from prometheus_client import Counter

from vigil.core.events import EventBus, Payload
from vigil.core.outage import OutageLog

log = logging.getLogger(__name__)

CACHE_LOOKUPS = Counter(
    "vigil_cache_requests_total", "Cache lookups by result (hit or miss).", ["result"]
)
CACHE_ERRORS = Counter(
    "vigil_cache_errors_total", "Cache operations that failed (backend unreachable).", ["op"]
)


_HITS, _MISSES = CACHE_LOOKUPS.labels("hit"), CACHE_LOOKUPS.labels("miss")

KEY_PREFIX = "cache:"
EPOCH_KEY = "vigil:cache-epoch"  # outside KEY_PREFIX: flushing the cache keeps the counter


def cache_key(*parts: object) -> str:
    """``cache:<part>:<part>…``; None becomes ``-``."""
    return KEY_PREFIX + ":".join("-" if part is None else str(part) for part in parts)


class Cache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    async def aget(self, key: str) -> bytes | None:
        """``get`` for the event loop: API cache hits are answered without a thread hop."""
        ...

    def set(self, key: str, value: bytes, ttl: float) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def epoch(self) -> int | None:
        """A counter that every invalidation increases (None: unknown right now)."""
        ...


class HitRatioLog:
    """Counts hits and misses and logs the ratio once a minute while there is traffic."""

    def __init__(self, every_seconds: float = 60.0) -> None:
        self._every = every_seconds
        self._hits = self._misses = 0
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def record(self, hit: bool) -> None:
        (_HITS if hit else _MISSES).inc()
        with self._lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1
            if time.monotonic() - self._since < self._every:
                return
            hits, total = self._hits, self._hits + self._misses
            self._hits = self._misses = 0
            self._since = time.monotonic()
        log.info(
            "cache hit ratio %.2f (%d of %d lookups)",
            hits / total,
            hits,
            total,
            extra={"cache_hits": hits, "cache_lookups": total},
        )


class MemoryCache:
    """A bounded, thread-safe TTL cache (least recently used entries go first)."""

    def __init__(self, max_entries: int = 2048) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries
        self._epoch = 0
        self._lock = threading.Lock()
        self._ratio = HitRatioLog()

    def get(self, key: str) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] <= now:
                del self._entries[key]
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
        self._ratio.record(entry is not None)
        return entry[1] if entry is not None else None

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)  # microseconds under a lock: fine on the event loop

    def set(self, key: str, value: bytes, ttl: float) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            self._epoch += 1
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                del self._entries[key]
        return len(doomed)

    def epoch(self) -> int | None:
        with self._lock:
            return self._epoch


class RedisCache:
    def __init__(self, url: str, timeout: float = 0.5) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        self._ratio = HitRatioLog()
        self._outage = OutageLog(
            log,
            "Redis cache",
            "serving from the database until it is back",
            back="dropping what it held",
        )

    def _failed(self, op: str, exc: Exception) -> None:
        CACHE_ERRORS.labels(op).inc()
        self._outage.failed(exc)

    def _ok(self) -> None:
        if self._outage.ok():
            # Invalidations sent while it was down were lost: start from empty.
            self.delete_prefix(KEY_PREFIX)

    def get(self, key: str) -> bytes | None:
        try:
            value = self._client.get(key)
        except redis.RedisError as exc:
            self._failed("get", exc)
            self._ratio.record(False)
            return None
        self._ok()
        self._ratio.record(value is not None)
        return value if isinstance(value, bytes) else None

    async def aget(self, key: str) -> bytes | None:
        # A network round trip (and a timeout while Redis is away) must not block the loop.
        return await anyio.to_thread.run_sync(self.get, key)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        try:
            self._client.set(key, value, px=max(1, int(ttl * 1000)))
        except redis.RedisError as exc:
            self._failed("set", exc)
            return
        self._ok()

    def delete_prefix(self, prefix: str) -> int:
        try:
            self._client.incr(EPOCH_KEY)
            keys = list(self._client.scan_iter(match=f"{prefix}*", count=500))
            deleted = int(cast(int, self._client.unlink(*keys))) if keys else 0
        except redis.RedisError as exc:
            self._failed("delete", exc)
            return 0
        self._ok()
        return deleted

    def epoch(self) -> int | None:
        try:
            value = cast(bytes | None, self._client.get(EPOCH_KEY))
        except redis.RedisError as exc:
            self._failed("epoch", exc)
            return None
        return int(value) if value is not None else 0


def create_cache(redis_url: str) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()


@dataclass(frozen=True)
class CacheRule:
    """When ``topic`` is published, delete the keys starting with each of ``prefixes(event)``
    (declared by modules, wired by core)."""

    topic: str
    prefixes: Callable[[Payload], list[str]]


def wire_invalidation(events: EventBus, cache: Cache, rules: tuple[CacheRule, ...]) -> None:
    for rule in rules:

        def invalidate(_topic: str, payload: Payload, r: CacheRule = rule) -> None:
            for prefix in r.prefixes(payload):
                cache.delete_prefix(prefix)

        events.subscribe(rule.topic, invalidate)


def cached(cache: Cache, key: str, ttl: float, produce: Callable[[], bytes]) -> tuple[bytes, bool]:
    """The cached value of ``key``, or ``produce()`` stored for ``ttl`` seconds; and whether
    it was a hit."""
    value = cache.get(key)
    if value is not None:
        return value, True
    return fill(cache, key, ttl, produce), False


def fill(cache: Cache, key: str, ttl: float, produce: Callable[[], bytes]) -> bytes:
    """``produce()``, stored under ``key`` for ``ttl`` seconds. An answer produced while an
    invalidation happened is not stored: it may predate the new data, and caching it would
    undo the invalidation."""
    before = cache.epoch()
    value = produce()
    if before is not None and cache.epoch() == before:
        cache.set(key, value, ttl)
        if cache.epoch() != before:  # an invalidation slipped in between: undo
            cache.delete_prefix(key)
    return value
