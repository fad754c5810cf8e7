"""The network module's pages (SOTP), under /network, gathered into one ``WebPages`` object
for the module's registration: the devices pages (device_pages.py) and, when its file is
present, the alerts pages (alert_pages.py, written separately). Each page router declares
its own policies, so the gathering router adds none."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter

from vigil.core.web import NavLink, WebPages
from vigil.network import device_pages, device_pages_forms

ALERT_PAGES = "vigil.network.alert_pages"

all_pages = APIRouter()
# The forms first: /network/devices/new must not be taken for a device id.
all_pages.include_router(device_pages_forms.router)
all_pages.include_router(device_pages.router)
nav = [NavLink("Devices", device_pages.PATH)]

# The alerts pages live in their own file, written in parallel with this one: include them
# when the file exists (guarded so the module loads without it). An error inside the file
# is not hidden: only its absence is.
if find_spec(ALERT_PAGES) is not None:
    alert_pages = import_module(ALERT_PAGES)
    all_pages.include_router(alert_pages.router)
    nav.append(NavLink("Alerts", getattr(alert_pages, "PATH", "/network/alerts")))

pages = WebPages(router=all_pages, templates=Path(__file__).parent / "templates", nav=tuple(nav))
