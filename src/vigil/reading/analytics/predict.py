"""Finish-date predictions: pure functions over arrays (numpy), no I/O.

Days are counted from the day the prediction is made (day 0, "today", counts as a reading
day). Each model turns the history into expected pages per future day; the books to read,
in order, become cumulative page targets; a book is finished on the first day whose
cumulative expected pages reach its target.

- **simple** (FR6): pages per day from the simple log: the pages of the books finished in
  the last year (all of them, if none) over the calendar days from the first start to the
  last finish, idle days between books included.
- **speed** (FR8): speed x habit: pages per hour over the timed sessions of the last
  ``window_days`` up to the latest one, times the hours per week those sessions add up to.
- **contextual** (FR9): a habit per weekday: the pages read on each past day (zero days
  included), recent weeks weighted more (half-life ``half_life_days``), averaged per
  weekday; the prediction walks day by day from today's weekday, so a Monday's prediction
  differs from a Friday's. The range (P10 to P90) comes from resampling: many futures built by
  drawing, for each future day, a past day of the same weekday (with the same weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

DAY = 86_400.0
HOUR = 3_600.0
MAX_HORIZON_DAYS = 365 * 40
#: Resolution of the weekday draws: each past day's chance in steps of 1/TABLE.
TABLE = 4096

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Forecast:
    """Per book (in reading order): the day index it is finished on (0 = today), and for the
    contextual model the P10 and P90 days. -1: not within ``MAX_HORIZON_DAYS``."""

    model: str
    daily_pages: float  # expected pages per day (the mean over a week for contextual)
    finish: Ints
    low: Ints | None = None
    high: Ints | None = None


def targets(pages_left: Floats) -> Floats:
    """Cumulative pages to read to finish each book, in order."""
    cumulative: Floats = np.cumsum(np.maximum(np.asarray(pages_left, dtype=np.float64), 0.0))
    return cumulative


def finish_at_rate(rate: float, cumulative: Floats) -> Ints:
    """Day index each target is reached at ``rate`` pages per day (day 0 reads ``rate``)."""
    if rate <= 0:
        return np.full(len(cumulative), -1, dtype=np.int64)
    days: Ints = np.maximum(np.ceil(cumulative / rate) - 1, 0).astype(np.int64)
    days[days > MAX_HORIZON_DAYS] = -1
    return days


# --- FR6: the simple log ----------------------------------------------------------------------


def simple_pace(
    starts: Ints, ends: Ints, pages: Floats, as_of: int, window_days: int = 365
) -> float | None:
    """Pages per day from log entries (start and end as day ordinals) finished before
    ``as_of``: those of the last ``window_days``, else all of them. None without any."""
    done = ends < as_of
    if not done.any():
        return None
    recent = done & (ends >= as_of - window_days)
    use = recent if recent.any() else done
    span = int(ends[use].max() - starts[use].min()) + 1
    return float(pages[use].sum()) / span


# --- FR8: speed x habit -----------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedHabit:
    pages_per_hour: float
    hours_per_week: float
    sessions: int

    @property
    def daily_pages(self) -> float:
        return self.pages_per_hour * self.hours_per_week / 7.0


def speed_habit(
    starts: Floats, durations: Floats, pages: Floats, as_of: float, window_days: int = 84
) -> SpeedHabit | None:
    """From sessions (start in epoch seconds, duration in seconds, pages read) that ended
    before ``as_of``: the ``window_days`` up to the latest one. None without any."""
    done = (starts + durations) <= as_of
    if not done.any():
        return None
    latest_end = float((starts + durations)[done].max())
    use = done & (starts >= latest_end - window_days * DAY)
    hours = float(durations[use].sum()) / HOUR
    if hours <= 0:
        return None
    first = float(starts[use].min())
    weeks = max(1.0, (latest_end - first) / (7 * DAY))
    return SpeedHabit(float(pages[use].sum()) / hours, hours / weeks, int(use.sum()))


# --- FR9: the weekday habit -------------------------------------------------------------------


def daily_pages(day_index: Ints, pages: Floats, days: int) -> Floats:
    """Pages per day over ``days`` days from sessions given by the index of their day
    (0 = the first day); days without a session are zeros."""
    out = np.zeros(days, dtype=np.float64)
    keep = (day_index >= 0) & (day_index < days)
    np.add.at(out, day_index[keep], pages[keep])
    return out


@dataclass(frozen=True)
class WeekdayHabit:
    mean: Floats  # expected pages per weekday (0 = Monday)
    pools: tuple[Floats, ...]  # the past days of each weekday …
    weights: tuple[Floats, ...]  # … and their resampling probabilities
    days: int  # past days used


def weekday_habit(
    history: Floats, first_weekday: int, half_life_days: float = 28.0, window_days: int = 182
) -> WeekdayHabit | None:
    """``history``: pages per day, oldest first, ending yesterday; ``first_weekday``: the
    weekday of its first day. None when no weekday has a past day with weight or nothing
    was ever read."""
    window = history[-window_days:]
    n = len(window)
    if n == 0 or float(window.sum()) <= 0:
        return None
    offset = len(history) - n
    weekdays = (first_weekday + offset + np.arange(n)) % 7
    ages = (n - 1 - np.arange(n)).astype(np.float64)
    weights = 0.5 ** (ages / half_life_days)
    mean = np.zeros(7)
    pools: list[Floats] = []
    probs: list[Floats] = []
    for weekday in range(7):
        mask = weekdays == weekday
        pool, w = window[mask], weights[mask]
        if len(pool) == 0:  # fewer than 7 days of history: this weekday borrows them all
            pool, w = window, weights
        mean[weekday] = float((pool * w).sum() / w.sum())
        pools.append(pool)
        probs.append(w / w.sum())
    return WeekdayHabit(mean, tuple(pools), tuple(probs), n)


def _first_reaching(cumulative_days: Floats, goals: Floats) -> Ints:
    found = np.searchsorted(cumulative_days, goals, side="left").astype(np.int64)
    found[found >= len(cumulative_days)] = -1
    return found


def contextual(
    habit: WeekdayHabit,
    today_weekday: int,
    cumulative: Floats,
    read_today: float = 0.0,
    paths: int = 100,
    seed: int = 0,
) -> Forecast:
    """Walks day by day from today with the weekday habit (today expects what is left of
    its usual pages); P10 and P90 from ``paths`` resampled futures."""
    weekly = float(habit.mean.sum())
    if weekly <= 0 or len(cumulative) == 0:
        empty = np.full(len(cumulative), -1, dtype=np.int64)
        return Forecast("contextual", 0.0, empty, empty, empty)
    # Long enough for the expected walk and most futures; grown when a P90 is not reached.
    horizon = int(
        min(MAX_HORIZON_DAYS, np.ceil(float(cumulative[-1]) / (weekly / 7.0) * 1.25) + 21)
    )
    while True:
        finish, low, high = _walk(
            habit, today_weekday, cumulative, read_today, paths, seed, horizon
        )
        if (high >= 0).all() or horizon >= MAX_HORIZON_DAYS:
            return Forecast("contextual", weekly / 7.0, finish, low, high)
        horizon = min(MAX_HORIZON_DAYS, horizon * 2)


def _walk(
    habit: WeekdayHabit,
    today_weekday: int,
    cumulative: Floats,
    read_today: float,
    paths: int,
    seed: int,
    horizon: int,
) -> tuple[Ints, Ints, Ints]:
    expected = np.resize(np.roll(habit.mean, -today_weekday), horizon)
    expected[0] = max(0.0, expected[0] - read_today)
    finish = _first_reaching(np.cumsum(expected), cumulative)

    # Futures as (path, week, day of the week from today): column j is weekday today + j,
    # each a draw from that weekday's past days, through a table of the inverse of their
    # weights' CDF (TABLE slots: a lookup, not a search, per drawn day).
    rng = np.random.default_rng(seed)
    weeks = -(-horizon // 7)
    slots = rng.integers(0, TABLE, size=(7, paths, weeks), dtype=np.int32)
    block = np.empty((paths, weeks, 7), dtype=np.float32)
    middle = (np.arange(TABLE, dtype=np.float64) + 0.5) / TABLE
    for j in range(7):
        weekday = (today_weekday + j) % 7
        cdf = np.cumsum(habit.weights[weekday])
        index = np.minimum(np.searchsorted(cdf / cdf[-1], middle, side="right"), len(cdf) - 1)
        table = habit.pools[weekday][index].astype(np.float32)
        block[:, :, j] = table[slots[j]]
    draws = block.reshape(paths, weeks * 7)[:, :horizon]
    draws[:, 0] = np.maximum(0.0, draws[:, 0] - read_today)
    running = np.cumsum(draws, axis=1, dtype=np.float64)
    # One search for every path: each path's running total shifted past the previous ones.
    shift = float(running[:, -1].max()) + float(cumulative[-1]) + 1.0
    offsets = np.arange(paths, dtype=np.float64)[:, None] * shift
    flat = (running + offsets).ravel()
    found = np.searchsorted(flat, (cumulative[None, :] + offsets).ravel(), side="left")
    ends = (found.reshape(paths, -1) - np.arange(paths)[:, None] * horizon).astype(np.float64)
    ends[ends >= horizon] = -1
    ends[ends < 0] = np.inf
    low = np.percentile(ends, 10, axis=0, method="lower")
    high = np.percentile(ends, 90, axis=0, method="higher")
    return (
        finish,
        np.where(np.isfinite(low), low, -1).astype(np.int64),
        np.where(np.isfinite(high), high, -1).astype(np.int64),
    )
