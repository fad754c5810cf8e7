"""A generated multi-year reading history for the backtest, its test and the benchmarks:
one reader, ``years`` years up to ``today``, exactly ``sessions`` timed sessions, books
read one after another, and ``tbr`` books waiting on the list.

The reader has a weekday habit (more and longer sessions at the weekend), a speed that
drifts slowly (35-50 pages/hour), slow swings in how much they read (busy and quiet months)
and noise everywhere; book lengths vary from 120 to 900 pages. Seeded: the same arguments
give the same history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from vigil.reading.analytics.forecast import History
from vigil.reading.models import Book, ListEntry, LogEntry, ReadingSession

#: Relative number of sessions per weekday (Monday first): the weekend reads most.
WEEKDAY_SESSIONS = np.array([0.8, 0.8, 0.7, 0.9, 0.8, 1.6, 1.9])
#: Typical session length per weekday, minutes.
WEEKDAY_MINUTES = np.array([14, 14, 12, 15, 13, 28, 32], dtype=np.float64)


@dataclass(frozen=True)
class Generated:
    today: date
    history: History  # every session and the log of finished books
    started: np.ndarray  # finished books: start day (ordinal) …
    finished: np.ndarray  # … finish day …
    book_pages: np.ndarray  # … and pages
    session_book: np.ndarray  # the finished book (index) each session belongs to, -1: the last
    starts_utc: list[datetime]
    tbr_pages: np.ndarray  # the list still to read


def generate(
    years: int = 5, sessions: int = 10_000, tbr: int = 200, today: date | None = None, seed: int = 8
) -> Generated:
    rng = np.random.default_rng(seed)
    today = today or date(2026, 11, 26)
    first = today - timedelta(days=365 * years)
    days = (today - first).days
    ordinals = first.toordinal() + np.arange(days)
    weekdays = np.array([date.fromordinal(int(o)).weekday() for o in ordinals])
    swing = 1.0 + 0.45 * np.sin(np.arange(days) / 58.0) + 0.2 * np.sin(np.arange(days) / 17.0)
    weight = WEEKDAY_SESSIONS[weekdays] * np.clip(swing, 0.1, None)
    day_of = np.sort(rng.choice(days, size=sessions, p=weight / weight.sum()))
    minutes = WEEKDAY_MINUTES[weekdays[day_of]] * rng.lognormal(0.0, 0.35, sessions)
    speed = 42 + 7 * np.sin(day_of / 300.0) + rng.normal(0, 4, sessions)  # pages/hour
    pages = np.maximum(1, np.round(speed * minutes / 60.0))
    hour = rng.uniform(7, 22, sessions)
    starts = [
        datetime.combine(date.fromordinal(int(ordinals[d])), datetime.min.time(), UTC)
        + timedelta(hours=float(h))
        for d, h in zip(day_of, hour, strict=True)
    ]
    # Books one after another: a session's pages go to the current book; the book is
    # finished by the session that reaches its length.
    lengths = rng.integers(120, 900, size=sessions)  # more than enough books
    book, left, began = 0, int(lengths[0]), int(ordinals[day_of[0]])
    started, finished, sizes = [], [], []
    session_book = np.empty(sessions, dtype=np.int64)
    for i in range(sessions):
        session_book[i] = book
        left -= int(pages[i])
        if left <= 0:
            pages[i] += left  # only what the book had left
            day = int(ordinals[day_of[i]])
            started.append(began)
            finished.append(day)
            sizes.append(int(lengths[book]))
            book += 1
            left = int(lengths[book])
            began = int(ordinals[day_of[i + 1]]) if i + 1 < sessions else day
    session_book[session_book >= len(sizes)] = -1
    start_s = np.array([s.timestamp() for s in starts])
    history = History(
        np.array(started, dtype=np.int64),
        np.array(finished, dtype=np.int64),
        np.array(sizes, dtype=np.float64),
        start_s,
        minutes * 60.0,
        pages.astype(np.float64),
        ordinals[day_of].astype(np.int64),
    )
    return Generated(
        today,
        history,
        np.array(started, dtype=np.int64),
        np.array(finished, dtype=np.int64),
        np.array(sizes, dtype=np.float64),
        session_book,
        starts,
        rng.integers(120, 900, size=tbr).astype(np.float64),
    )


def seed(session: Session, user_id: int, g: Generated) -> None:
    """Stores the generated history as the user's: a book per finished book (with its log
    row and sessions) and per book on the pile (a TBR list entry)."""
    now = datetime.now(UTC)
    finished, waiting = len(g.book_pages), len(g.tbr_pages)
    sizes = [*g.book_pages.tolist(), *g.tbr_pages.tolist()]
    session.execute(
        insert(Book),
        [
            {"google_book_id": f"gen-{user_id}-{i}", "title": f"Generated book {i}",
             "author": "A. Writer", "page_count": int(p), "source": "google_books",
             "created_at": now, "updated_at": now}
            for i, p in enumerate(sizes)
        ],
    )  # fmt: skip
    ids = dict(
        session.execute(
            select(Book.google_book_id, Book.id).where(Book.google_book_id.like(f"gen-{user_id}-%"))
        ).all()
    )
    book_id = [ids[f"gen-{user_id}-{i}"] for i in range(len(sizes))]
    session.execute(
        insert(ListEntry),
        [
            {"user_id": user_id, "book_id": book_id[i],
             "status": "finished" if i < finished else "tbr", "position": i + 1,
             "current_page": int(sizes[i]) if i < finished else 0, "added_at": now,
             "updated_at": now}
            for i in range(finished + waiting)
        ],
    )  # fmt: skip
    session.execute(
        insert(LogEntry),
        [
            {"user_id": user_id, "book_id": book_id[i],
             "started_on": date.fromordinal(int(g.started[i])),
             "finished_on": date.fromordinal(int(g.finished[i])), "pages": int(g.book_pages[i]),
             "created_at": now}
            for i in range(finished)
        ],
    )  # fmt: skip
    last = book_id[finished] if waiting else book_id[-1]
    h = g.history
    session.execute(
        insert(ReadingSession),
        [
            {"user_id": user_id,
             "book_id": book_id[int(b)] if b >= 0 else last,
             "start_time": start, "end_time": start + timedelta(seconds=float(h.duration[i])),
             "pages_read": int(h.pages[i]), "created_at": now}
            for i, (start, b) in enumerate(zip(g.starts_utc, g.session_book, strict=True))
        ],
    )  # fmt: skip
