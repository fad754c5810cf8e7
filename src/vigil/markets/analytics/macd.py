"""EMA and MACD as TA-Lib computes them, resumable from a saved state.

Pure functions over arrays: no I/O. The results follow ``talib.EMA`` and ``talib.MACD``
(TA-Lib's default compatibility mode, no unstable period) step by step, with the arithmetic
in the same order as TA-Lib's C code (``TA_INT_EMA``, ``TA_INT_MACD``):

* ``k = 2 / (period + 1)`` and every step is ``prev = (x - prev) * k + prev``.
* An EMA of ``period`` is seeded with the simple average of the ``period`` values ending at
  its first output index (summed left to right, then divided).
* In MACD both EMAs start at the same index, ``slow - 1``. The slow EMA is seeded with the
  average of values ``0 .. slow-1``; the fast EMA is seeded with the average of the
  ``fast`` values *ending at* ``slow - 1`` (indices ``slow-fast .. slow-1``), **not** at
  ``fast - 1`` as a standalone ``talib.EMA(x, fast)`` would be. So the fast EMA inside MACD
  differs from ``talib.EMA(x, fast)``; the difference decays geometrically but never
  vanishes exactly.
* The MACD line (fast EMA - slow EMA) exists internally from ``slow - 1``. The signal EMA
  is seeded with the average of its first ``signal`` values, so the first output (MACD,
  signal and histogram alike) is at ``lookback = (slow - 1) + (signal - 1)``, 33 for
  12/26/9. Every output before ``lookback`` is NaN, never zero.

Not bit for bit: the TA-Lib C library in the ``TA-Lib`` 0.8.x wheels calls ``fma()`` for
the EMA step, ``fma(x - prev, k, prev)``, which rounds once where ``(x - prev) * k + prev``
rounds twice (seen in its machine code, also in the non-FMA-CPU variant, and confirmed by
reproducing its output exactly with an exact fused multiply-add). Python 3.11 has no
``math.fma`` and emulating it would cost several times the loop, so the steps here round
twice: an occasional last-bit difference (about 1e-15 absolute on rates near 4, about
1e-17 on the MACD line) that the contracting recursion keeps from growing.

Where this module departs from TA-Lib, on purpose:

* ``fast >= slow`` raises ``ValueError`` (TA-Lib silently swaps the two periods when
  ``fast > slow``, and accepts ``fast == slow``, which yields a MACD of zero).
* Every period must be at least 2 (TA-Lib also accepts a signal period of 1).
* NaN or infinite inputs raise ``ValueError`` (TA-Lib skips leading NaNs and propagates
  the others).

``macd_continue`` runs the same recursion from a :class:`MacdState`, so for every split
point ``i >= lookback``::

    macd_continue(x[i + 1:], macd(x[: i + 1]).state) == macd(x)[i + 1:]   # bit for bit

which lets a caller store the state of its last day and process only new prices (the
stored floats must round-trip exactly, e.g. a double column, for the bits to carry over).
The loops are plain Python ``float`` arithmetic (IEEE double, like TA-Lib's C): a few
milliseconds for a few thousand points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

__all__ = [
    "MacdParams",
    "MacdSeries",
    "MacdState",
    "Values",
    "ema",
    "macd",
    "macd_continue",
]

FloatArray = npt.NDArray[np.float64]
Values = npt.ArrayLike | Sequence[Decimal]
"""Numbers in time order: an array, or a sequence of floats or ``Decimal`` (as stored)."""


@dataclass(frozen=True)
class MacdParams:
    """MACD periods (in points, e.g. business days). Defaults are the classic 12/26/9.

    All periods must be at least 2 and ``fast`` must be shorter than ``slow``: unlike
    TA-Lib, which swaps them when ``fast > slow``, a wrong order raises ``ValueError`` so a
    misconfiguration is not silently "corrected".
    """

    fast: int = 12
    slow: int = 26
    signal: int = 9

    def __post_init__(self) -> None:
        for name in ("fast", "slow", "signal"):
            _check_period(f"MACD {name}", getattr(self, name))
        if self.fast >= self.slow:
            raise ValueError(
                f"MACD fast must be shorter than slow, got fast={self.fast} slow={self.slow}"
            )

    @property
    def lookback(self) -> int:
        """Index of the first defined MACD/signal/histogram value: ``slow - 1 + signal - 1``
        (33 for 12/26/9). An input needs ``lookback + 1`` points for one output."""
        return self.slow - 1 + self.signal - 1

    @property
    def seed_index(self) -> int:
        """Index where both EMAs of the MACD start (``slow - 1``)."""
        return self.slow - 1


@dataclass(frozen=True)
class MacdState:
    """Recursion state after the last computed point, enough to continue exactly."""

    ema_fast: float
    ema_slow: float
    signal: float


@dataclass(frozen=True)
class MacdSeries:
    """MACD outputs, each array the same length as the input.

    ``macd``, ``signal`` and ``histogram`` are NaN before ``params.lookback``;
    ``ema_fast`` and ``ema_slow`` are defined from ``params.seed_index`` (``slow - 1``) on,
    also when the input is too short for any MACD output. A series made by
    :func:`macd_continue` is defined everywhere.
    """

    macd: FloatArray
    signal: FloatArray
    histogram: FloatArray
    ema_fast: FloatArray
    ema_slow: FloatArray

    @property
    def state(self) -> MacdState | None:
        """The state at the last point, or None when that point has no signal value yet
        (warming up, or an empty series)."""
        if len(self.signal) == 0 or np.isnan(self.signal[-1]):
            return None
        return MacdState(
            ema_fast=float(self.ema_fast[-1]),
            ema_slow=float(self.ema_slow[-1]),
            signal=float(self.signal[-1]),
        )


def _as_float_list(values: Values) -> list[float]:
    """The input as a list of Python floats; rejects NaN, infinities and non-1-D input."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("values must be finite numbers (NaN or infinity found)")
    out: list[float] = arr.tolist()
    return out


