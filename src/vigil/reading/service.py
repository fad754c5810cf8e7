"""Reading operations. The API and the CLI call only this; it flushes, the caller commits.

**Ownership.** Every function that touches a user's list, log or sessions takes the caller's
``user_id`` and puts it in every query: another user's row is simply not found (404, the
same answer as an id that does not exist, so ids reveal nothing), whatever the caller's role.
The shared ``books`` catalogue holds only what the sources published.

Every create, update and delete writes an audit row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from vigil.core.auth import audit
from vigil.core.auth.models import User
from vigil.core.problems import BadRequest, Conflict, NotFound
from vigil.reading import goodreads
from vigil.reading.models import Book, ListEntry, LogEntry, ReadingSession, Status
from vigil.reading.sources.base import BookHit

ENTRY = "reading.list_entry"
LOG = "reading.log_entry"
SESSION = "reading.session"
ENTRY_FIELDS = ("book_id", "status", "position", "current_page", "page_count_override")
LOG_FIELDS = ("book_id", "started_on", "finished_on", "pages")
SESSION_FIELDS = ("book_id", "start_time", "end_time", "start_page", "end_page", "pages_read")

#: Status changes a user may make; the rest is refused with a 422 that says what to do.
TRANSITIONS = {
    Status.TBR: {Status.READING, Status.FINISHED},
    Status.READING: {Status.TBR, Status.FINISHED},
    Status.FINISHED: {Status.READING},  # a re-read
}


def _now() -> datetime:
    return datetime.now(UTC)


def lock_user(session: Session, user_id: int) -> None:
    """Serialises one user's writes (PostgreSQL row lock; SQLite writes are serial already),
    so two devices cannot both pass the one-open-session or the overlap check."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update())


# --- books --------------------------------------------------------------------------------


def upsert_book(session: Session, hit: BookHit, now: datetime | None = None) -> Book:
    """The catalogue row of a source's book: created, or refreshed with what it says now."""
    now = now or _now()
    column = Book.google_book_id if hit.source == "google_books" else Book.open_library_key
    book = session.scalar(select(Book).where(column == hit.source_id))
    if book is None:
        book = Book(source=hit.source, created_at=now)
        if hit.source == "google_books":
            book.google_book_id = hit.source_id
        else:
            book.open_library_key = hit.source_id
        session.add(book)
    book.title = hit.title[:500]
    book.author = ", ".join(hit.authors)[:500]
    book.page_count = hit.page_count
    book.isbn13 = hit.isbn13
    book.cover_url = hit.cover_url[:1000] if hit.cover_url else None
    book.updated_at = now
    session.flush()
    return book


def effective_pages(entry: ListEntry, book: Book) -> int | None:
    """The user's page count for the book, else the source's (None: unknown)."""
    return entry.page_count_override or book.page_count


# --- the list -----------------------------------------------------------------------------


def _owned_entries(user_id: int) -> Select[ListEntry, Book]:
    """The user's list entries with their books: every list query starts here."""
    return (
        select(ListEntry, Book)
        .join(Book, Book.id == ListEntry.book_id)
        .where(ListEntry.user_id == user_id)
    )


def _entry_row(session: Session, user_id: int, entry_id: int) -> tuple[ListEntry, Book]:
    row = session.execute(_owned_entries(user_id).where(ListEntry.id == entry_id)).first()
    if row is None:
        raise NotFound(f"No book {entry_id} on your list; GET /api/v1/reading/list lists them.")
    return row[0], row[1]


def get_entry(session: Session, user_id: int, entry_id: int) -> tuple[ListEntry, Book]:
    return _entry_row(session, user_id, entry_id)


def list_entries(
    session: Session, user_id: int, status: str | None = None
) -> list[tuple[ListEntry, Book]]:
    stmt = _owned_entries(user_id)
    if status is not None:
        stmt = stmt.where(ListEntry.status == status)
    rows = session.execute(stmt.order_by(ListEntry.position, ListEntry.id)).all()
    return [(entry, book) for entry, book in rows]


def add_to_list(
    session: Session, user_id: int, book: Book, status: str = Status.TBR, current_page: int = 0
) -> ListEntry:
    lock_user(session, user_id)
    taken = session.scalar(
        select(ListEntry.id).where(ListEntry.user_id == user_id, ListEntry.book_id == book.id)
    )
    if taken is not None:
        raise Conflict(f"'{book.title}' is already on your list (entry {taken}).", entry_id=taken)
    last = session.scalar(select(func.max(ListEntry.position)).where(ListEntry.user_id == user_id))
    now = _now()
    entry = ListEntry(
        user_id=user_id,
        book_id=book.id,
        status=status,
        position=(last or 0) + 1,
        current_page=current_page,
        added_at=now,
        updated_at=now,
    )
    session.add(entry)
    session.flush()
    audit.record(session, "create", ENTRY, entry.id, after=audit.snapshot(entry, ENTRY_FIELDS))
    return entry


