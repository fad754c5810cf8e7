"""The book source interface: one plug-in per catalogue (Google Books, Open Library).

A source answers a free-text search (title, author or ISBN) with :class:`BookHit` s and looks
one book up by its own id. :class:`HttpBookSource` holds what every HTTP source does: one
``httpx`` client with timeouts and a descriptive User-Agent, retries with exponential backoff
on 429, 408, 5xx, timeouts and connection errors (never sooner than ``Retry-After``; a
``Retry-After`` beyond the backoff cap gives up at once, so the caller can ask the other
source), and JSON parsing. Adding a source is one file: subclass, decorate with
:func:`register_source`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Self, TypeVar

import httpx
from tenacity import RetryCallState, RetryError

from vigil import __version__
from vigil.core.retry import Backoff, retry_after_seconds
from vigil.core.retry import RetryableError as CoreRetryableError
from vigil.settings import Settings

log = logging.getLogger(__name__)

USER_AGENT = f"Vigil/{__version__} (self-hosted reading tracker ChronoBook; httpx)"
_RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class BookHit:
    """One book as a source describes it; ``source_id`` is the source's own id (a Google
    Books volume id, an Open Library work key such as ``OL5738148W``)."""

    source: str
    source_id: str
    title: str
    authors: tuple[str, ...]
    page_count: int | None
    isbn13: str | None
    cover_url: str | None
    published: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BookHit:
        return cls(**{**data, "authors": tuple(data["authors"])})


class BookSourceError(Exception):
    """The source gave no usable answer (after retries where retrying makes sense)."""


class RetryableError(BookSourceError, CoreRetryableError):
    """A failure worth another try (429, 408, 5xx, timeout, connection error)."""


_ISBN13 = re.compile(r"97[89]\d{10}")


def clean_isbn13(value: Any) -> str | None:
    """An ISBN-13 (digits only) or None."""
    if not isinstance(value, str):
        return None
    digits = value.replace("-", "").replace(" ", "")
    return digits if _ISBN13.fullmatch(digits) else None


def positive_int(value: Any) -> int | None:
    """A page count: a positive whole number, else None (0 means unknown at both sources)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def https(url: Any) -> str | None:
    """Cover links come as http://; the pages are served over https."""
    if not isinstance(url, str) or not url:
        return None
    return "https://" + url[len("http://") :] if url.startswith("http://") else url


class BookSource(ABC):
    name: ClassVar[str]
    title: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> BookSource: ...

    @abstractmethod
    def search(self, query: str, limit: int = 10) -> list[BookHit]:
        """Books matching a title, an author or an ISBN, best first."""

    @abstractmethod
    def lookup(self, source_id: str) -> BookHit | None:
        """One book by the source's own id; None when the source does not know it."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class HttpBookSource(BookSource):
    """One ``httpx.Client`` per instance; close it (or use ``with``) when done."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        max_attempts: int = 3,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            transport=transport,
        )
        self._backoff = Backoff(self.title, log, max_attempts, backoff_initial, backoff_max)
        self._sleep = sleep

    @classmethod
    def _common(cls, settings: Settings) -> dict[str, Any]:
        return {
            "timeout": settings.books_timeout_seconds,
            "max_attempts": settings.books_max_attempts,
            "backoff_initial": settings.books_backoff_initial_seconds,
            "backoff_max": settings.books_backoff_max_seconds,
        }

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:  # never a key
        return f"{type(self).__name__}({self.base_url!r})"

    def _should_retry(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, RetryableError):
            return False
        # Waiting less than Retry-After would only earn another 429.
        return exc.retry_after is None or exc.retry_after <= self._backoff.max_seconds

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any | None:
        """GET a JSON document, retrying what is worth retrying; None on 404."""
        try:
            return self._backoff.retrying(self._sleep, self._should_retry)(
                self._get_once, path, params or {}
            )
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise BookSourceError(
                f"{self.title} still failing for /{path} after {self._backoff.max_attempts} "
                f"attempts: {last}"
            ) from last
        except RetryableError as exc:  # not retried: Retry-After beyond the backoff cap
            raise BookSourceError(
                f"{self.title} asks to wait {exc.retry_after:.0f}s (429 Retry-After) for "
                f"/{path}, longer than VIGIL_BOOKS_BACKOFF_MAX_SECONDS "
                f"({self._backoff.max_seconds:g}s): giving up for now"
            ) from exc

    def _get_once(self, path: str, params: dict[str, str]) -> Any | None:
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout calling {self.base_url}/{path}: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"cannot reach {self.base_url}/{path}: {exc!r}") from exc
        status = response.status_code
        if status == 200:
            try:
                return json.loads(response.content)
            except ValueError:
                start = " ".join(response.text.split())[:80]
                raise BookSourceError(
                    f"{self.title} sent invalid JSON for /{path}; it starts {start!r}"
                ) from None
        if status == 404:
            return None
        message = " ".join(response.text.split())[:200] or "(empty body)"
        if status in _RETRYABLE_STATUS or status >= 500:
            raise RetryableError(
                f"{self.title} answered {status} for /{path}: {message}",
                status,
                retry_after_seconds(response),
            )
        raise BookSourceError(f"{self.title} refused /{path} with {status}: {message}")


SOURCES: dict[str, type[BookSource]] = {}
B = TypeVar("B", bound=type[BookSource])


def register_source(cls: B) -> B:
    """Class decorator: makes a book source available by its ``name``."""
    if cls.name in SOURCES:
        raise ValueError(f"book source {cls.name!r} registered twice")
    SOURCES[cls.name] = cls
    return cls


def create_source(name: str, settings: Settings) -> BookSource:
    try:
        cls = SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown book source {name!r}; installed: {sorted(SOURCES)}") from None
    return cls.from_settings(settings)
