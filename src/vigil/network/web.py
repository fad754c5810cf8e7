"""The network module's pages (SOTP), under /network, gathered into one ``WebPages`` object
for the module's registration: the devices pages (device_pages.py, device_pages_forms.py)
and the alerts and alert-rules pages (alert_pages.py). Each page router declares its own
policies, so the gathering router adds none."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from vigil.core.web import NavLink, WebPages
from vigil.network import alert_pages, device_pages, device_pages_forms

all_pages = APIRouter()
# The forms first: /network/devices/new must not be taken for a device id.
for page_router in (device_pages_forms.router, device_pages.router, alert_pages.router):
    all_pages.include_router(page_router)

pages = WebPages(
    router=all_pages,
    templates=Path(__file__).parent / "templates",
    nav=(
        NavLink("Devices", device_pages.PATH),
        NavLink("Alerts", alert_pages.PATH),
    ),
)
