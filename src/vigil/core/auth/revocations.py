"""Sessions ended before their access tokens expire (logout, deactivation, role change).

Access tokens are checked without the database; a revoked session id (``sid``) is kept here
until the longest-lived access token of that session has expired: in Redis when
``VIGIL_REDIS_URL`` is set (every API process sees it) and always in this process's memory.
While Redis is unreachable, other processes may accept such a token until it expires (at
most ``VIGIL_ACCESS_TOKEN_MINUTES``); one warning is logged per outage.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from vigil.core.outage import OutageLog

log = logging.getLogger(__name__)

KEY_PREFIX = "vigil:auth:revoked:"


class Revocations:
    def __init__(self, redis_url: str = "", timeout: float = 0.2) -> None:
        self._memory: dict[str, float] = {}  # sid -> monotonic expiry
        self._lock = threading.Lock()
        self._redis: redis.Redis | None = None
        if redis_url:
            self._redis = redis.Redis.from_url(
                redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        self._outage = OutageLog(
            log,
            "Redis (revoked sessions)",
            "revoked sessions are known to this process only until it is back",
        )

    def revoke(self, session_id: str, ttl_seconds: float) -> None:
        ttl = max(1, int(ttl_seconds) + 1)
        with self._lock:
            self._memory[session_id] = time.monotonic() + ttl
            if len(self._memory) > 10_000:
                self._expire()
        if self._redis is not None:
            try:
                self._redis.set(KEY_PREFIX + session_id, b"1", ex=ttl)
            except redis.RedisError as exc:
                self._outage.failed(exc)
            else:
                self._outage.ok()

    def is_revoked(self, session_id: str) -> bool:
        until = self._memory.get(session_id)
        if until is not None and until > time.monotonic():
            return True
        if self._redis is None:
            return False
        try:
            found = bool(self._redis.exists(KEY_PREFIX + session_id))
        except redis.RedisError as exc:
            self._outage.failed(exc)
            return False
        self._outage.ok()
        return found

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [s for s, until in self._memory.items() if until <= now]:
            del self._memory[sid]
