"""The finish-date models against hand-computed values, the automatic choice, and the
backtest on a generated five-year history (tests/support/reading_history.py): every model
beats the naive baseline."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tests.support.reading_history import generate
from vigil.reading.analytics.forecast import History, backtest, fit, run
from vigil.reading.analytics.predict import (
    contextual,
    daily_pages,
    finish_at_rate,
    simple_pace,
    speed_habit,
    targets,
    weekday_habit,
)

MONDAY = date(2026, 1, 5)  # a Monday
HOUR = 3600.0


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def floats(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_constant_rate_finish_days() -> None:
    goals = targets(floats(100, 50, 0, 1))
    assert goals.tolist() == [100, 150, 150, 151]
    # 50 pages a day, today included: 100 pages are done tomorrow (day 1), 150 on day 2.
    assert finish_at_rate(50.0, goals).tolist() == [1, 2, 2, 3]
    assert finish_at_rate(50.0, targets(floats(0))).tolist() == [0]  # nothing left: today
    assert finish_at_rate(0.0, goals).tolist() == [-1, -1, -1, -1]


def test_simple_pace_is_pages_over_calendar_days() -> None:
    d = MONDAY.toordinal()
    starts, ends = ints(d, d + 10), ints(d + 9, d + 19)
    pages = floats(300, 200)
    # 500 pages over the 20 days from the first start to the last finish.
    assert simple_pace(starts, ends, pages, d + 30) == pytest.approx(25.0)
    # Known at day d + 15: only the first book (300 pages in 10 days).
    assert simple_pace(starts, ends, pages, d + 15) == pytest.approx(30.0)
    assert simple_pace(starts, ends, pages, d) is None
    # Only the last year counts when there is one: an old book is left out.
    old = ints(d - 800, d)
    assert simple_pace(old, ints(d - 790, d + 19), floats(1000, 200), d + 30) == pytest.approx(10.0)


def test_speed_times_habit() -> None:
    t0 = 1_767_600_000.0  # 2026-01-05 08:00 UTC
    starts = floats(t0, t0 + 2 * 86_400)
    found = speed_habit(starts, floats(HOUR, HOUR), floats(40, 40), t0 + 10 * 86_400)
    assert found is not None
    assert found.pages_per_hour == pytest.approx(40.0)
    assert found.hours_per_week == pytest.approx(2.0)  # less than a week: counted as one
    assert found.daily_pages == pytest.approx(80 / 7)
    # Over four weeks: 8 hours in 4 weeks is 2 hours a week.
    four_weeks = t0 + np.arange(8) * 3.5 * 86_400
    spread = speed_habit(four_weeks, np.full(8, HOUR), np.full(8, 30.0), float("inf"))
    assert spread is not None
    assert spread.hours_per_week == pytest.approx(8 / (24.5 + 1 / 24) * 7, rel=1e-3)
    assert speed_habit(starts, floats(HOUR, HOUR), floats(40, 40), t0) is None


def test_the_weekday_walk_depends_on_the_day_it_starts() -> None:
    # Two weeks starting on a Monday: 70 pages every Monday, nothing on other days.
    history = np.zeros(14)
    history[[0, 7]] = 70.0
    habit = weekday_habit(history, MONDAY.weekday())
    assert habit is not None
    assert habit.mean.tolist() == [70, 0, 0, 0, 0, 0, 0]
    goals = targets(floats(70, 70))
    monday = contextual(habit, 0, goals)
    assert monday.finish.tolist() == [0, 7]  # today, and next Monday
    friday = contextual(habit, 4, goals)
    assert friday.finish.tolist() == [3, 10]  # the coming Monday, and the one after
    # Every resampled future is the same here, so the range is the date itself.
    assert friday.low is not None
    assert friday.high is not None
    assert friday.low.tolist() == friday.high.tolist() == [3, 10]
    # Pages already read today count: 50 of Monday's 70 are done, the rest of the book
    # (20 pages) still fits today.
    assert contextual(habit, 0, targets(floats(20)), read_today=50).finish.tolist() == [0]


def test_recent_weeks_weigh_more() -> None:
    history = np.zeros(70)
    history[0:42:7] = 10.0  # six old Mondays
    history[42::7] = 100.0  # the last four Mondays
    habit = weekday_habit(history, 0, half_life_days=14)
    assert habit is not None
    plain = (6 * 10 + 4 * 100) / 10
    assert habit.mean[0] > plain + 20
    assert habit.mean[1] == 0


def test_daily_pages_adds_sessions_per_day() -> None:
    out = daily_pages(ints(0, 0, 2, 9), floats(5, 7, 3, 1), 4)
    assert out.tolist() == [12, 0, 3, 0]  # day 9 is outside


def _history(days: int, with_sessions: bool, with_log: bool) -> History:
    d = MONDAY.toordinal()
    empty = History.empty()
    log = (
        (ints(d - 30), ints(d - 1), floats(300))
        if with_log
        else (empty.log_start,) * 2 + (empty.log_pages,)
    )
    if not with_sessions:
        return History(*log, empty.start, empty.duration, empty.pages, empty.day)
    day = np.arange(d - days, d, dtype=np.int64)
    start = (day - date(1970, 1, 1).toordinal()) * 86_400.0 + 20 * HOUR
    return History(*log, start, np.full(days, HOUR / 2), np.full(days, 20.0), day)


def test_the_model_is_chosen_by_the_data_there_is() -> None:
    today = MONDAY.toordinal()
    assert fit(History.empty(), today).choice()[0] is None
    assert fit(_history(0, False, True), today).choice()[0] == "simple"
    speed = fit(_history(10, True, True), today)
    name, reason = speed.choice()
    assert name == "speed"
    assert "40 pages/hour" in reason
    assert fit(_history(60, True, False), today).choice()[0] == "contextual"
    forecast = run(speed, "speed", today, floats(100))
    assert forecast is not None
    assert forecast.finish.tolist() == [int(np.ceil(100 / (40 * 3.5 / 7))) - 1]


def test_every_model_beats_the_naive_baseline_on_a_generated_history() -> None:
    g = generate(years=2, sessions=4_000)
    result = backtest(g.history, g.started, g.finished, g.book_pages)
    assert result.books > 100
    for model in ("simple", "speed", "contextual"):
        assert result.mae_days[model] < result.mae_days["baseline"], result


def test_a_live_prediction_learns_from_todays_session_the_backtest_does_not() -> None:
    today = MONDAY.toordinal()
    start = (today - date(1970, 1, 1).toordinal()) * 86_400.0 + 8 * HOUR
    h = History.empty()
    session_today = History(
        h.log_start, h.log_end, h.log_pages, floats(start), floats(HOUR), floats(30), ints(today)
    )
    assert fit(session_today, today).speed is None  # what was known at the start of today
    live = fit(session_today, today, with_today=True)
    assert live.speed is not None
    assert live.speed.pages_per_hour == pytest.approx(30.0)
    assert live.habit is None  # today is not over: no weekday habit from it