def _check_period(name: str, period: object) -> int:
    if isinstance(period, bool) or not isinstance(period, int | np.integer):
        raise ValueError(f"{name} period must be an integer, got {period!r}")
    if period < 2:
        raise ValueError(f"{name} period must be at least 2, got {period}")
    return int(period)


def _k(period: int) -> float:
    """TA-Lib's PER_TO_K: ``2 / (period + 1)``."""
    return 2.0 / (period + 1.0)


def _sma(values: list[float]) -> float:
    """Average summed left to right like TA-Lib (not ``sum()``: since Python 3.12 it uses
    compensated summation, which can differ in the last bit)."""
    total = 0.0
    for value in values:
        total += value
    return total / len(values)


def _ema_run(values: list[float], prev: float, k: float) -> list[float]:
    """The EMA recursion from ``prev`` over ``values``: one output per value."""
    out: list[float] = []
    append = out.append
    for x in values:
        prev = (x - prev) * k + prev
        append(prev)
    return out


def _macd_run(
    values: list[float], fast: float, slow: float, signal: float, params: MacdParams
) -> tuple[list[float], list[float], list[float]]:
    """The MACD recursion from a state over ``values``: the fast EMA, slow EMA and signal
    of every value. The one loop both :func:`macd` and :func:`macd_continue` use, so the two
    agree bit for bit."""
    kf, ks, kg = _k(params.fast), _k(params.slow), _k(params.signal)
    out_fast: list[float] = []
    out_slow: list[float] = []
    out_signal: list[float] = []
    append_fast, append_slow, append_signal = (
        out_fast.append,
        out_slow.append,
        out_signal.append,
    )
    for x in values:
        fast = (x - fast) * kf + fast
        slow = (x - slow) * ks + slow
        signal = ((fast - slow) - signal) * kg + signal
        append_fast(fast)
        append_slow(slow)
        append_signal(signal)
    return out_fast, out_slow, out_signal


def _padded(n: int, tail: list[float]) -> FloatArray:
    """``tail`` right-aligned in an array of length ``n``, NaN before it."""
    out = np.empty(n, dtype=np.float64)
    start = n - len(tail)
    out[:start] = np.nan
    out[start:] = np.fromiter(tail, dtype=np.float64, count=len(tail))
    return out


