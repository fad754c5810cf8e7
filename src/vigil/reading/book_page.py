"""A book's page, /reading/books/{entry_id} (signed in, ``reading.own``; the caller's own
list entry only: another user's id is a 404 like an id that does not exist).

It shows the book (cover, pages, progress, its predicted finish), the timer (start; stop
with the pages read or the page reached; the elapsed time ticks in the browser from the
``start_time`` the server stored), the form for a past session, the session history
(newest first, each deletable), the simple log of the book, and forms for its status, its
current page and the reader's own page count. Every form is a plain POST with the CSRF
token that calls the service as the JSON API does and redirects back here with a flash
message: the service's own message when it refuses (a second running session, an overlap,
negative pages, an end before the start)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.core.deps import runtime as runtime_dep
from vigil.core.problems import BadRequest, Conflict, Problem
from vigil.core.runtime import Runtime
from vigil.core.web import flash, render
from vigil.reading import predictions, service
from vigil.reading.api import MAX_ID, Owner, entry_out
from vigil.reading.models import ReadingSession, Status
from vigil.reading.predictions import epoch_seconds

router = APIRouter(prefix="/books", include_in_schema=False)  # under /reading (web.py)
RuntimeDep = Annotated[Runtime, Depends(runtime_dep)]
EntryId = Annotated[int, Path(ge=1, le=MAX_ID)]
#: Optional whole numbers typed into a form ("" when left empty).
FormNumber = Annotated[str, Form(max_length=12)]
HISTORY_ROWS = 200
STATUS_NAMES = {Status.TBR: "To be read", Status.READING: "Reading", Status.FINISHED: "Finished"}


def book_path(entry_id: int) -> str:
    return f"/reading/books/{entry_id}"


def _back(entry_id: int, message: str, level: str = "success") -> Response:
    return flash(RedirectResponse(book_path(entry_id), status_code=303), message, level)


def _refused(entry_id: int, exc: Problem) -> Response:
    """The service's refusal as an error flash; a book that is not the caller's (404) goes
    back to the list, since its page would be a 404 too."""
    if exc.status == 404:
        return flash(RedirectResponse("/reading", status_code=303), exc.detail, "error")
    return _back(entry_id, exc.detail, "error")


def _number(value: str, name: str) -> int | None:
    """A form's whole number, None when left empty; anything else is a clear refusal."""
    value = value.strip()
    if not value:
        return None
    if not value.isdigit():  # also refuses "-3": pages are never negative
        raise BadRequest(f"{name} must be a whole number of 0 or more (got {value!r})")
    return int(value)


def _instant(value: str, name: str, zone: ZoneInfo) -> datetime:
    """A ``datetime-local`` field (YYYY-MM-DDTHH:MM) in the reader's time zone."""
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(f"{name} must be a date and time (YYYY-MM-DDTHH:MM)") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    return local.astimezone(UTC)


def clock(elapsed: timedelta) -> str:
    """H:MM:SS, as vigil.js ticks it on (data-elapsed-since)."""
    seconds = max(0, int(elapsed.total_seconds()))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class SessionRow:
    """A history row as the page shows it."""

    id: int
    start: datetime  # local
    end: datetime | None  # local; None while running
    minutes: float | None
    pages: int | None
    start_page: int | None
    end_page: int | None

    @property
    def pages_per_hour(self) -> float | None:
        if not self.minutes or self.pages is None:
            return None
        return self.pages / (self.minutes / 60)


def _row(s: ReadingSession, zone: ZoneInfo) -> SessionRow:
    minutes = (s.end_time - s.start_time).total_seconds() / 60 if s.end_time else None
    return SessionRow(
        s.id,
        s.start_time.astimezone(zone),
        s.end_time.astimezone(zone) if s.end_time else None,
        minutes,
        s.pages_read,
        s.start_page,
        s.end_page,
    )


