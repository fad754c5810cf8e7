"""ChronoBook's pages (signed in, ``reading.own``; the caller's own data only).

/reading: the prediction card (model, why, dates and range), the running timer with its
stop form, a book search with covers and "add to TBR", and the list by status, each book
linked to its page (``book_page``) with its progress and a start-the-timer button.
/reading/stats: pages per day, minutes per weekday and hour, speed week by week.
The forms call the service as the JSON API does and answer with a redirect and a flash
message (the API's message when refused)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vigil.core.deps import runtime as runtime_dep
from vigil.core.deps import runtime_of
from vigil.core.problems import Problem
from vigil.core.runtime import Runtime
from vigil.core.web import NavLink, WebPages, flash, render
from vigil.core.web.charts import chart_json, day_seconds
from vigil.core.web.rendering import templates_of
from vigil.core.web.session import session_identity
from vigil.reading import book_page, predictions, service, stats
from vigil.reading.api import Owner, entry_out
from vigil.reading.catalog import Catalog, SourcesUnavailable
from vigil.reading.models import Status
from vigil.reading.sources.base import BookHit

PATH = "/reading"
router = APIRouter(prefix=PATH, include_in_schema=False)
RuntimeDep = Annotated[Runtime, Depends(runtime_dep)]
STATUS_TITLES = {Status.READING: "Reading", Status.TBR: "To be read", Status.FINISHED: "Finished"}


def _back(message: str, level: str = "success") -> Response:
    return flash(RedirectResponse(PATH, status_code=303), message, level)


@router.get("", response_class=HTMLResponse)
def board(
    request: Request,
    user: Owner,
    rt: RuntimeDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    hits: list[BookHit] = []
    search_note = None
    if q.strip():
        with Catalog.from_settings(rt.settings, rt.cache) as catalog:
            try:
                found = catalog.search(q.strip(), 10)
                hits, notes = found.hits, found.notes
                search_note = " ".join(notes) or None
            except SourcesUnavailable as exc:
                search_note = str(exc)
    zone = ZoneInfo(rt.settings.reading_timezone)
    with rt.db.session() as session:
        entries = [entry_out(e, b) for e, b in service.list_entries(session, user)]
        running = service.open_session(session, user)
        forecast = predictions.predict(session, user, zone, datetime.now(UTC))
    by_id = {e.id: e for e in entries}
    context: dict[str, Any] = {
        "title": "Reading",
        "path": PATH,
        "q": q,
        "hits": hits,
        "search_note": search_note,
        "groups": [
            (STATUS_TITLES[s], [e for e in entries if e.status == s]) for s in STATUS_TITLES
        ],
        "running": running,
        "running_entry": next(
            (e for e in entries if running is not None and e.book.id == running.book_id), None
        ),
        "forecast": forecast,
        "finish": forecast.books[-1] if forecast.books else None,
        "by_id": by_id,
        "elapsed": book_page.clock(datetime.now(UTC) - running.start_time) if running else "",
        "zone_info": zone,
        "contextual": next((m for m in forecast.models if m.name == "contextual"), None),
    }
    return render(request, "reading/board.html", context)


def _stats_charts(found: stats.Stats) -> tuple[str, str]:
    """The specs of the pages-per-day histogram and the weekly speed line (vigil.js)."""
    per_day = {
        "panes": [{"series": [{"type": "histogram", "name": "pages", "title": "pages",
                               "color": "#2f7ed8",
                               "data": [[day_seconds(d), p] for d, p in found.pages_per_day]}]}]
    }  # fmt: skip
    speed = {
        "panes": [{"series": [{"type": "line", "name": "speed", "title": "pages/hour",
                               "lastValue": True,
                               "data": [[day_seconds(w), round(v, 1)]
                                        for w, v in found.speed_per_week]}]}]
    }  # fmt: skip
    return chart_json(per_day), chart_json(speed)


@router.get("/stats", response_class=HTMLResponse)
def stats_page(
    request: Request,
    user: Owner,
    rt: RuntimeDep,
    range_name: Annotated[str, Query(alias="range", pattern="^(3m|1y|all)$")] = "1y",
) -> HTMLResponse:
    zone = ZoneInfo(rt.settings.reading_timezone)
    with rt.db.session() as session:
        found = stats.reading_stats(session, user, zone, datetime.now(UTC), range_name)
    per_day, speed = _stats_charts(found)
    busiest = found.busiest_minutes
    context: dict[str, Any] = {
        "title": "Reading stats",
        "stats": found,
        "chosen": range_name,
        "ranges": {"3m": "3 months", "1y": "1 year", "all": "all"},
        "per_day_json": per_day,
        "speed_json": speed,
        "weekdays": stats.WEEKDAYS,
        "heat": [[(m, stats.heat_level(m, busiest)) for m in row] for row in found.minutes_grid],
        "zone": str(zone),
    }
    return render(request, "reading/stats.html", context)


@router.post("/list", response_class=HTMLResponse)
def add(
    user: Owner,
    rt: RuntimeDep,
    source: Annotated[str, Form(pattern="^(google_books|open_library)$")],
    source_id: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,40}$")],
) -> Response:
    with Catalog.from_settings(rt.settings, rt.cache) as catalog:
        try:
            hit = catalog.lookup(source, source_id)
        except SourcesUnavailable as exc:
            return _back(str(exc), "error")
    if hit is None:
        return _back(f"{source} does not know that book any more.", "error")
    try:
        with rt.db.session(write=True) as session:
            book = service.upsert_book(session, hit)
            service.add_to_list(session, user, book)
    except Problem as exc:
        return _back(exc.detail, "error")
    return _back(f"'{hit.title}' is on your list.")


@router.post("/sessions/start", response_class=HTMLResponse)
def start(
    user: Owner, rt: RuntimeDep, entry_id: Annotated[int, Form(ge=1, le=2_147_483_647)]
) -> Response:
    try:
        with rt.db.session(write=True) as session:
            service.start_session(session, user, entry_id, datetime.now(UTC))
    except Problem as exc:
        return _back(exc.detail, "error")
    return _back("Timer started.")


@router.post("/sessions/stop", response_class=HTMLResponse)
def stop(user: Owner, rt: RuntimeDep, end_page: Annotated[int, Form(ge=0, le=100_000)]) -> Response:
    try:
        with rt.db.session(write=True) as session:
            row = service.stop_session(session, user, datetime.now(UTC), end_page=end_page)
            minutes = ((row.end_time or row.start_time) - row.start_time).total_seconds() / 60
    except Problem as exc:
        return _back(exc.detail, "error")
    return _back(f"Session saved: {row.pages_read} pages in {minutes:.0f} minutes.")


@router.post("/list/{entry_id}/finish", response_class=HTMLResponse)
def finish(
    user: Owner,
    rt: RuntimeDep,
    entry_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    started_on: Annotated[str, Form(max_length=10)],
    finished_on: Annotated[str, Form(max_length=10)],
) -> Response:
    try:
        start_day = datetime.strptime(started_on, "%Y-%m-%d").date()
        end_day = datetime.strptime(finished_on, "%Y-%m-%d").date()
    except ValueError:
        return _back("Give both dates as YYYY-MM-DD.", "error")
    try:
        with rt.db.session(write=True) as session:
            service.add_log(session, user, entry_id, start_day, end_day, datetime.now(UTC).date())
    except Problem as exc:
        return _back(exc.detail, "error")
    return _back("Marked finished and logged.")


def home_card(request: Request) -> str | None:
    """The home page's reading card for a signed-in reader: the pile's finish date with its
    range and model, and the running timer."""
    identity = session_identity(request)
    if identity is None or identity.user_id is None or not identity.can("reading.own"):
        return None
    rt = runtime_of(request)
    zone = ZoneInfo(rt.settings.reading_timezone)
    now = datetime.now(UTC)
    with rt.db.session() as session:
        forecast = predictions.predict(session, identity.user_id, zone, now)
        running = service.open_session(session, identity.user_id)
    template = templates_of(request).get_template("reading/_home_card.html")
    return template.render(
        request=request,
        forecast=forecast,
        finish=forecast.books[-1] if forecast.books else None,
        running=running,
        elapsed=book_page.clock(now - running.start_time) if running else "",
    )


router.include_router(book_page.router)

pages = WebPages(
    router=router,
    templates=FilePath(__file__).parent / "templates",
    nav=(NavLink("Reading", PATH), NavLink("Reading stats", f"{PATH}/stats")),
    home_cards=(home_card,),
)
