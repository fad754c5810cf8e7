"""One active scheduler among several: a lock in Redis with a time to live, renewed by its
holder. A standby takes over within one TTL of the active one dying; an active scheduler
that cannot renew (Redis away) steps down once its lock may have expired, so two never
enqueue at the same time for longer than a renewal period."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

# Take the lock if free, or extend it if it is ours; 1 when we hold it afterwards.
_ACQUIRE_OR_RENEW = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class LeaderLock:
    def __init__(
        self,
        url: str,
        identity: str,
        key: str = "vigil:scheduler:leader",
        ttl_seconds: float = 15.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.identity, self.key, self.ttl = identity, key, ttl_seconds
        self._on_change = on_change
        self._held_until = 0.0  # monotonic time until which our lock surely lives
        self._leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader and time.monotonic() < self._held_until

    def try_acquire(self) -> bool:
        """One attempt to take or renew the lock; updates and returns :attr:`is_leader`."""
        asked = time.monotonic()
        try:
            ttl_ms = int(self.ttl * 1000)
            got = bool(self._client.eval(_ACQUIRE_OR_RENEW, 1, self.key, self.identity, ttl_ms))
        except redis.RedisError as exc:
            got = False
            if self.is_leader:  # still ours until the TTL we last set runs out
                log.warning("cannot renew the scheduler lock (%s); stepping down at expiry", exc)
                return True
        if got:
            self._held_until = asked + self.ttl
        self._set(got)
        return got

    def _set(self, leader: bool) -> None:
        if leader == self._leader:
            return
        self._leader = leader
        if leader:
            log.info("this scheduler is now the active one (%s)", self.identity)
        else:
            log.warning("this scheduler is on standby: another one holds %s", self.key)
        if self._on_change is not None:
            self._on_change(leader)

    def start(self) -> None:
        """Renews (or keeps trying to take) the lock every third of its TTL."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="vigil-leader", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.try_acquire()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._leader:
            with contextlib.suppress(redis.RedisError):  # else it expires by itself
                self._client.eval(_RELEASE, 1, self.key, self.identity)
            self._leader = False
            log.info("released the scheduler lock: a standby can take over now")
        self._client.close()
