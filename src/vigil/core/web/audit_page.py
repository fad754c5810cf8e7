"""The audit log page (Admin): who did what, when, from where, with the changed fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from vigil.core.auth import audit
from vigil.core.auth.policy import require
from vigil.core.deps import db_session
from vigil.core.problems import BadRequest
from vigil.core.web.rendering import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(require("audit.read"))])

PAGE_SIZE = 50
Filter = Annotated[str | None, Query(max_length=320)]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: Annotated[Session, Depends(db_session)],
    actor: Filter = None,
    entity: Filter = None,
    action: Filter = None,
    since: Annotated[date | None, Query()] = None,
    until: Annotated[date | None, Query(description="Last day, inclusive.")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    if since is not None and until is not None and since > until:
        raise BadRequest(f"'since' ({since}) is after 'until' ({until})")
    rows, total = audit.entries(
        session,
        actor=actor or None,
        entity=entity or None,
        action=action or None,
        since=_day_start(since) if since else None,
        until=_day_start(until + timedelta(days=1)) if until else None,
        limit=PAGE_SIZE,
        offset=offset,
    )
    filters = {"actor": actor or "", "entity": entity or "", "action": action or "",
               "since": since or "", "until": until or ""}  # fmt: skip
    context = {
        "title": "Audit log",
        "rows": rows,
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
    }
    return render(request, "audit.html", context, partial="_audit_table.html")