_UNSET: Any = object()


@dataclass(frozen=True)
class EntryChanges:
    status: str | None = None
    current_page: int | None = None
    #: The user's page count; None clears it (back to the source's), _UNSET leaves it.
    page_count: int | None = _UNSET
    position: int | None = None


def _check_page(page: int, pages: int | None) -> None:
    if pages is not None and page > pages:
        raise BadRequest(
            f"page {page} is past the end of the book ({pages} pages); if the book is longer, "
            "correct its page count first (PATCH with page_count)"
        )


def update_entry(
    session: Session, user_id: int, entry_id: int, changes: EntryChanges
) -> tuple[ListEntry, Book]:
    lock_user(session, user_id)
    entry, book = _entry_row(session, user_id, entry_id)
    before = audit.snapshot(entry, ENTRY_FIELDS)
    if changes.page_count is not _UNSET:
        entry.page_count_override = changes.page_count
    pages = effective_pages(entry, book)
    if changes.status is not None and changes.status != entry.status:
        if changes.status not in TRANSITIONS[entry.status]:
            raise BadRequest(
                f"a {entry.status} book cannot go to {changes.status}: a finished book goes "
                "back to 'reading' to read it again, or is deleted from the list"
            )
        if changes.status == Status.FINISHED and pages is not None:
            entry.current_page = pages
        if entry.status == Status.FINISHED:  # a re-read starts from the beginning
            entry.current_page = 0
        entry.status = changes.status
    if changes.current_page is not None:
        _check_page(changes.current_page, pages)
        entry.current_page = changes.current_page
    else:
        _check_page(entry.current_page, pages)
    if changes.position is not None:
        entry.position = changes.position
    entry.updated_at = _now()
    session.flush()
    after = audit.snapshot(entry, ENTRY_FIELDS)
    if after != before:
        audit.record(session, "update", ENTRY, entry.id, before=before, after=after)
    return entry, book


def remove_entry(session: Session, user_id: int, entry_id: int) -> None:
    """Takes the book off the list; its log and sessions stay (they are the history the
    predictions learn from)."""
    entry, _ = _entry_row(session, user_id, entry_id)
    before = audit.snapshot(entry, ENTRY_FIELDS)
    session.delete(entry)
    session.flush()
    audit.record(session, "delete", ENTRY, entry_id, before=before)


# --- simple log ---------------------------------------------------------------------------


def add_log(
    session: Session,
    user_id: int,
    entry_id: int,
    started_on: date,
    finished_on: date,
    today: date,
) -> LogEntry:
    """Simple mode: the book was read from ``started_on`` to ``finished_on``; it is marked
    finished on the list."""
    if finished_on < started_on:
        raise BadRequest(f"finished_on ({finished_on}) is before started_on ({started_on})")
    if finished_on > today:
        raise BadRequest(f"finished_on ({finished_on}) is in the future (today is {today})")
    lock_user(session, user_id)
    entry, book = _entry_row(session, user_id, entry_id)
    pages = effective_pages(entry, book)
    if pages is None:
        raise BadRequest(
            f"'{book.title}' has no page count: set yours first (PATCH "
            f"/api/v1/reading/list/{entry_id} with page_count)"
        )
    row = LogEntry(
        user_id=user_id,
        book_id=book.id,
        started_on=started_on,
        finished_on=finished_on,
        pages=pages,
        created_at=_now(),
    )
    session.add(row)
    session.flush()
    audit.record(session, "create", LOG, row.id, after=audit.snapshot(row, LOG_FIELDS))
    if entry.status != Status.FINISHED:
        update_entry(session, user_id, entry_id, EntryChanges(status=Status.FINISHED))
    return row


def list_log(session: Session, user_id: int) -> list[tuple[LogEntry, Book]]:
    rows = session.execute(
        select(LogEntry, Book)
        .join(Book, Book.id == LogEntry.book_id)
        .where(LogEntry.user_id == user_id)
        .order_by(LogEntry.finished_on.desc(), LogEntry.id.desc())
    ).all()
    return [(row, book) for row, book in rows]


