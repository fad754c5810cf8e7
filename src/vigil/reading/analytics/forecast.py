"""The three models over one user's history, the automatic choice between them, and the
backtest: pure functions (numpy), no I/O. Days are ordinals (``date.toordinal()``) of the
user's local calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from vigil.reading.analytics.predict import (
    Floats,
    Forecast,
    Ints,
    SpeedHabit,
    WeekdayHabit,
    contextual,
    daily_pages,
    finish_at_rate,
    simple_pace,
    speed_habit,
    targets,
    weekday_habit,
)

#: The weekday habit is trusted from four weeks of history on.
CONTEXT_MIN_DAYS = 28


@dataclass(frozen=True)
class History:
    """A user's reading: the simple log (start and end days, pages) and the finished timed
    sessions (start in epoch seconds, duration in seconds, pages, local start day)."""

    log_start: Ints
    log_end: Ints
    log_pages: Floats
    start: Floats
    duration: Floats
    pages: Floats
    day: Ints

    @classmethod
    def empty(cls) -> History:
        i, f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return cls(i, i, f, f, f, f, i)

    def before(self, day: int) -> History:
        """What was known at the start of ``day``."""
        log = self.log_end < day
        s = self.day < day
        return History(
            self.log_start[log], self.log_end[log], self.log_pages[log],
            self.start[s], self.duration[s], self.pages[s], self.day[s],
        )  # fmt: skip

    def daily(self, until: int) -> tuple[int, Floats]:
        """(first day, pages per day up to ``until`` excluded): from the sessions when there
        are any, else the log's books spread evenly over their days."""
        if len(self.day):
            first = int(self.day.min())
            return first, daily_pages(self.day - first, self.pages, max(0, until - first))
        if len(self.log_end) == 0:
            return until, np.zeros(0)
        first = int(self.log_start.min())
        out = np.zeros(max(0, until - first))
        for s, e, p in zip(self.log_start, self.log_end, self.log_pages, strict=True):
            lo, hi = int(s) - first, min(int(e) - first + 1, len(out))
            if hi > lo:
                out[lo:hi] += p / (int(e) - int(s) + 1)
        return first, out


@dataclass(frozen=True)
class Models:
    simple: float | None  # pages per day from the log
    speed: SpeedHabit | None
    habit: WeekdayHabit | None
    history_days: int

    def choice(self) -> tuple[str | None, str]:
        """The model to use and why, in words."""
        timed = self.speed is not None  # weekday habits come from timed sessions
        if timed and self.habit is not None and self.history_days >= CONTEXT_MIN_DAYS:
            return "contextual", (
                f"{self.history_days} days of timed reading: the prediction follows your "
                "habit per weekday, recent weeks weighted more, with a P10-P90 range"
            )
        if self.speed is not None:
            return "speed", (
                f"you have timed sessions ({self.speed.sessions} recent): your speed "
                f"({self.speed.pages_per_hour:.0f} pages/hour) times your habit "
                f"({self.speed.hours_per_week:.1f} hours/week); the weekday model needs "
                f"{CONTEXT_MIN_DAYS} days of history"
            )
        if self.simple is not None:
            return "simple", (
                "no timed session yet: pages left divided by your average pages per day from "
                "the books in your log (time a session to switch to speed x habit)"
            )
        return None, (
            "nothing to learn from yet: log a finished book with its dates or time a session"
        )


def fit(history: History, today: int, *, with_today: bool = False) -> Models:
    """Fits every model on what was known before ``today`` (the backtest), or with
    ``with_today`` also on today's sessions and log (a live prediction: the first timed
    session counts at once). The weekday habit never takes today: it is not over."""
    known = history.before(today + 1 if with_today else today)
    pace = simple_pace(known.log_start, known.log_end, known.log_pages, today + int(with_today))
    speed = speed_habit(known.start, known.duration, known.pages, float("inf"))
    first, days = history.before(today).daily(today)
    weekday = date.fromordinal(first).weekday() if len(days) else 0
    habit = weekday_habit(days, weekday) if len(days) else None
    return Models(pace, speed, habit, len(days))


def run(
    models: Models,
    name: str,
    today: int,
    pages_left: Floats,
    read_today: float = 0.0,
    paths: int = 100,
) -> Forecast | None:
    """The forecast of one model for books with ``pages_left`` (in reading order)."""
    goals = targets(pages_left)
    if name == "simple" and models.simple is not None:
        return Forecast("simple", models.simple, finish_at_rate(models.simple, goals))
    if name == "speed" and models.speed is not None:
        daily = models.speed.daily_pages
        return Forecast("speed", daily, finish_at_rate(daily, goals))
    if name == "contextual" and models.habit is not None:
        weekday = date.fromordinal(today).weekday()
        return contextual(models.habit, weekday, goals, read_today, paths)
    return None


# --- the backtest -----------------------------------------------------------------------------

MODELS = ("simple", "speed", "contextual")


@dataclass(frozen=True)
class BacktestResult:
    books: int  # finished books predicted by every model and the baseline
    mae_days: dict[str, float]  # per model, and "baseline"


def backtest(history: History, starts: Ints, ends: Ints, pages: Floats) -> BacktestResult:
    """For each finished book (its start day, finish day and pages), predicts its finish
    from what was known at its start, with every model and with the naive baseline (the
    book takes as many days as the median of the books finished before it started); the
    mean absolute error in days over the books every one of them could predict."""
    errors: dict[str, list[float]] = {m: [] for m in (*MODELS, "baseline")}
    used = 0
    for start, end, size in zip(starts, ends, pages, strict=True):
        day, actual = int(start), int(end) - int(start)
        before = ends < day
        if not before.any():
            continue
        baseline = float(np.median(ends[before] - starts[before]))
        models = fit(history, day)
        predicted: dict[str, float] = {}
        for name in MODELS:
            forecast = run(models, name, day, np.array([float(size)]), paths=1)
            if forecast is None or forecast.finish[0] < 0:
                break
            predicted[name] = float(forecast.finish[0])
        if len(predicted) < len(MODELS):
            continue
        used += 1
        errors["baseline"].append(abs(baseline - actual))
        for name, value in predicted.items():
            errors[name].append(abs(value - actual))
    mae = {name: float(np.mean(v)) if v else float("nan") for name, v in errors.items()}
    return BacktestResult(used, mae)
