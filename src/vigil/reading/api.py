"""Reading JSON API, mounted at /api/v1/reading. Every route needs ``reading.own`` and works
on the caller's own data only (see ``service``): someone else's id is a 404."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from vigil.core.auth.identity import Identity
from vigil.core.auth.policy import require
from vigil.core.deps import db_session, runtime
from vigil.core.modules import module_prefix
from vigil.core.problems import BadRequest, NotFound, Problem, Unavailable
from vigil.core.runtime import Runtime
from vigil.reading import goodreads, predictions, service
from vigil.reading.catalog import Catalog, SourcesUnavailable
from vigil.reading.models import Book, ListEntry, LogEntry
from vigil.reading.schemas import (
    BookForecastOut,
    BookHitOut,
    BookOut,
    CurrentSessionOut,
    EntryIn,
    EntryOut,
    EntryPatch,
    ImportOut,
    ImportRefusedOut,
    LogIn,
    LogOut,
    ModelOut,
    PredictionOut,
    SearchOut,
    SessionIn,
    SessionOut,
    SessionPage,
    StartIn,
    StatusName,
    StopIn,
    UnknownPagesOut,
)

router = APIRouter(prefix=module_prefix("reading"), tags=["reading"])

MAX_ID = 2_147_483_647


async def owner(identity: Annotated[Identity, Depends(require("reading.own"))]) -> int:
    """The signed-in user whose data this is (a service token has no books of its own)."""
    if identity.user_id is None:
        raise Problem(403, "Reading data belongs to a user: sign in as one (not a service token).")
    return identity.user_id


Owner = Annotated[int, Depends(owner)]
SessionDep = Annotated[Session, Depends(db_session)]
RuntimeDep = Annotated[Runtime, Depends(runtime)]
EntryIdP = Annotated[int, Path(ge=1, le=MAX_ID, description="The list entry's id.")]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Clashes with what exists (already listed, overlapping)."}
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "No book source answered; nothing was stored."}
}


def entry_out(entry: ListEntry, book: Book) -> EntryOut:
    pages = service.effective_pages(entry, book)
    return EntryOut(
        id=entry.id,
        status=entry.status,
        position=entry.position,
        current_page=entry.current_page,
        page_count=pages,
        page_count_corrected=entry.page_count_override is not None,
        pages_left=None if pages is None else max(0, pages - entry.current_page),
        added_at=entry.added_at,
        updated_at=entry.updated_at,
        book=BookOut.model_validate(book),
    )


def _log_out(row: LogEntry, book: Book) -> LogOut:
    return LogOut(
        id=row.id,
        book=BookOut.model_validate(book),
        started_on=row.started_on,
        finished_on=row.finished_on,
        pages=row.pages,
        created_at=row.created_at,
    )


@router.get(
    "/search",
    response_model=SearchOut,
    summary="Find books by title, author or ISBN (Google Books, else Open Library)",
    responses=UNAVAILABLE,
)
def search(
    _user: Owner,
    rt: RuntimeDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Title, author or ISBN.")],
    limit: Annotated[int, Query(ge=1, le=40)] = 10,
) -> SearchOut:
    with Catalog.from_settings(rt.settings, rt.cache) as catalog:
        try:
            found = catalog.search(q, limit)
        except SourcesUnavailable as exc:
            raise Unavailable(str(exc)) from None
    return SearchOut(
        query=q,
        source=found.source,
        notes=found.notes,
        items=[BookHitOut(**{**h.to_json(), "authors": list(h.authors)}) for h in found.hits],
    )


@router.get("/list", response_model=list[EntryOut], summary="Your list, in reading order")
def get_list(
    user: Owner, session: SessionDep, status: Annotated[StatusName | None, Query()] = None
) -> list[EntryOut]:
    return [entry_out(e, b) for e, b in service.list_entries(session, user, status)]


@router.post(
    "/list",
    response_model=EntryOut,
    status_code=201,
    summary="Put a book found by a search on your list",
    responses={**CONFLICT, **UNAVAILABLE},
)
def add_entry(body: EntryIn, user: Owner, rt: RuntimeDep) -> EntryOut:
    # The source is asked (if the book is not cached) before any transaction is open.
    with Catalog.from_settings(rt.settings, rt.cache) as catalog:
        try:
            hit = catalog.lookup(body.source, body.source_id)
        except SourcesUnavailable as exc:
            raise Unavailable(str(exc)) from None
    if hit is None:
        raise NotFound(f"{body.source} does not know the book {body.source_id!r}.")
    with rt.db.session(write=True) as session:
        book = service.upsert_book(session, hit)
        entry = service.add_to_list(session, user, book, body.status)
        return entry_out(entry, book)


@router.get("/list/{entry_id}", response_model=EntryOut, summary="One book of your list")
def get_entry(entry_id: EntryIdP, user: Owner, session: SessionDep) -> EntryOut:
    return entry_out(*service.get_entry(session, user, entry_id))


@router.patch(
    "/list/{entry_id}",
    response_model=EntryOut,
    summary="Change a book's status, current page, your page count or its place in the order",
)
def patch_entry(entry_id: EntryIdP, body: EntryPatch, user: Owner, session: SessionDep) -> EntryOut:
    fields = body.model_fields_set
    changes = service.EntryChanges(
        status=body.status,
        current_page=body.current_page,
        position=body.position,
        **({"page_count": body.page_count} if "page_count" in fields else {}),
    )
    return entry_out(*service.update_entry(session, user, entry_id, changes))


@router.delete("/list/{entry_id}", status_code=204, summary="Take a book off your list")
def delete_entry(entry_id: EntryIdP, user: Owner, session: SessionDep) -> Response:
    service.remove_entry(session, user, entry_id)
    return Response(status_code=204)


@router.get("/log", response_model=list[LogOut], summary="Your simple reading log, newest first")
def get_log(user: Owner, session: SessionDep) -> list[LogOut]:
    return [_log_out(r, b) for r, b in service.list_log(session, user)]


@router.post(
    "/log",
    response_model=LogOut,
    status_code=201,
    summary="Simple mode: a book read from one date to another (marks it finished)",
)
def add_log(body: LogIn, user: Owner, session: SessionDep) -> LogOut:
    today = datetime.now(UTC).date()
    row = service.add_log(session, user, body.entry_id, body.started_on, body.finished_on, today)
    _, book = service.get_entry(session, user, body.entry_id)
    return _log_out(row, book)


@router.delete("/log/{log_id}", status_code=204, summary="Delete a log entry")
def delete_log(
    log_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: Owner, session: SessionDep
) -> Response:
    service.delete_log(session, user, log_id)
    return Response(status_code=204)


@router.get("/sessions", response_model=SessionPage, summary="Your sessions, newest first")
def get_sessions(
    user: Owner,
    session: SessionDep,
    entry_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="One book's.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> SessionPage:
    rows, total = service.list_sessions(session, user, entry_id, limit, offset)
    items = [SessionOut.model_validate(r) for r in rows]
    return SessionPage(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/sessions/current", response_model=CurrentSessionOut, summary="The running session, if any"
)
def current_session(user: Owner, session: SessionDep) -> CurrentSessionOut:
    row = service.open_session(session, user)
    return CurrentSessionOut(session=SessionOut.model_validate(row) if row else None)


@router.post(
    "/sessions/start",
    response_model=SessionOut,
    status_code=201,
    summary="Start the timer (the start time is the server's, stored at once)",
    responses=CONFLICT,
)
def start(body: StartIn, user: Owner, session: SessionDep) -> SessionOut:
    row = service.start_session(session, user, body.entry_id, datetime.now(UTC))
    return SessionOut.model_validate(row)


@router.post(
    "/sessions/stop",
    response_model=SessionOut,
    summary="Stop the timer with the pages read or the page reached",
    responses=CONFLICT,
)
def stop(body: StopIn, user: Owner, session: SessionDep) -> SessionOut:
    row = service.stop_session(
        session,
        user,
        datetime.now(UTC),
        pages_read=body.pages_read,
        end_page=body.end_page,
        end_time=body.end_time,
    )
    return SessionOut.model_validate(row)


@router.post(
    "/sessions",
    response_model=SessionOut,
    status_code=201,
    summary="Enter a past session by hand",
    responses=CONFLICT,
)
def add_session(body: SessionIn, user: Owner, session: SessionDep) -> SessionOut:
    row = service.add_session(
        session,
        user,
        body.entry_id,
        body.start_time,
        body.end_time,
        datetime.now(UTC),
        pages_read=body.pages_read,
        end_page=body.end_page,
        start_page=body.start_page,
    )
    return SessionOut.model_validate(row)


@router.delete("/sessions/{session_id}", status_code=204, summary="Delete a session")
def delete_session(
    session_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: Owner, session: SessionDep
) -> Response:
    service.delete_session(session, user, session_id)
    return Response(status_code=204)


@router.get(
    "/prediction",
    response_model=PredictionOut,
    summary="When you will finish each book of your list, and the whole list",
)
def prediction(
    user: Owner,
    rt: RuntimeDep,
    session: SessionDep,
    model: Annotated[
        Literal["auto", "simple", "speed", "contextual"],
        Query(description="auto: contextual, else speed x habit, else simple (see reason)."),
    ] = "auto",
    tz: Annotated[
        str | None,
        Query(max_length=64, description="IANA time zone of your days (VIGIL_READING_TIMEZONE)."),
    ] = None,
) -> PredictionOut:
    try:
        zone = ZoneInfo(tz or rt.settings.reading_timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadRequest(f"tz {tz!r} is not an IANA time zone such as 'Europe/Warsaw'") from None
    found = predictions.predict(session, user, zone, datetime.now(UTC), model)
    last = found.books[-1] if found.books else None
    return PredictionOut(
        today=found.today,
        timezone=found.timezone,
        model=found.model,
        reason=found.reason,
        pages_left=found.pages_left,
        list_finish=last.finish if last else None,
        list_low=last.low if last else None,
        list_high=last.high if last else None,
        books=[BookForecastOut(**asdict(b)) for b in found.books],
        unknown_pages=[
            UnknownPagesOut(entry_id=q.entry_id, title=q.title) for q in found.unknown_pages
        ],
        models=[ModelOut(**asdict(m)) for m in found.models],
    )


MAX_IMPORT_BYTES = 5 * 1024 * 1024


@router.post(
    "/import/goodreads",
    response_model=ImportOut,
    summary="Import a Goodreads library export (CSV) into your list and log",
    description="The body is the file Goodreads exports (Content-Type: text/csv). to-read "
    "books go on the pile, currently-reading ones are Reading, read ones Finished (and logged "
    "when the file gives a start date). Books already on your list are left alone; rows that "
    "cannot be imported are listed with the reason.",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
    responses={413: {"description": "Larger than 5 MB."}, 415: {"description": "Not text/csv."}},
)
async def import_goodreads(request: Request, user: Owner, rt: RuntimeDep) -> ImportOut:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("text/csv", "text/plain"):
        raise Problem(415, "Send the export as the body with Content-Type: text/csv.")
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise Problem(413, f"The file is larger than {MAX_IMPORT_BYTES // 1024 // 1024} MB.")
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("The file is not UTF-8 text (Goodreads exports UTF-8).") from None

    def run() -> service.ImportReport:
        with rt.db.session(write=True) as session:
            return service.import_goodreads(session, user, content, datetime.now(UTC).date())

    try:
        report = await run_in_threadpool(run)
    except goodreads.NotAnExport as exc:
        raise BadRequest(str(exc)) from None
    return ImportOut(
        rows=report.rows,
        added=report.added,
        already=report.already,
        logged=report.logged,
        refused=[ImportRefusedOut(line=n, title=t, reason=r) for n, t, r in report.refused],
    )
