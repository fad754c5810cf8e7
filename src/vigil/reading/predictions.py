"""Finish-date predictions for one user: their history and list read from the database
(scoped to them), the models of ``analytics`` run over it, the answer put in dates.

The list is read in order: the books being read first, then the pile (by position). Books
without a page count (neither the source's nor the user's) cannot be predicted and are
named in ``unknown_pages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from vigil.reading.analytics.forecast import MODELS, History, Models, fit, run
from vigil.reading.analytics.predict import Forecast
from vigil.reading.models import Book, ListEntry, LogEntry, ReadingSession, Status

#: Sessions older than this before the latest one are not read for a prediction (the speed
#: and weekday models look at 84 and 182 days).
SESSION_WINDOW_DAYS = 200


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
    stmt = select(
        ReadingSession.start_time, ReadingSession.end_time, ReadingSession.pages_read
    ).where(
        ReadingSession.user_id == user_id,
        ReadingSession.end_time.is_not(None),
        ReadingSession.pages_read.is_not(None),
    )
    if window_days is not None:
        latest = session.scalar(
            select(func.max(ReadingSession.start_time)).where(ReadingSession.user_id == user_id)
        )
        if latest is not None:
            stmt = stmt.where(ReadingSession.start_time >= latest - timedelta(days=window_days))
    rows = session.execute(stmt).all()
    starts = np.array([r[0].timestamp() for r in rows], dtype=np.float64)
    ends = np.array([r[1].timestamp() for r in rows if r[1] is not None], dtype=np.float64)
    days = np.array([r[0].astimezone(tz).date().toordinal() for r in rows], dtype=np.int64)
    return History(
        np.array([r[0].toordinal() for r in log], dtype=np.int64),
        np.array([r[1].toordinal() for r in log], dtype=np.int64),
        np.array([r[2] for r in log], dtype=np.float64),
        starts,
        ends - starts,
        np.array([r[2] for r in rows], dtype=np.float64),
        days,
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
