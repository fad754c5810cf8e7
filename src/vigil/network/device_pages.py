"""The devices pages under /network (Viewers read with ``ops.read``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from vigil.core.auth.policy import require
from vigil.core.deps import db_session
from vigil.core.web import render
from vigil.network import service

PATH = "/network"
router = APIRouter(prefix=PATH, include_in_schema=False)
READ = Depends(require("ops.read"))
SessionDep = Annotated[Session, Depends(db_session)]


@router.get("", response_class=HTMLResponse, dependencies=[READ])
def devices_page(request: Request, session: SessionDep) -> HTMLResponse:
    views, total = service.list_devices(session, service.DeviceFilter(), 100, 0)
    context: dict[str, Any] = {"title": "Devices", "path": PATH, "views": views, "total": total}
    return render(request, "network/devices.html", context)