def _timed_totals(session: Session, user_id: int, book_id: int) -> tuple[int, float]:
    """(pages, hours) of the book's finished sessions, summed by the database."""
    dialect = session.get_bind().dialect.name
    start = epoch_seconds(ReadingSession.start_time, dialect)
    end = epoch_seconds(ReadingSession.end_time, dialect)
    pages, seconds = session.execute(
        select(
            func.coalesce(func.sum(ReadingSession.pages_read), 0),
            func.coalesce(func.sum(end - start), 0.0),
        ).where(
            ReadingSession.user_id == user_id,
            ReadingSession.book_id == book_id,
            ReadingSession.end_time.is_not(None),
        )
    ).one()
    return int(pages or 0), float(seconds or 0.0) / 3600


@router.get("/{entry_id}", response_class=HTMLResponse)
def book(request: Request, entry_id: EntryId, user: Owner, rt: RuntimeDep) -> HTMLResponse:
    zone = ZoneInfo(rt.settings.reading_timezone)
    now = datetime.now(UTC)
    with rt.db.session() as session:
        entry, book_row = service.get_entry(session, user, entry_id)
        shown = entry_out(entry, book_row)
        running = service.open_session(session, user)
        running_entry = None
        if running is not None and running.book_id != book_row.id:
            found = service.entry_of_book(session, user, running.book_id)
            running_entry = entry_out(*found) if found else None
        history, total = service.list_sessions(session, user, entry_id, HISTORY_ROWS, 0)
        rows = [_row(s, zone) for s in history]
        log = [row for row, b in service.list_log(session, user) if b.id == book_row.id]
        pages_total, hours_total = _timed_totals(session, user, book_row.id)
        forecast = predictions.predict(session, user, zone, now)
    dates = next((b for b in forecast.books if b.entry_id == entry_id), None)
    moves = service.TRANSITIONS[shown.status]
    context: dict[str, Any] = {
        "title": shown.book.title,
        "entry": shown,
        "status_name": STATUS_NAMES[shown.status],
        "moves": [(s, STATUS_NAMES[s]) for s in Status.ALL if s in moves],
        "running": running,
        "running_here": running is not None and running.book_id == book_row.id,
        "running_entry": running_entry,
        "sessions": rows,
        "sessions_total": total,
        "hours_total": hours_total,
        "pages_total": pages_total,
        "log": log,
        "dates": dates,
        "forecast": forecast,
        "zone": str(zone),
        "zone_info": zone,
        "elapsed": clock(now - running.start_time) if running is not None else "",
        "now_local": now.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "today": now.astimezone(zone).date().isoformat(),
    }
    return render(request, "reading/book.html", context)


@router.post("/{entry_id}/timer/start", response_class=HTMLResponse)
def start(entry_id: EntryId, user: Owner, rt: RuntimeDep) -> Response:
    try:
        with rt.db.session(write=True) as session:
            service.start_session(session, user, entry_id, datetime.now(UTC))
    except Problem as exc:
        return _refused(entry_id, exc)
    return _back(entry_id, "Timer started.")


