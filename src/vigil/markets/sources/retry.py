"""The markets sources' retryable error: core's (``vigil.core.retry``), in the
:class:`SourceError` family, so a job that catches source errors catches it too."""

from __future__ import annotations

from vigil.core.retry import Backoff, retry_after_seconds
from vigil.core.retry import RetryableError as CoreRetryableError
from vigil.markets.sources.base import SourceError

__all__ = ["Backoff", "RetryableError", "retry_after_seconds"]


class RetryableError(SourceError, CoreRetryableError):
    """A failure worth another try (429, 408, 5xx, timeout, connection error); ``status``
    is the HTTP status when there was one, ``retry_after`` the server's wish in seconds."""
