"""Time windows of a price series: parsing ``15m`` / ``24h`` / ``7d`` and downsampling a
long window to a bounded number of points. Pure functions, no I/O.

Window syntax: a whole number followed by one unit letter, ``m`` (minutes), ``h`` (hours)
or ``d`` (days), from ``1m`` to ``365d`` (``525600m`` and ``8760h`` are the same maximum).
Strict on purpose, because the text comes from a query string and its error message is
shown to the user as is: lower-case units only (``M`` could be read as months), no sign,
no spaces, no leading zeros, no fractions, ASCII digits only.

Downsampling keeps, for each of ``(max_points - 2) // 2`` equal *time* buckets, the
lowest and the highest point, plus the first and last point of the series (the min/max
family of chart decimation, as in M4 without the per-bucket first/last). See
:func:`downsample` for why this method rather than LTTB.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from operator import itemgetter

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_WINDOW",
    "MIN_DOWNSAMPLE_POINTS",
    "MIN_WINDOW",
    "WINDOW_FORMS",
    "Point",
    "downsample",
    "format_window",
    "parse_window",
]

Point = tuple[datetime, Decimal]
"""One price of a series: (timezone-aware time, price)."""

MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=365)
WINDOW_FORMS = (
    "a whole number followed by m (minutes), h (hours) or d (days), "
    "from 1m to 365d, e.g. 15m, 1h, 24h, 7d or 30d"
)
"""The accepted forms, as every :func:`parse_window` error message states them."""

MIN_DOWNSAMPLE_POINTS = 4
"""The smallest ``max_points`` :func:`downsample` accepts: first, last, min and max."""

_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
# At most 6 digits (525600m is the longest valid window): bounds the work on hostile input
# before int() and keeps [0-9] rather than \d, which also matches non-ASCII digits.
_WINDOW_RE = re.compile(r"([1-9][0-9]{0,5})([mhd])")
_ECHO_CHARS = 20  # how much of a bad input the message repeats
_time, _price = itemgetter(0), itemgetter(1)


def _echo(text: str) -> str:
    shown = text if len(text) <= _ECHO_CHARS else text[:_ECHO_CHARS] + "..."
    return repr(shown)


def parse_window(text: str) -> timedelta:
    """The duration of a window written as ``<N>m``, ``<N>h`` or ``<N>d`` (see the module
    docstring for the exact syntax), between :data:`MIN_WINDOW` (1m) and
    :data:`MAX_WINDOW` (365d).

    Raises ``ValueError`` for anything else, with a message meant for the API's user (it is
    returned verbatim in a 422), e.g. ``window '1w' is not valid: use a whole number
    followed by m (minutes), h (hours) or d (days), from 1m to 365d, e.g. 15m, 1h, 24h, 7d
    or 30d``.
    """
    if not isinstance(text, str):
        raise ValueError(f"window must be text: use {WINDOW_FORMS}")
    match = _WINDOW_RE.fullmatch(text)
    if match is None:
        if not text:
            raise ValueError(f"window is empty: use {WINDOW_FORMS}")
        raise ValueError(f"window {_echo(text)} is not valid: use {WINDOW_FORMS}")
    window = int(match[1]) * _UNITS[match[2]]
    if window > MAX_WINDOW:
        raise ValueError(f"window {_echo(text)} is longer than 365d: use {WINDOW_FORMS}")
    return window


def format_window(window: timedelta) -> str:
    """The canonical text of a window, in the largest unit that divides it exactly:
    ``format_window(parse_window(s)) == s`` for ``s`` in canonical form (``60m`` gives
    ``1h``). Raises ``ValueError`` for a window that is not a whole number of minutes
    or is outside 1m..365d."""
    if not MIN_WINDOW <= window <= MAX_WINDOW or window % MIN_WINDOW:
        raise ValueError(f"a window must be whole minutes from 1m to 365d, got {window}")
    for unit in ("d", "h", "m"):
        count, rest = divmod(window, _UNITS[unit])
        if not rest:
            return f"{count}{unit}"
    raise AssertionError("unreachable: every window is whole minutes")  # pragma: no cover


def _first_per_segment(
    mask: npt.NDArray[np.bool_], segment: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """Index of the first True of ``mask`` in each segment (``segment`` non-decreasing,
    every segment holding at least one True)."""
    hits = np.flatnonzero(mask)
    seg = segment[hits]
    first = np.ones(len(hits), dtype=bool)
    first[1:] = seg[1:] != seg[:-1]
    return hits[first]


def _check_order(times: Sequence[datetime]) -> None:
    if any(later < earlier for earlier, later in pairwise(times)):
        raise ValueError("points must be in time order")


def downsample(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most ``max_points`` of ``points`` (in time order), chosen to keep the shape of the
    price series: the points themselves, never new or averaged values, so every returned
    tuple is one of the input's, ``Decimal`` untouched, in the input's order.

    With ``len(points) <= max_points`` the input is returned as a new list, unchanged.
    Otherwise the time span from the first to the last point is cut into
    ``(max_points - 2) // 2`` buckets of equal duration, and the result is the first point,
    the last point, and the lowest and highest point of every non-empty bucket (ties go to
    the earliest point), duplicates removed. So the global minimum and maximum always
    survive, and a spike is lost only to a bigger one in the same bucket. A bucket without
    points contributes nothing: a gap in the data stays a gap, at the price of returning
    fewer than ``max_points`` points for a series with long gaps.

    Why min/max per time bucket and not LTTB (Largest-Triangle-Three-Buckets): LTTB picks
    one point per bucket by triangle area, which looks good but may drop the very high or
    low that a price chart is read for, and it is sequential (each bucket depends on the
    previous choice). Min/max keeps every extreme at bucket resolution, is vectorised in
    numpy (tens of milliseconds for 50,000 points, mostly converting the ``datetime`` and
    ``Decimal`` objects), and its buckets are slices of the time axis a chart draws, so
    irregular sampling doesn't shift detail towards the denser stretches.

    Comparisons are made on float64 copies of the prices: exact for prices of up to 15
    significant digits; prices differing only beyond that count as equal (the earliest is
    kept, still an original point).

    Raises ``ValueError`` when ``max_points`` is below :data:`MIN_DOWNSAMPLE_POINTS` (4),
    when the points are not in time order, or when a price is not finite.
    """
    if isinstance(max_points, bool) or not isinstance(max_points, int):
        raise ValueError(f"max_points must be an integer, got {max_points!r}")
    if max_points < MIN_DOWNSAMPLE_POINTS:
        raise ValueError(
            f"max_points must be at least {MIN_DOWNSAMPLE_POINTS} (first, last, min and "
            f"max), got {max_points}"
        )
    n = len(points)
    if n <= max_points:
        _check_order([t for t, _ in points])
        return list(points)

    # map/itemgetter rather than zip(*points): no per-point container objects, which would
    # wake the garbage collector (that alone doubled the time inside a large process).
    times = np.fromiter(map(datetime.timestamp, map(_time, points)), dtype=np.float64, count=n)
    values = np.fromiter(map(float, map(_price, points)), dtype=np.float64, count=n)
    if (np.diff(times) < 0).any():
        raise ValueError("points must be in time order")
    if not np.isfinite(values).all():
        raise ValueError("prices must be finite numbers")

    buckets = (max_points - 2) // 2
    span = times[-1] - times[0]
    if span > 0:
        bucket = ((times - times[0]) * (buckets / span)).astype(np.intp)
        np.minimum(bucket, buckets - 1, out=bucket)  # the last point's bucket is `buckets`
    else:
        bucket = np.zeros(n, dtype=np.intp)
    # Times are sorted, so each non-empty bucket is one contiguous run of indices.
    starts = np.flatnonzero(np.diff(bucket)) + 1
    starts = np.concatenate(([0], starts))
    segment = np.cumsum(np.diff(bucket, prepend=bucket[0]) != 0)
    lows = np.minimum.reduceat(values, starts)
    highs = np.maximum.reduceat(values, starts)
    keep = np.unique(
        np.concatenate(
            (
                [0, n - 1],
                _first_per_segment(values == lows[segment], segment),
                _first_per_segment(values == highs[segment], segment),
            )
        )
    )
    return [points[i] for i in keep.tolist()]
