"""The source interface: one plug-in per external price provider.

A source says which kinds of series it supplies; the miner asks it for date ranges no longer
than ``max_range_days`` and stores what comes back. Adding a source is one new file that
subclasses :class:`SourceClient` and is decorated with :func:`register_source`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, TypeVar

from vigil.settings import Settings


class SeriesKind(StrEnum):
    CURRENCY = "currency"
    GOLD = "gold"
    CRYPTO = "crypto"  # intraday prices (CoinGecko); no effective_date


@dataclass(frozen=True, slots=True)
class Quote:
    """One published value: ``code`` costs ``value`` PLN on ``effective_date``."""

    code: str
    name: str
    effective_date: date
    value: Decimal


class SourceError(Exception):
    """The source answered, but not with data (after retries where retrying makes sense)."""


class SourceUnsupported(SourceError):
    pass


class SourceClient(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    kinds: ClassVar[frozenset[SeriesKind]]
    max_range_days: ClassVar[int] = 366
    #: The first date with data, per kind (the backfill starts there unless told otherwise).
    history_start: ClassVar[dict[SeriesKind, date]] = {}

    base_url: str
    #: The Settings field holding this source's base URL.
    base_url_setting: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> SourceClient:
        """Builds the client from its part of the settings (base URL, timeouts, keys)."""

    def fetch_rates(self, start: date, end: date) -> list[Quote]:
        raise SourceUnsupported(f"{self.name} does not supply currency rates")

    def fetch_gold(self, start: date, end: date) -> list[Quote]:
        raise SourceUnsupported(f"{self.name} does not supply gold prices")

    def fetch(self, kind: SeriesKind, start: date, end: date) -> list[Quote]:
        if kind is SeriesKind.CURRENCY:
            return self.fetch_rates(start, end)
        if kind is SeriesKind.GOLD:
            return self.fetch_gold(start, end)
        raise SourceUnsupported(f"{self.name} has no date-range fetch for {kind.value} series")

    def latest_available_date(self) -> date:
        """The last date the source can be asked about (sources refuse future ranges)."""
        return date.today()

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


S = TypeVar("S", bound=SourceClient)


def date_chunks(start: date, end: date, max_days: int) -> Iterator[tuple[date, date]]:
    """Splits [start, end] (both inclusive) into consecutive ranges of at most ``max_days``."""
    if max_days < 1:
        raise ValueError("max_days must be at least 1")
    step = timedelta(days=max_days - 1)
    while start <= end:
        chunk_end = min(start + step, end)
        yield start, chunk_end
        start = chunk_end + timedelta(days=1)


SOURCES: dict[str, type[SourceClient]] = {}


def register_source(cls: type[S]) -> type[S]:
    """Class decorator: makes a source available by its ``name``."""
    if cls.name in SOURCES:
        raise ValueError(f"source {cls.name!r} registered twice")
    SOURCES[cls.name] = cls
    return cls


def create_source(name: str, settings: Settings) -> SourceClient:
    try:
        cls = SOURCES[name]
    except KeyError:
        installed = ", ".join(sorted(SOURCES))
        raise KeyError(f"unknown source {name!r}; installed: {installed}") from None
    return cls.from_settings(settings)
