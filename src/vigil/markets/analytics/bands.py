"""Price bands and candles for the dashboards: pure functions over arrays, no I/O.

* :func:`bollinger`: the middle band is the simple moving average of ``period`` values,
  the upper and lower bands are ``k`` population standard deviations away (as
  ``talib.BBANDS`` with its defaults, matype SMA). The first ``period - 1`` outputs are NaN.
* :func:`weekly_candles`: the open, high, low and close of each ISO week (Monday to
  Sunday) built from daily values; a week is dated by its first day with data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Bands:
    middle: FloatArray
    upper: FloatArray
    lower: FloatArray


def bollinger(values: Sequence[float] | FloatArray, period: int = 20, k: float = 2.0) -> Bands:
    if period < 2:
        raise ValueError(f"period must be at least 2, got {period}")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("values must be one-dimensional")
    n = len(x)
    middle = np.full(n, np.nan)
    deviation = np.full(n, np.nan)
    if n >= period:
        windows = np.lib.stride_tricks.sliding_window_view(x, period)
        middle[period - 1 :] = windows.mean(axis=1)
        deviation[period - 1 :] = windows.std(axis=1)  # population (ddof=0), as TA-Lib
    return Bands(middle, middle + k * deviation, middle - k * deviation)


@dataclass(frozen=True)
class Candle:
    day: date  # first day of the week with a value
    open: float
    high: float
    low: float
    close: float


def weekly_candles(days: Sequence[date], values: Sequence[float]) -> list[Candle]:
    """Days must be in increasing order (as the stored series is)."""
    if len(days) != len(values):
        raise ValueError(f"{len(days)} days but {len(values)} values")
    candles: list[Candle] = []
    week: tuple[int, int] | None = None
    first = 0
    for i, day in enumerate(days):
        if i and day <= days[i - 1]:
            raise ValueError(f"days must increase: {days[i - 1]} then {day}")
        this_week = day.isocalendar()[:2]
        if this_week != week:
            if week is not None:
                candles.append(_candle(days[first], values[first:i]))
            week, first = this_week, i
    if week is not None:
        candles.append(_candle(days[first], values[first:]))
    return candles


def _candle(day: date, values: Sequence[float]) -> Candle:
    return Candle(day, values[0], max(values), min(values), values[-1])
