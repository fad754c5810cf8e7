"""Google Books API v1: ``/volumes?q=…`` (search) and ``/volumes/{id}`` (one volume).

The API key is optional (keyless calls share a small quota); it travels in the
``x-goog-api-key`` header, which Google's APIs accept in place of the ``key`` query
parameter, so it never appears in a URL. A volume without ``pageCount`` (or with 0) has an
unknown page count: the catalogue then asks Open Library.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vigil.reading.sources.base import (
    BookHit,
    BookSourceError,
    HttpBookSource,
    clean_isbn13,
    https,
    positive_int,
    register_source,
)
from vigil.settings import Settings

NAME = "google_books"
API_KEY_HEADER = "x-goog-api-key"
MAX_RESULTS = 40  # the API's own maximum for maxResults


def parse_volume(item: Any) -> BookHit:
    """One ``books#volume`` (an item of a search, or the answer of ``/volumes/{id}``)."""
    try:
        info = item["volumeInfo"]
        volume_id = str(item["id"])
        title = str(info["title"])
    except (KeyError, TypeError):
        raise BookSourceError(
            f"Google Books sent a volume without id or title: {item!r:.200}"
        ) from None
    if info.get("subtitle"):
        title = f"{title}: {info['subtitle']}"
    isbn13 = next(
        (
            clean_isbn13(i.get("identifier"))
            for i in info.get("industryIdentifiers") or []
            if isinstance(i, dict) and i.get("type") == "ISBN_13"
        ),
        None,
    )
    links = info.get("imageLinks") or {}
    return BookHit(
        source=NAME,
        source_id=volume_id,
        title=title,
        authors=tuple(str(a) for a in info.get("authors") or ()),
        page_count=positive_int(info.get("pageCount")),
        isbn13=isbn13,
        cover_url=https(links.get("thumbnail") or links.get("smallThumbnail")),
        published=str(info["publishedDate"]) if info.get("publishedDate") else None,
    )


def parse_volumes(payload: Any) -> list[BookHit]:
    """A ``books#volumes`` search answer; no ``items`` means no match."""
    if not isinstance(payload, dict):
        raise BookSourceError("Google Books search reply is not a JSON object")
    return [parse_volume(item) for item in payload.get("items") or []]


@register_source
class GoogleBooks(HttpBookSource):
    name: ClassVar[str] = NAME
    title: ClassVar[str] = "Google Books"

    @classmethod
    def from_settings(cls, settings: Settings) -> GoogleBooks:
        key = settings.google_books_api_key.get_secret_value().strip()
        return cls(
            settings.google_books_base_url,
            headers={API_KEY_HEADER: key} if key else None,
            **cls._common(settings),
        )

    def search(self, query: str, limit: int = 10) -> list[BookHit]:
        params = {"q": query, "maxResults": str(max(1, min(limit, MAX_RESULTS)))}
        return parse_volumes(self._get("volumes", params))[:limit]

    def lookup(self, source_id: str) -> BookHit | None:
        payload = self._get(f"volumes/{source_id}")
        return None if payload is None else parse_volume(payload)
