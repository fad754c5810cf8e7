"""What every client of an outside HTTP API does about failures worth another try: the
error that marks them, the server's ``Retry-After``, and the wait before the next attempt
(exponential backoff with jitter, never sooner than ``Retry-After``, capped) with its warning
line. Shared by the modules' source clients (markets: NBP, CoinGecko; reading: Google Books,
Open Library); each module subclasses :class:`RetryableError` into its own error family."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_exponential_jitter


class RetryableError(Exception):
    """A failure worth another try (429, 408, 5xx, timeout, connection error); ``status``
    is the HTTP status when there was one, ``retry_after`` the server's wish in seconds."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date (RFC 9110)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _failure(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None


class Backoff:
    """The wait and the warning of one client's retries (``wait`` and ``log_retry`` plug
    into tenacity's ``Retrying``)."""

    def __init__(
        self,
        source: str,
        log: logging.Logger,
        max_attempts: int,
        initial_seconds: float,
        max_seconds: float,
    ) -> None:
        self.source, self.log = source, log
        self.max_attempts, self.max_seconds = max_attempts, max_seconds
        self._exponential = wait_exponential_jitter(
            multiplier=initial_seconds, max=max_seconds, jitter=initial_seconds
        )

    def wait(self, state: RetryCallState) -> float:
        delay = self._exponential(state)
        exc = _failure(state)
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return min(delay, self.max_seconds)

    def log_retry(self, state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "%s request failed (attempt %d of %d): %s; retrying in %.1fs",
            self.source,
            state.attempt_number,
            self.max_attempts,
            _failure(state),
            wait,
        )

    def retrying(
        self,
        sleep: Callable[[float], None],
        retry: Callable[[RetryCallState], bool] | None = None,
    ) -> Retrying:
        """A tenacity ``Retrying`` with this backoff: at most ``max_attempts`` tries, the
        wait above, a warning before each retry; it retries :class:`RetryableError` unless
        ``retry`` decides otherwise."""
        return Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self.wait,
            retry=retry or _retryable,
            sleep=sleep,
            before_sleep=self.log_retry,
        )


def _retryable(state: RetryCallState) -> bool:
    return isinstance(_failure(state), RetryableError)
