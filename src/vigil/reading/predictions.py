"""Finish-date predictions for one user: their history and list read from the database
(scoped to them), the models of ``analytics`` run over it, the answer put in dates.

The list is read in order: the books being read first, then the pile (by position). Books
without a page count (neither the source's nor the user's) cannot be predicted and are
named in ``unknown_pages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import ColumnElement, Interval, case, func, literal, select
from sqlalchemy.orm import Session

from vigil.reading.analytics.forecast import MODELS, History, Models, fit, run
from vigil.reading.analytics.predict import Floats, Forecast, Ints
from vigil.reading.models import Book, ListEntry, LogEntry, ReadingSession, Status

#: Sessions older than this before the latest one are not read for a prediction (the speed
#: and weekday models look at 84 and 182 days).
SESSION_WINDOW_DAYS = 200
DAY_SECONDS = 86_400.0
_UNIX_JULIAN_DAY = 2_440_587.5  # julianday('1970-01-01')
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def epoch_seconds(column: Any, dialect: str) -> ColumnElement[float]:
    """A UTC timestamp column as seconds since the epoch, computed by the database: a float
    is far cheaper to fetch than a datetime (no parsing, no timezone object per value)."""
    if dialect == "postgresql":
        return func.date_part("epoch", column)  # double precision
    # SQLite keeps UTC text; julianday() reads it (double precision: ~50 us at today's dates).
    seconds: ColumnElement[float] = (func.julianday(column) - _UNIX_JULIAN_DAY) * DAY_SECONDS
    return seconds


def local_seconds(seconds: Floats, tz: ZoneInfo) -> Floats:
    """Epoch seconds moved by the UTC offset ``tz`` has at each of them (the local wall
    clock as seconds since 1970-01-01 00:00), vectorised: the zone's offset is looked up
    once a day over the span (and its changes pinned to the second by bisection), not once
    per instant."""
    if len(seconds) == 0:
        return np.zeros(0, dtype=np.float64)
    day = int(DAY_SECONDS)
    first = int(np.floor(seconds.min() / DAY_SECONDS)) * day
    last = int(seconds.max())

    def offset(at: int) -> float:
        shift = datetime.fromtimestamp(at, tz).utcoffset()
        return shift.total_seconds() if shift is not None else 0.0

    changes, offsets = [float("-inf")], [offset(first)]
    for at in range(first + day, last + 2 * day, day):
        now = offset(at)
        if now != offsets[-1]:
            low, high = at - day, at  # offset(low) is the old one
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == offsets[-1] else (low, middle)
            changes.append(float(high))
            offsets.append(now)
    which = np.searchsorted(np.array(changes), seconds, side="right") - 1
    local: Floats = seconds + np.array(offsets)[which]
    return local


def local_days(seconds: Floats, tz: ZoneInfo) -> Ints:
    """The day ordinals (``date.toordinal()``) of instants (epoch seconds) in ``tz``."""
    days: Ints = np.floor(local_seconds(seconds, tz) / DAY_SECONDS).astype(np.int64) + EPOCH_ORDINAL
    return days


def _window_start(user_id: int, days: int, dialect: str) -> ColumnElement[Any]:
    """``days`` before the user's latest session start, computed by the database."""
    latest = (
        select(func.max(ReadingSession.start_time))
        .where(ReadingSession.user_id == user_id)
        .scalar_subquery()
    )
    if dialect == "postgresql":
        return latest - literal(timedelta(days=days), Interval())
    # SQLite: the UTC text form, which compares in time order with the stored one.
    start: ColumnElement[Any] = func.datetime(latest, f"-{int(days)} days")
    return start


def timed_sessions(
    session: Session, user_id: int, since: datetime | ColumnElement[Any] | None = None
) -> tuple[Floats, Floats, Floats]:
    """The user's finished sessions that started at or after ``since`` (an instant or an SQL
    expression; None: all) as three arrays: start and duration in seconds, pages read.
    Only those columns are read, the instants as epoch seconds (see ``epoch_seconds``)."""
    dialect = session.get_bind().dialect.name
    start = epoch_seconds(ReadingSession.start_time, dialect)
    end = epoch_seconds(ReadingSession.end_time, dialect)
    stmt = select(start, end - start, ReadingSession.pages_read).where(
        ReadingSession.user_id == user_id,
        ReadingSession.end_time.is_not(None),
        ReadingSession.pages_read.is_not(None),
    )
    if since is not None:
        stmt = stmt.where(ReadingSession.start_time >= since)
    found = session.execute(stmt).all()
    # np.fromiter over the values: np.array() on Row objects probes each for attributes.
    flat = chain.from_iterable(found)
    rows = np.fromiter(flat, dtype=np.float64, count=3 * len(found)).reshape(-1, 3)
    return rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()


