"""The /ops/alerts page (``ops.read``): what Alertmanager delivered, firing first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from vigil.core.auth.policy import require
from vigil.core.deps import db_session
from vigil.core.ops_alerts import service
from vigil.core.ops_alerts.models import OpsAlert
from vigil.core.ops_alerts.schemas import MAX_ALERTNAME, MAX_SEVERITY
from vigil.core.web.rendering import render

PATH = "/ops/alerts"
PAGE_SIZE = 50
#: Labels shown in their own columns, not again among the others.
SHOWN = ("alertname", "severity")

router = APIRouter(include_in_schema=False, dependencies=[Depends(require("ops.read"))])


def safe_link(url: str) -> str | None:
    """``url`` when it is an absolute http(s) URL, else None: a generatorURL is whatever
    the sender wrote, and a ``javascript:`` or ``data:`` one must not become a link."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


@dataclass(frozen=True)
class AlertRow:
    alert: OpsAlert
    summary: str
    since: datetime
    other_labels: list[tuple[str, str]]
    link: str | None


def _row(alert: OpsAlert) -> AlertRow:
    notes = alert.annotations or {}
    summary = notes.get("summary") or notes.get("description") or notes.get("message") or ""
    labels = sorted((k, v) for k, v in (alert.labels or {}).items() if k not in SHOWN)
    return AlertRow(alert, str(summary), alert.starts_at, labels, safe_link(alert.generator_url))


@router.get(PATH, response_class=HTMLResponse)
def ops_alerts_page(
    request: Request,
    session: Annotated[Session, Depends(db_session)],
    status: Annotated[Literal["firing", "resolved", ""], Query()] = "",
    alertname: Annotated[str, Query(max_length=MAX_ALERTNAME)] = "",
    severity: Annotated[str, Query(max_length=MAX_SEVERITY)] = "",
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
) -> HTMLResponse:
    rows, total = service.list_alerts(
        session,
        status=status or None,
        alertname=alertname or None,
        severity=severity or None,
        limit=PAGE_SIZE,
        offset=offset,
    )
    filters = {"status": status, "alertname": alertname, "severity": severity}
    context = {
        "title": "Alertmanager alerts",
        "rows": [_row(r) for r in rows],
        "total": total,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "path": PATH,
    }
    return render(request, "ops_alerts.html", context, partial="_ops_alerts_table.html")