@router.post("/{entry_id}/timer/stop", response_class=HTMLResponse)
def stop(
    entry_id: EntryId,
    user: Owner,
    rt: RuntimeDep,
    pages_read: FormNumber = "",
    end_page: FormNumber = "",
    end_time: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    """Stops the running timer now, or at ``end_time`` (a timer left running)."""
    zone = ZoneInfo(rt.settings.reading_timezone)
    try:
        read, reached = _number(pages_read, "pages read"), _number(end_page, "page reached")
        ended = _instant(end_time, "the end", zone) if end_time.strip() else None
        with rt.db.session(write=True) as session:
            entry, _ = service.get_entry(session, user, entry_id)
            running = service.open_session(session, user)
            if running is not None and running.book_id != entry.book_id:
                raise Conflict("the running session is on another book: stop it on its page")
            row = service.stop_session(
                session, user, datetime.now(UTC), pages_read=read, end_page=reached, end_time=ended
            )
            minutes = ((row.end_time or row.start_time) - row.start_time).total_seconds() / 60
            message = f"Session saved: {row.pages_read} pages in {minutes:.0f} minutes."
    except Problem as exc:
        return _refused(entry_id, exc)
    return _back(entry_id, message)


@router.post("/{entry_id}/sessions", response_class=HTMLResponse)
def add_past_session(
    entry_id: EntryId,
    user: Owner,
    rt: RuntimeDep,
    start_time: Annotated[str, Form(max_length=30)],
    end_time: Annotated[str, Form(max_length=30)],
    pages_read: FormNumber,
) -> Response:
    zone = ZoneInfo(rt.settings.reading_timezone)
    try:
        start_at = _instant(start_time, "the start", zone)
        end_at = _instant(end_time, "the end", zone)
        read = _number(pages_read, "pages read")
        if read is None:
            raise BadRequest("give the pages read in that session")
        with rt.db.session(write=True) as session:
            service.add_session(
                session, user, entry_id, start_at, end_at, datetime.now(UTC), pages_read=read
            )
    except Problem as exc:
        return _refused(entry_id, exc)
    return _back(entry_id, f"Past session saved: {read} pages.")


@router.post("/{entry_id}/sessions/{session_id}/delete", response_class=HTMLResponse)
def delete_session(
    entry_id: EntryId,
    session_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    user: Owner,
    rt: RuntimeDep,
) -> Response:
    try:
        with rt.db.session(write=True) as session:
            service.get_entry(session, user, entry_id)  # the page must be the caller's
            service.delete_session(session, user, session_id)
    except Problem as exc:
        return _refused(entry_id, exc)
    return _back(entry_id, "Session deleted.")


@router.post("/{entry_id}/status", response_class=HTMLResponse)
def change_status(
    entry_id: EntryId,
    user: Owner,
    rt: RuntimeDep,
    status: Annotated[str, Form(max_length=10)],
) -> Response:
    try:
        if status not in Status.ALL:
            raise BadRequest(f"status must be one of {', '.join(Status.ALL)}")
        with rt.db.session(write=True) as session:
            service.update_entry(session, user, entry_id, service.EntryChanges(status=status))
    except Problem as exc:
        return _refused(entry_id, exc)
    return _back(entry_id, f"Status: {STATUS_NAMES[status]}.")


@router.post("/{entry_id}/pages", response_class=HTMLResponse)
def change_pages(
    entry_id: EntryId,
    user: Owner,
    rt: RuntimeDep,
    current_page: FormNumber = "",
    page_count: FormNumber = "",
) -> Response:
    """The current page and the reader's page count (empty: back to the source's)."""
    try:
        page, count = _number(current_page, "current page"), _number(page_count, "page count")
        if count == 0:
            raise BadRequest("a page count must be 1 or more (leave it empty for the source's)")
        with rt.db.session(write=True) as session:
            service.update_entry(
                session,
                user,
                entry_id,
                service.EntryChanges(current_page=page, page_count=count),
            )
    except Problem as exc:
        return _refused(entry_id, exc)
    return _back(entry_id, "Pages saved.")


@router.post("/{entry_id}/finish", response_class=HTMLResponse)
def finish(
    entry_id: EntryId,
    user: Owner,
    rt: RuntimeDep,
    started_on: Annotated[str, Form(max_length=10)],
    finished_on: Annotated[str, Form(max_length=10)],
) -> Response:
    zone = ZoneInfo(rt.settings.reading_timezone)
    try:
        try:
            first = datetime.strptime(started_on, "%Y-%m-%d").date()
            last = datetime.strptime(finished_on, "%Y-%m-%d").date()
        except ValueError:
            raise BadRequest("give both dates as YYYY-MM-DD") from None
        with rt.db.session(write=True) as session:
            today = datetime.now(UTC).astimezone(zone).date()
            service.add_log(session, user, entry_id, first, last, today)
    except Problem as exc:
        return _refused(entry_id, exc)
    return _back(entry_id, "Marked finished and logged.")