def _series(n: int, fast: list[float], slow: list[float], signal: list[float]) -> MacdSeries:
    """Assembles a MacdSeries of length ``n`` from the tails of the three recursions; the
    MACD line and the histogram are shown where the signal exists. (IEEE subtraction is
    correctly rounded, so numpy's ``fast - slow`` has the same bits as the loop's.)"""
    ema_fast = _padded(n, fast)
    ema_slow = _padded(n, slow)
    signal_arr = _padded(n, signal)
    macd_arr = np.full(n, np.nan, dtype=np.float64)
    start = n - len(signal)
    macd_arr[start:] = ema_fast[start:] - ema_slow[start:]
    return MacdSeries(macd_arr, signal_arr, macd_arr - signal_arr, ema_fast, ema_slow)


def ema(values: Values, period: int) -> FloatArray:
    """TA-Lib's EMA (``talib.EMA(values, period)``): NaN for the first ``period - 1``
    points, then seeded with the average of the first ``period`` values.

    Raises ``ValueError`` for a period below 2 or non-finite values.
    """
    period = _check_period("EMA", period)
    xs = _as_float_list(values)
    n = len(xs)
    if n < period:
        return np.full(n, np.nan, dtype=np.float64)
    seed = _sma(xs[:period])
    return _padded(n, [seed, *_ema_run(xs[period:], seed, _k(period))])


def macd(values: Values, params: MacdParams = MacdParams()) -> MacdSeries:
    """TA-Lib's MACD (``talib.MACD(values, fast, slow, signal)``) over the whole series.

    ``values``: a 1-D array or a sequence of numbers (``Decimal`` works), converted to
    float64. Returns arrays of the input's length: MACD, signal and histogram NaN before
    ``params.lookback``, EMAs NaN before ``slow - 1``. A too-short (or empty) input gives
    NaN MACD/signal/histogram and a ``state`` of None. NaN inputs raise ``ValueError``.
    """
    xs = _as_float_list(values)
    n = len(xs)
    start = params.seed_index
    if n <= start:
        return _series(n, [], [], [])

    # Both EMAs start at slow-1, each seeded with the average of its own period's values
    # ending there (TA_INT_MACD calls TA_INT_EMA with the same start index for both).
    fast = [_sma(xs[start - params.fast + 1 : start + 1])]
    slow = [_sma(xs[: start + 1])]
    # Up to the signal's seeding index only the two EMAs run.
    warm = xs[start + 1 : params.lookback + 1]
    fast += _ema_run(warm, fast[0], _k(params.fast))
    slow += _ema_run(warm, slow[0], _k(params.slow))
    if n <= params.lookback:
        return _series(n, fast, slow, [])
    # The signal is seeded with the average of the first `signal` MACD values.
    signal = [_sma([f - s for f, s in zip(fast, slow, strict=True)])]
    tail = _macd_run(xs[params.lookback + 1 :], fast[-1], slow[-1], signal[0], params)
    return _series(n, fast + tail[0], slow + tail[1], signal + tail[2])


def macd_continue(
    values: Values,
    state: MacdState,
    params: MacdParams = MacdParams(),
) -> MacdSeries:
    """The MACD of the points that follow ``state`` (the state of the point just before
    ``values[0]``), every field defined. For any split point ``i >= params.lookback``,
    ``macd_continue(x[i+1:], macd(x[:i+1]).state, params)`` equals ``macd(x, params)``
    sliced at ``i+1`` bit for bit. ``params`` must be the ones that produced ``state``.

    An empty ``values`` gives empty arrays (and a ``state`` of None: keep the old one).
    """
    xs = _as_float_list(values)
    start = (float(state.ema_fast), float(state.ema_slow), float(state.signal))
    if not all(math.isfinite(v) for v in start):
        raise ValueError(f"MACD state must hold finite numbers, got {state}")
    fast, slow, signal = _macd_run(xs, *start, params)
    return _series(len(xs), fast, slow, signal)