def delete_log(session: Session, user_id: int, log_id: int) -> None:
    row = session.scalar(select(LogEntry).where(LogEntry.id == log_id, LogEntry.user_id == user_id))
    if row is None:
        raise NotFound(f"No log entry {log_id} of yours; GET /api/v1/reading/log lists them.")
    before = audit.snapshot(row, LOG_FIELDS)
    session.delete(row)
    session.flush()
    audit.record(session, "delete", LOG, log_id, before=before)


# --- timed sessions -----------------------------------------------------------------------


def open_session(session: Session, user_id: int) -> ReadingSession | None:
    return session.scalar(
        select(ReadingSession).where(
            ReadingSession.user_id == user_id, ReadingSession.end_time.is_(None)
        )
    )


def _check_free(session: Session, user_id: int, start: datetime, end: datetime) -> None:
    """Refuses a session overlapping another of the user's (a running one runs on)."""
    clash = session.scalar(
        select(ReadingSession)
        .where(
            ReadingSession.user_id == user_id,
            ReadingSession.start_time < end,
            or_(ReadingSession.end_time.is_(None), ReadingSession.end_time > start),
        )
        .limit(1)
    )
    if clash is not None:
        until = clash.end_time.isoformat() if clash.end_time else "now (still running)"
        raise Conflict(
            f"this session overlaps your session {clash.id} "
            f"({clash.start_time.isoformat()} to {until}); sessions cannot overlap",
            session_id=clash.id,
        )


def _pages(
    start_page: int, pages_read: int | None, end_page: int | None, book_pages: int | None
) -> tuple[int, int]:
    """(pages read, page reached) from either of them."""
    if (pages_read is None) == (end_page is None):
        raise BadRequest("give either pages_read or end_page (the page you reached), not both")
    if end_page is not None:
        if end_page < start_page:
            raise BadRequest(
                f"end_page {end_page} is before the page the session started at ({start_page})"
            )
        pages_read = end_page - start_page
    assert pages_read is not None
    reached = start_page + pages_read
    _check_page(reached, book_pages)
    return pages_read, reached


def start_session(session: Session, user_id: int, entry_id: int, now: datetime) -> ReadingSession:
    """Starts the timer: ``start_time`` is the server's clock, stored at once."""
    lock_user(session, user_id)
    entry, book = _entry_row(session, user_id, entry_id)
    running = open_session(session, user_id)
    if running is not None:
        raise Conflict(
            f"a session is already running (session {running.id}, started "
            f"{running.start_time.isoformat()}): stop it first",
            session_id=running.id,
        )
    _check_free(session, user_id, now, now)
    row = ReadingSession(
        user_id=user_id,
        book_id=book.id,
        start_time=now,
        start_page=entry.current_page,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, "create", SESSION, row.id, after=audit.snapshot(row, SESSION_FIELDS))
    if entry.status == Status.TBR:
        update_entry(session, user_id, entry_id, EntryChanges(status=Status.READING))
    return row


def entry_of_book(session: Session, user_id: int, book_id: int) -> tuple[ListEntry, Book] | None:
    """The user's list entry of a book (a session names its book, not the entry)."""
    row = session.execute(_owned_entries(user_id).where(ListEntry.book_id == book_id)).first()
    return (row[0], row[1]) if row is not None else None


def stop_session(
    session: Session,
    user_id: int,
    now: datetime,
    *,
    pages_read: int | None = None,
    end_page: int | None = None,
    end_time: datetime | None = None,
) -> ReadingSession:
    """Stops the running timer (at ``end_time``, default now) with the pages read or the
    page reached; the book's current page moves on."""
    lock_user(session, user_id)
    row = open_session(session, user_id)
    if row is None:
        raise Conflict("no session is running: start one first (POST .../sessions/start)")
    end = end_time or now
    if end > now:
        raise BadRequest("end_time is in the future")
    if end <= row.start_time:
        raise BadRequest(
            f"end_time ({end.isoformat()}) must be after the start ({row.start_time.isoformat()})"
        )
    found = entry_of_book(session, user_id, row.book_id)
    book_pages = effective_pages(*found) if found else None
    before = audit.snapshot(row, SESSION_FIELDS)
    read, reached = _pages(row.start_page or 0, pages_read, end_page, book_pages)
    row.end_time, row.pages_read, row.end_page = end, read, reached
    session.flush()
    audit.record(
        session, "update", SESSION, row.id, before=before, after=audit.snapshot(row, SESSION_FIELDS)
    )
    if found is not None:
        update_entry(session, user_id, found[0].id, EntryChanges(current_page=reached))
    return row


