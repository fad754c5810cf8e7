"""Price sources. Importing this package registers every bundled source."""

from vigil.markets.sources import coingecko as coingecko  # registers CoinGeckoClient
from vigil.markets.sources import nbp as nbp  # registers NBPClient
from vigil.markets.sources.base import (
    SOURCES,
    Quote,
    SeriesKind,
    SourceClient,
    SourceError,
    create_source,
    date_chunks,
    register_source,
)

__all__ = [
    "SOURCES",
    "Quote",
    "SeriesKind",
    "SourceClient",
    "SourceError",
    "create_source",
    "date_chunks",
    "register_source",
]
