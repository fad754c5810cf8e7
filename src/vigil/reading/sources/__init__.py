"""Book sources. Importing this package registers every bundled source."""

from vigil.reading.sources import google_books as google_books  # registers GoogleBooks
from vigil.reading.sources import open_library as open_library  # registers OpenLibrary
from vigil.reading.sources.base import (
    SOURCES,
    BookHit,
    BookSource,
    BookSourceError,
    create_source,
)

__all__ = ["SOURCES", "BookHit", "BookSource", "BookSourceError", "create_source"]
