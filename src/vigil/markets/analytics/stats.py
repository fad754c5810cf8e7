"""The analysis snapshot of a price window: level, range, change, volatility, trend, the
latest MACD crossing. Pure function over arrays, no I/O; the output is JSON-ready."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.markets.analytics.macd import Values
from vigil.markets.analytics.signals import Signal

__all__ = ["FLAT_TREND_PCT", "snapshot"]

FLAT_TREND_PCT = 0.5
"""A trend whose fitted change over the window is below this share of the mean (in %) is
"flat"."""


def _number(value: float) -> float | None:
    """A JSON-safe float: None instead of NaN or infinity."""
    return float(value) if math.isfinite(value) else None


def snapshot(
    dates: Sequence[date],
    values: Values,
    histogram: npt.ArrayLike,
    signals: Sequence[Signal],
) -> dict[str, Any]:
    """Statistics of one window of a daily series (the caller slices the window, e.g. the
    last 90 days). ``dates``, ``values`` (prices, > 0), ``histogram`` (MACD histogram, NaN
    where not defined) and ``signals`` are parallel, in date order.

    Returns a JSON-ready dict (floats, ISO date strings, None; never NaN):

    * ``points``: number of points in the window.
    * ``from``, ``to``: first and last date (ISO), None when empty.
    * ``first``, ``last``: first and last value.
    * ``change_pct``: ``(last / first - 1) * 100``.
    * ``min``, ``max``, ``mean``: of the values.
    * ``volatility``: sample standard deviation (``ddof=1``) of the daily log returns
      ``ln(v[i] / v[i-1])``, times 100 (in %, per day, not annualised); None with fewer
      than 2 returns (3 points).
    * ``trend``: ``"up"``, ``"down"`` or ``"flat"``: the sign of the least-squares slope of
      value against index (0, 1, ...); ``"flat"`` when the fitted change over the window,
      ``|slope * (points - 1)|``, is below 0.5 % of ``mean``. None with fewer than 2 points.
    * ``histogram``: the last histogram value (None if NaN).
    * ``last_crossing``: ``{"date": ISO date, "signal": "BUY" | "SELL"}`` of the latest
      BUY or SELL in the window, None when there is none.

    With no points every value is None (``points`` 0). Raises ``ValueError`` when the
    lengths differ or a value is NaN, infinite or not positive.
    """
    v = np.asarray(values, dtype=np.float64)
    h = np.asarray(histogram, dtype=np.float64)
    n = len(v)
    if v.ndim != 1 or h.ndim != 1 or not len(dates) == n == len(h) == len(signals):
        raise ValueError(
            f"dates, values, histogram and signals must be 1-D and of equal length, got "
            f"{len(dates)}, {v.shape}, {h.shape}, {len(signals)}"
        )
    if n and not (np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("values must be finite positive numbers")

    out: dict[str, Any] = {
        "points": n,
        "from": dates[0].isoformat() if n else None,
        "to": dates[-1].isoformat() if n else None,
        "first": None,
        "last": None,
        "change_pct": None,
        "min": None,
        "max": None,
        "mean": None,
        "volatility": None,
        "trend": None,
        "histogram": _number(h[-1]) if n else None,
        "last_crossing": None,
    }
    for i in range(n - 1, -1, -1):
        if signals[i] in (Signal.BUY, Signal.SELL):
            out["last_crossing"] = {
                "date": dates[i].isoformat(),
                "signal": Signal(signals[i]).value,
            }
            break
    if n == 0:
        return out

    first, last = float(v[0]), float(v[-1])
    mean = float(v.mean())
    out.update(
        first=first,
        last=last,
        change_pct=_number((last / first - 1.0) * 100.0),
        min=float(v.min()),
        max=float(v.max()),
        mean=_number(mean),
    )
    if n >= 3:
        returns = np.log(v[1:] / v[:-1])
        out["volatility"] = _number(float(returns.std(ddof=1)) * 100.0)
    if n >= 2:
        index = np.arange(n, dtype=np.float64)
        centred = index - index.mean()
        slope = float(np.dot(centred, v - mean) / np.dot(centred, centred))
        fitted_change = abs(slope * (n - 1))
        if fitted_change / mean * 100.0 < FLAT_TREND_PCT:
            out["trend"] = "flat"
        else:
            out["trend"] = "up" if slope > 0 else "down"
    return out
