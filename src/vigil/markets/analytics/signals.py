"""BUY / HOLD / SELL from the MACD histogram (MACD line - signal line).

The rule: a BUY when the MACD line crosses above its signal line, that is when the
histogram turns positive after being negative; a SELL for the mirror image; HOLD on every
other day. Precisely, at index ``t``:

* BUY  if ``histogram[t] > 0`` and the last non-zero histogram value before ``t`` is < 0;
* SELL if ``histogram[t] < 0`` and the last non-zero histogram value before ``t`` is > 0;
* HOLD otherwise: no sign change, an exact zero, NaN (the warm-up), or no earlier non-zero
  value at all (the first defined point).

Exact zeros and NaNs are skipped when looking back: a histogram going ``-, 0, 0, +`` is one
BUY, on the ``+`` day, and a touch ``-, 0, -`` is no signal. Pure functions, no I/O.

Incremental runs: ``classify(h[i:], last_nonzero(h[:i]))`` equals ``classify(h)[i:]``.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import numpy.typing as npt

__all__ = ["Signal", "classify", "last_nonzero"]


class Signal(StrEnum):
    """A trading signal of one day."""

    BUY = "BUY"
    HOLD = "HOLD"
    SELL = "SELL"


# classify's codes: 0 HOLD, 1 BUY, 2 SELL
_BY_CODE = np.array([Signal.HOLD, Signal.BUY, Signal.SELL], dtype=object)


def _histogram(histogram: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(histogram, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"histogram must be one-dimensional, got shape {arr.shape}")
    return arr


def last_nonzero(histogram: npt.NDArray[np.float64]) -> float | None:
    """The last value of ``histogram`` that is neither zero nor NaN, or None if none is.

    Pass it as ``previous_nonzero`` to :func:`classify` the next part of the series.
    """
    arr = _histogram(histogram)
    nonzero = np.flatnonzero((arr != 0) & ~np.isnan(arr))
    return float(arr[nonzero[-1]]) if len(nonzero) else None


def classify(
    histogram: npt.NDArray[np.float64], previous_nonzero: float | None = None
) -> list[Signal]:
    """The signal of every point of ``histogram`` (one per value, same order).

    ``previous_nonzero`` is the last non-zero histogram value before ``histogram[0]``, for
    classifying a series in parts (see :func:`last_nonzero`); None when there is none, as at
    the start of a series. It must be a non-zero number.
    """
    if previous_nonzero is not None and (previous_nonzero == 0 or math.isnan(previous_nonzero)):
        raise ValueError(
            f"previous_nonzero must be a non-zero number or None, got {previous_nonzero}"
        )
    arr = _histogram(histogram)
    n = len(arr)
    if n == 0:
        return []
    sign = np.sign(np.nan_to_num(arr, nan=0.0))  # -1, 0, +1; NaN counts as zero
    # for each t, the index of the last non-zero value at or before t (-1: none)
    positions = np.where(sign != 0, np.arange(n), -1)
    np.maximum.accumulate(positions, out=positions)
    # the sign of the last non-zero value strictly before t
    before = np.empty(n, dtype=np.int64)
    before[0] = -1
    before[1:] = positions[:-1]
    initial = 0.0 if previous_nonzero is None else math.copysign(1.0, previous_nonzero)
    prior = np.where(before >= 0, sign[np.maximum(before, 0)], initial)
    codes = np.where((sign > 0) & (prior < 0), 1, 0) + np.where((sign < 0) & (prior > 0), 2, 0)
    labels: list[Signal] = _BY_CODE[codes].tolist()
    return labels
