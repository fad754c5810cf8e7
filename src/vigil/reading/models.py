"""Reading tables (migration 0007): the book catalogue, and each user's list, simple log and
timed sessions.

``books`` is shared: one row per book a source described (found by its Google Books id or
its Open Library work key), holding only what the source says. Everything a user does is in
a row of their own (``user_id``, never null): the list entry (status, current page, their
own page count when the source's is missing or wrong), the simple log (started and finished
dates) and the timed sessions. The service scopes every query by the caller's user id.

The seed's ``User_TBR_List``, ``Reading_Log`` and ``Reading_Sessions`` are ``reading_list``,
``reading_log`` and ``reading_sessions``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UTCDateTime, utcnow
from vigil.core.models import BigIntId


class Status:
    """A list entry's status: to be read, being read, finished."""

    TBR = "tbr"
    READING = "reading"
    FINISHED = "finished"
    ALL = (TBR, READING, FINISHED)


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: Google Books' volume id (the seed's natural key); None for a book only Open Library has.
    google_book_id: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    #: Open Library's work key without its prefix ("OL5738148W").
    open_library_key: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    title: Mapped[str] = mapped_column(String(500))
    author: Mapped[str] = mapped_column(String(500))  # the authors, comma-separated
    #: As the source gave it (None: unknown); a user may correct it for themselves.
    page_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    isbn13: Mapped[str | None] = mapped_column(String(13), nullable=True, index=True)
    cover_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    source: Mapped[str] = mapped_column(String(20))  # google_books | open_library
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ListEntry(Base):
    """A book on a user's list (the seed's ``User_TBR_List``)."""

    __tablename__ = "reading_list"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(10))  # Status
    #: Reading order: TBR and Reading books are predicted in this order.
    position: Mapped[int] = mapped_column(Integer)
    current_page: Mapped[int] = mapped_column(Integer, default=0)
    #: The user's own page count for this book (None: the book's).
    page_count_override: Mapped[int | None] = mapped_column(Integer, nullable=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "book_id", name="uq_reading_list_user_id_book_id"),
        Index("ix_reading_list_user_id_status", "user_id", "status"),
        CheckConstraint("status IN ('tbr', 'reading', 'finished')", name="status"),
        CheckConstraint("current_page >= 0", name="current_page"),
        CheckConstraint("page_count_override > 0", name="page_count_override"),
    )


class LogEntry(Base):
    """Simple mode (the seed's ``Reading_Log``): a book read from one date to another."""

    __tablename__ = "reading_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="RESTRICT"))
    started_on: Mapped[date] = mapped_column(Date)
    finished_on: Mapped[date] = mapped_column(Date)
    #: Pages read: the book's page count (the user's, if corrected) when it was logged.
    pages: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_reading_log_user_id_finished_on", "user_id", "finished_on"),
        CheckConstraint("finished_on >= started_on", name="dates"),
        CheckConstraint("pages > 0", name="pages"),
    )


class ReadingSession(Base):
    """Exact mode (the seed's ``Reading_Sessions``): a timed stretch of reading. ``end_time``
    is None while the timer runs (at most one such session per user: a partial unique
    index)."""

    __tablename__ = "reading_sessions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="RESTRICT"))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: The page the reader was on when the session started, and the one they reached.
    start_page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    end_page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pages_read: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_reading_sessions_user_id_start_time", "user_id", "start_time"),
        Index(
            "uq_reading_sessions_open_per_user",
            "user_id",
            unique=True,
            sqlite_where=text("end_time IS NULL"),
            postgresql_where=text("end_time IS NULL"),
        ),
        CheckConstraint("end_time IS NULL OR end_time > start_time", name="times"),
        CheckConstraint("pages_read >= 0", name="pages_read"),
    )