def add_session(
    session: Session,
    user_id: int,
    entry_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    pages_read: int | None = None,
    end_page: int | None = None,
    start_page: int | None = None,
) -> ReadingSession:
    """A past session typed in by hand. It does not move the current page (it may be old)."""
    if end <= start:
        raise BadRequest(f"end_time ({end.isoformat()}) must be after start_time")
    if end > now:
        raise BadRequest("end_time is in the future: a session entered by hand is a past one")
    lock_user(session, user_id)
    entry, book = _entry_row(session, user_id, entry_id)
    _check_free(session, user_id, start, end)
    first = start_page if start_page is not None else 0
    if end_page is not None and start_page is None:
        raise BadRequest("with end_page, also give start_page (the page the session began at)")
    read, reached = _pages(first, pages_read, end_page, effective_pages(entry, book))
    row = ReadingSession(
        user_id=user_id,
        book_id=book.id,
        start_time=start,
        end_time=end,
        start_page=start_page,
        end_page=reached if start_page is not None else None,
        pages_read=read,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, "create", SESSION, row.id, after=audit.snapshot(row, SESSION_FIELDS))
    return row


def list_sessions(
    session: Session, user_id: int, entry_id: int | None, limit: int, offset: int
) -> tuple[Sequence[ReadingSession], int]:
    stmt = select(ReadingSession).where(ReadingSession.user_id == user_id)
    if entry_id is not None:
        entry, _ = _entry_row(session, user_id, entry_id)
        stmt = stmt.where(ReadingSession.book_id == entry.book_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(ReadingSession.start_time.desc()).limit(limit).offset(offset)
    ).all()
    return rows, total


def delete_session(session: Session, user_id: int, session_id: int) -> None:
    row = session.scalar(
        select(ReadingSession).where(
            ReadingSession.id == session_id, ReadingSession.user_id == user_id
        )
    )
    if row is None:
        raise NotFound(
            f"No session {session_id} of yours; GET /api/v1/reading/sessions lists them."
        )
    before = audit.snapshot(row, SESSION_FIELDS)
    session.delete(row)
    session.flush()
    audit.record(session, "delete", SESSION, session_id, before=before)


# --- Goodreads import ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    rows: int
    added: int
    already: int
    logged: int
    refused: list[tuple[int, str, str]]  # (line, title, why)


def _goodreads_book(session: Session, row: goodreads.Row, now: datetime) -> Book:
    """The catalogue's book with the row's ISBN-13, else the same title and author imported
    before, else a new book described by the export."""
    if row.isbn13 is not None:
        found = session.scalar(select(Book).where(Book.isbn13 == row.isbn13).limit(1))
        if found is not None:
            return found
    found = session.scalar(
        select(Book)
        .where(Book.source == "goodreads", Book.title == row.title, Book.author == row.author)
        .limit(1)
    )
    if found is not None:
        return found
    book = Book(
        title=row.title,
        author=row.author,
        page_count=row.pages,
        isbn13=row.isbn13,
        source="goodreads",
        created_at=now,
        updated_at=now,
    )
    session.add(book)
    session.flush()
    return book


def import_goodreads(session: Session, user_id: int, content: str, today: date) -> ImportReport:
    """Puts the export's books on the user's list with their shelf's status, and logs the
    books read that have both dates; books already listed are left as they are."""
    rows, refused = goodreads.parse(content)
    report = [(r.line, r.title, r.reason) for r in refused]
    lock_user(session, user_id)
    now = _now()
    added = already = logged = 0
    for row in rows:
        if row.finished and row.finished > today:
            report.append((row.line, row.title, f"Date Read {row.finished} is in the future"))
            continue
        book = _goodreads_book(session, row, now)
        listed = session.scalar(
            select(ListEntry.id).where(ListEntry.user_id == user_id, ListEntry.book_id == book.id)
        )
        if listed is not None:
            already += 1
            continue
        finished = row.status == Status.FINISHED
        add_to_list(session, user_id, book, row.status, (book.page_count or 0) if finished else 0)
        added += 1
        if row.status == Status.FINISHED and row.started and row.finished and book.page_count:
            log_row = LogEntry(
                user_id=user_id,
                book_id=book.id,
                started_on=row.started,
                finished_on=row.finished,
                pages=book.page_count,
                created_at=now,
            )
            session.add(log_row)
            session.flush()
            audit.record(
                session, "create", LOG, log_row.id, after=audit.snapshot(log_row, LOG_FIELDS)
            )
            logged += 1
    session.flush()
    return ImportReport(len(rows) + len(refused), added, already, logged, sorted(report))
