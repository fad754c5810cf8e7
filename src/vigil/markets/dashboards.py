"""What the price dashboards show (Dashboard and Gold pages): one asset's daily series with
its Bollinger band, MACD, BUY/SELL crossings and weekly candles over a date range. Reads
through the service layer; the analytics run over the whole stored history, so a short
range starts with warmed-up EMAs and bands, then the result is cut to the range."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, timedelta

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


def price_dashboard(
    session: Session,
    code: str,
    kind: SeriesKind,
    choice: str,
    start: date | None,
    end: date | None,
    params: MacdParams,
) -> PriceDashboard | None:
    """None when the asset has no prices yet."""
    asset = service.get_asset(session, code, kind)
    days, values = service.daily_values(session, asset.id)
    if not days:
        return None
    lo, hi = resolve_range(choice, start, end, days[0], days[-1])
    x = np.asarray(values, dtype=np.float64)
    series = macd(x, params)
    bands = bollinger(x, BAND_PERIOD, BAND_K)
    signals = classify(series.histogram)
    i, j = bisect_left(days, lo), bisect_right(days, hi)
    crossings = [
        Crossing(
            days[t],
            signals[t],
            values[t],
            float(series.macd[t]),
            float(series.signal[t]),
            float(series.histogram[t]),
        )
        for t in range(i, j)
        if signals[t] is not Signal.HOLD
    ]
    cut = slice(i, j)
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
        candles=weekly_candles(days[cut], values[cut]),
    )
