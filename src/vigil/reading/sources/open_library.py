"""Open Library's search API: ``/search.json?q=…`` answers works (``docs``) with their
authors, a cover id, ISBNs and the median page count of their editions.

It is the second source: asked when Google Books fails, and for the page count of a Google
Books volume that has none (``q=isbn:<ISBN-13>``). One work is looked up with
``q=key:/works/<id>``. Covers are ``covers.openlibrary.org/b/id/<cover_i>-M.jpg``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from vigil.reading.sources.base import (
    BookHit,
    BookSourceError,
    HttpBookSource,
    clean_isbn13,
    positive_int,
    register_source,
)
from vigil.settings import Settings

NAME = "open_library"
COVERS = "https://covers.openlibrary.org/b/id/{}-M.jpg"
WORK_KEY = re.compile(r"OL\d+W")


def parse_doc(doc: Any) -> BookHit:
    """One work of a ``search.json`` answer."""
    try:
        key = str(doc["key"]).rsplit("/", 1)[-1]
        title = str(doc["title"])
    except (KeyError, TypeError):
        raise BookSourceError(
            f"Open Library sent a work without key or title: {doc!r:.200}"
        ) from None
    isbns = [i for i in (clean_isbn13(v) for v in doc.get("isbn") or ()) if i]
    cover = doc.get("cover_i")
    year = doc.get("first_publish_year")
    return BookHit(
        source=NAME,
        source_id=key,
        title=title,
        authors=tuple(str(a) for a in doc.get("author_name") or ()),
        page_count=positive_int(doc.get("number_of_pages_median")),
        isbn13=isbns[0] if isbns else None,
        cover_url=COVERS.format(cover) if isinstance(cover, int) and cover > 0 else None,
        published=str(year) if isinstance(year, int) else None,
    )


def parse_search(payload: Any) -> list[BookHit]:
    if not isinstance(payload, dict) or not isinstance(payload.get("docs"), list):
        raise BookSourceError("Open Library search reply has no list of docs")
    return [parse_doc(doc) for doc in payload["docs"]]


@register_source
class OpenLibrary(HttpBookSource):
    name: ClassVar[str] = NAME
    title: ClassVar[str] = "Open Library"

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenLibrary:
        return cls(settings.open_library_base_url, **cls._common(settings))

    def search(self, query: str, limit: int = 10) -> list[BookHit]:
        payload = self._get("search.json", {"q": query, "limit": str(max(1, limit))})
        return parse_search(payload)[:limit] if payload is not None else []

    def lookup(self, source_id: str) -> BookHit | None:
        if not WORK_KEY.fullmatch(source_id):
            return None
        hits = self.search(f"key:/works/{source_id}", 1)
        return next((h for h in hits if h.source_id == source_id), None)

    def page_count_of(self, isbn13: str) -> int | None:
        """The median page count of the work with this ISBN, if Open Library knows it."""
        hits = self.search(f"isbn:{isbn13}", 1)
        return hits[0].page_count if hits else None
