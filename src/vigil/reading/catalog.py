"""Book search and look-up over the sources, with their answers cached.

Google Books is asked first. When it fails (after its retries) Open Library answers the
search instead; when a Google Books volume has no page count, Open Library is asked for the
page count of its ISBN. Answers are kept in the core cache (Redis, or memory) for
``VIGIL_BOOKS_CACHE_SECONDS``: a search under its normalised query, and every hit under its
source and id, so adding a book just found costs no request.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace

from vigil.core.cache import Cache, cache_key
from vigil.reading.sources.base import BookHit, BookSource, BookSourceError
from vigil.reading.sources.google_books import GoogleBooks
from vigil.reading.sources.open_library import OpenLibrary
from vigil.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    hits: list[BookHit]
    source: str  # the source that answered the search
    notes: list[str] = field(default_factory=list)  # what went wrong on the way, if anything


class SourcesUnavailable(Exception):
    """No source could answer; the message says what each one said."""


def _key(*parts: object) -> str:
    return cache_key("reading", *parts)


@dataclass
class Catalog:
    primary: GoogleBooks
    secondary: OpenLibrary
    cache: Cache
    ttl: float

    @classmethod
    def from_settings(cls, settings: Settings, cache: Cache) -> Catalog:
        return cls(
            GoogleBooks.from_settings(settings),
            OpenLibrary.from_settings(settings),
            cache,
            settings.books_cache_seconds,
        )

    def close(self) -> None:
        self.primary.close()
        self.secondary.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- cache ----------------------------------------------------------------------------
    def _remember(self, key: str, value: object) -> None:
        if self.ttl > 0:
            self.cache.set(key, json.dumps(value).encode(), self.ttl)

    def _recall(self, key: str) -> object | None:
        if self.ttl <= 0:
            return None
        raw = self.cache.get(key)
        return json.loads(raw) if raw is not None else None

    # --- search ---------------------------------------------------------------------------
    def search(self, query: str, limit: int = 10) -> SearchResult:
        normalised = " ".join(query.split()).lower()
        key = _key("search", limit, normalised)
        cached = self._recall(key)
        if isinstance(cached, dict):
            return SearchResult(
                [BookHit.from_json(h) for h in cached["hits"]], cached["source"], cached["notes"]
            )
        result = self._search(normalised, limit)
        self._remember(
            key,
            {"hits": [h.to_json() for h in result.hits], "source": result.source,
             "notes": result.notes},
        )  # fmt: skip
        for hit in result.hits:
            self._remember(_key("book", hit.source, hit.source_id), hit.to_json())
        return result

    def _search(self, query: str, limit: int) -> SearchResult:
        notes: list[str] = []
        try:
            hits = self.primary.search(query, limit)
        except BookSourceError as exc:
            log.warning("Google Books search failed, asking Open Library: %s", exc)
            notes.append(f"Google Books did not answer ({exc}); results from Open Library.")
            try:
                return SearchResult(self.secondary.search(query, limit), "open_library", notes)
            except BookSourceError as second:
                raise SourcesUnavailable(
                    f"No book source answered. Google Books: {exc}. Open Library: {second}."
                ) from second
        return SearchResult([self._with_pages(h, notes) for h in hits], "google_books", notes)

    def _with_pages(self, hit: BookHit, notes: list[str]) -> BookHit:
        """A Google Books hit without a page count gets Open Library's, by ISBN."""
        if hit.page_count is not None or hit.isbn13 is None:
            return hit
        try:
            pages = self.secondary.page_count_of(hit.isbn13)
        except BookSourceError as exc:
            notes.append(f"Open Library could not give the page count of {hit.isbn13}: {exc}")
            return hit
        if pages is None:
            return hit
        return replace(hit, page_count=pages)

    # --- one book -------------------------------------------------------------------------
    def lookup(self, source: str, source_id: str) -> BookHit | None:
        """A book by its source's id: from the cache (a recent search), else the source."""
        cached = self._recall(_key("book", source, source_id))
        if isinstance(cached, dict):
            return BookHit.from_json(cached)
        sources: dict[str, BookSource] = {
            "google_books": self.primary,
            "open_library": self.secondary,
        }
        if source not in sources:
            return None
        try:
            hit = sources[source].lookup(source_id)
        except BookSourceError as exc:
            raise SourcesUnavailable(str(exc)) from exc
        if hit is not None and source == "google_books":
            hit = self._with_pages(hit, [])
        if hit is not None:
            self._remember(_key("book", hit.source, hit.source_id), hit.to_json())
        return hit
