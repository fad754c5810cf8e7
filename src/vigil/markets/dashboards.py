"""What the price dashboards show (Dashboard and Gold pages): one asset's daily series with
its Bollinger band, MACD, BUY/SELL crossings and weekly candles over a date range. Reads
through the service layer; the analytics run over the whole stored history, so a short
range starts with warmed-up EMAs and bands, then the result is cut to the range."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from vigil.markets import service
from vigil.markets.analytics.bands import Bands, Candle, bollinger, weekly_candles
from vigil.markets.analytics.macd import MacdParams, MacdSeries, macd
from vigil.markets.analytics.signals import Signal, classify
from vigil.markets.models import Asset
from vigil.markets.sources import SeriesKind

#: Range choices of the pages: label -> days back from the last stored day (None: all).
RANGES: dict[str, int | None] = {"3m": 92, "6m": 183, "1y": 366, "5y": 5 * 366, "all": None}
DEFAULT_RANGE = "1y"
BAND_PERIOD, BAND_K = 20, 2.0


@dataclass(frozen=True)
class Crossing:
    day: date
    signal: Signal
    price: float
    macd: float
    signal_line: float
    histogram: float


@dataclass(frozen=True)
class PriceDashboard:
    asset: Asset
    start: date  # the range shown (within the stored span)
    end: date
    first_stored: date
    last_stored: date
    days: list[date]
    values: list[float]
    bands: Bands
    macd: MacdSeries
    crossings: list[Crossing]  # BUY and SELL days in the range, oldest first
    candles: list[Candle]
    #: What presentation derived from this range of this stored history (chart JSON): kept
    #: with the history, so it goes when the series changes. Auto-refresh asks again and
    #: again for the same range.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def latest(self) -> tuple[date, float] | None:
        return (self.days[-1], self.values[-1]) if self.days else None

    @property
    def change_pct(self) -> float | None:
        """Change over the range shown, in percent."""
        if len(self.values) < 2 or self.values[0] == 0:
            return None
        return (self.values[-1] / self.values[0] - 1) * 100


def resolve_range(
    choice: str, start: date | None, end: date | None, first: date, last: date
) -> tuple[date, date]:
    """Explicit dates win over the preset; both are clipped to what is stored."""
    days_back = RANGES.get(choice, RANGES[DEFAULT_RANGE])
    lo = start or (first if days_back is None else last - timedelta(days=days_back))
    hi = end or last
    service.check_range(lo, hi)
    return max(lo, first), min(hi, last)


@dataclass(frozen=True)
class History:
    """An asset's whole stored daily series with its indicators (before any range cut)."""

    days: list[date]
    values: list[float]
    bands: Bands
    macd: MacdSeries
    signals: list[Signal]
    crossing_at: list[int]  # indices of the BUY and SELL days, in order
    candles: list[Candle]  # of the whole history
    memos: dict[tuple[int, int], dict[Any, Any]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def memo_of(self, i: int, j: int) -> dict[Any, Any]:
        """A place to keep what is derived from the range ``[i, j)`` (a few ranges)."""
        if (i, j) not in self.memos and len(self.memos) >= 8:
            self.memos.clear()
        return self.memos.setdefault((i, j), {})


class HistoryCache:
    """The last few assets' :class:`History`, reused while the stored series is unchanged.

    The check is one indexed query per request (rows, newest day, newest fetch of the
    asset), so a price stored by any process, or corrected in place, is seen at once; no
    event or time-to-live is involved. Reading and computing the whole history again was
    ~20 of the ~38 ms of a full-history panel."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, MacdParams], tuple[tuple[Any, ...], History]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, session: Session, asset_id: int, params: MacdParams) -> History | None:
        stamp = service.series_stamp(session, asset_id)
        if stamp[0] == 0:
            return None
        key = (asset_id, params)
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == stamp:
                self._entries.move_to_end(key)
                return found[1]
        history = _history(*service.daily_values(session, asset_id), params)
        with self._lock:
            self._entries[key] = (stamp, history)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return history


def _history(days: list[date], values: list[float], params: MacdParams) -> History:
    x = np.asarray(values, dtype=np.float64)
    series = macd(x, params)
    signals = classify(series.histogram)
    crossing_at = [t for t, signal in enumerate(signals) if signal is not Signal.HOLD]
    bands = bollinger(x, BAND_PERIOD, BAND_K)
    return History(days, values, bands, series, signals, crossing_at, weekly_candles(days, values))


HISTORIES = HistoryCache()


def price_dashboard(
    session: Session,
    code: str,
    kind: SeriesKind,
    choice: str,
    start: date | None,
    end: date | None,
    params: MacdParams,
    histories: HistoryCache = HISTORIES,
) -> PriceDashboard | None:
    """None when the asset has no prices yet."""
    asset = service.get_asset(session, code, kind)
    history = histories.get(session, asset.id, params)
    if history is None or not history.days:
        return None
    days, values, series, signals = history.days, history.values, history.macd, history.signals
    lo, hi = resolve_range(choice, start, end, days[0], days[-1])
    i, j = bisect_left(days, lo), bisect_right(days, hi)
    at = history.crossing_at
    crossings = [
        Crossing(
            days[t],
            signals[t],
            values[t],
            float(series.macd[t]),
            float(series.signal[t]),
            float(series.histogram[t]),
        )
        for t in at[bisect_left(at, i) : bisect_left(at, j)]
    ]
    cut = slice(i, j)
    bands = history.bands
    return PriceDashboard(
        asset=asset,
        start=lo,
        end=hi,
        first_stored=days[0],
        last_stored=days[-1],
        days=days[cut],
        values=values[cut],
        bands=Bands(bands.middle[cut], bands.upper[cut], bands.lower[cut]),
        macd=MacdSeries(
            series.macd[cut],
            series.signal[cut],
            series.histogram[cut],
            series.ema_fast[cut],
            series.ema_slow[cut],
        ),
        crossings=crossings,
        memo=history.memo_of(i, j),
        # The whole history's candles serve a range that is the whole history; any other
        # range starts its first week on its first day.
        candles=history.candles
        if (i, j) == (0, len(days))
        else weekly_candles(days[cut], values[cut]),
    )