def load_history(
    session: Session, user_id: int, tz: ZoneInfo, window_days: int | None = SESSION_WINDOW_DAYS
) -> History:
    """The user's log and finished sessions (the last ``window_days`` of sessions up to the
    latest; all with None), as arrays in the user's calendar."""
    log = session.execute(
        select(LogEntry.started_on, LogEntry.finished_on, LogEntry.pages).where(
            LogEntry.user_id == user_id
        )
    ).all()
    dialect = session.get_bind().dialect.name
    # The window's start is a subquery of the same statement: one round trip fewer.
    since = _window_start(user_id, window_days, dialect) if window_days is not None else None
    starts, durations, pages = timed_sessions(session, user_id, since)
    return History(
        np.array([r[0].toordinal() for r in log], dtype=np.int64),
        np.array([r[1].toordinal() for r in log], dtype=np.int64),
        np.array([r[2] for r in log], dtype=np.float64),
        starts,
        durations,
        pages,
        local_days(starts, tz),
    )


@dataclass(frozen=True)
class Queued:
    entry_id: int
    title: str
    status: str
    pages_left: int | None


def reading_queue(session: Session, user_id: int) -> list[Queued]:
    """The books still to read, in order: those being read, then the pile."""
    pages = func.coalesce(ListEntry.page_count_override, Book.page_count)
    rows = session.execute(
        select(ListEntry.id, Book.title, ListEntry.status, pages, ListEntry.current_page)
        .join(Book, Book.id == ListEntry.book_id)
        .where(ListEntry.user_id == user_id, ListEntry.status != Status.FINISHED)
        .order_by(
            case((ListEntry.status == Status.READING, 0), else_=1),
            ListEntry.position,
            ListEntry.id,
        )
    ).all()
    return [
        Queued(i, t, s, None if p is None else max(0, int(p) - int(c))) for i, t, s, p, c in rows
    ]


@dataclass(frozen=True)
class BookDates:
    entry_id: int
    title: str
    pages_left: int
    finish: date | None
    low: date | None = None
    high: date | None = None


@dataclass(frozen=True)
class ModelSummary:
    name: str
    available: bool
    pages_per_day: float | None = None
    list_finish: date | None = None
    detail: dict[str, float | list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    today: date
    timezone: str
    model: str | None
    reason: str
    pages_left: int
    books: list[BookDates]
    unknown_pages: list[Queued]
    models: list[ModelSummary]


def _on(today: date, index: int | np.integer | None) -> date | None:
    return None if index is None or index < 0 else today + timedelta(days=int(index))


def _summary(name: str, models: Models, forecast: Forecast | None, today: date) -> ModelSummary:
    if forecast is None:
        return ModelSummary(name, False)
    detail: dict[str, float | list[float]] = {}
    if name == "speed" and models.speed is not None:
        detail = {
            "pages_per_hour": round(models.speed.pages_per_hour, 2),
            "hours_per_week": round(models.speed.hours_per_week, 2),
        }
    if name == "contextual" and models.habit is not None:
        detail = {"weekday_pages": [round(float(v), 2) for v in models.habit.mean]}
    last = forecast.finish[-1] if len(forecast.finish) else 0
    return ModelSummary(name, True, round(forecast.daily_pages, 2), _on(today, last), detail)


def predict(
    session: Session, user_id: int, tz: ZoneInfo, now: datetime, model: str = "auto"
) -> Prediction:
    today = now.astimezone(tz).date()
    day = today.toordinal()
    history = load_history(session, user_id, tz)
    queue = reading_queue(session, user_id)
    known = [q for q in queue if q.pages_left is not None]
    pages = np.array([q.pages_left for q in known], dtype=np.float64)
    read_today = float(history.pages[history.day == day].sum())
    models = fit(history, day, with_today=True)
    chosen, reason = models.choice()
    if model != "auto":
        chosen, reason = model, f"asked for the {model} model"
    forecasts = {name: run(models, name, day, pages, read_today) for name in MODELS}
    used = forecasts.get(chosen) if chosen else None
    if model != "auto" and used is None:
        reason = f"the {model} model has no data to learn from yet"
    books = [
        BookDates(
            q.entry_id,
            q.title,
            int(q.pages_left or 0),
            _on(today, used.finish[i]) if used else None,
            _on(today, used.low[i]) if used and used.low is not None else None,
            _on(today, used.high[i]) if used and used.high is not None else None,
        )
        for i, q in enumerate(known)
    ]
    return Prediction(
        today,
        str(tz),
        chosen if used else None,
        reason,
        int(pages.sum()),
        books,
        [q for q in queue if q.pages_left is None],
        [_summary(name, models, forecasts[name], today) for name in MODELS],
    )


def finished_books(session: Session, user_id: int) -> tuple[list[int], list[int], list[float]]:
    """The user's finished books for the backtest: from the log (start and finish dates)."""
    rows = session.execute(
        select(LogEntry.started_on, LogEntry.finished_on, LogEntry.pages)
        .where(LogEntry.user_id == user_id)
        .order_by(LogEntry.started_on)
    ).all()
    return (
        [r[0].toordinal() for r in rows],
        [r[1].toordinal() for r in rows],
        [float(r[2]) for r in rows],
    )
