"""Markets UI pages (Charon's public dashboard and the telemetry board) under /markets.
Each page renders in full for a browser and as its panel alone for HTMX (auto-refresh and
the pickers), from the same URL. Dashboard and Gold are here; the Miner page is in
miner_pages.py, the crypto board in crypto_pages.py; ``pages`` registers them all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BeforeValidator
from sqlalchemy.orm import Session

from vigil.core.auth.policy import public
from vigil.core.deps import db_session, settings_dep
from vigil.core.web import NavLink, WebPages, render
from vigil.markets import crypto_pages, dashboards, miner_pages, service
from vigil.markets.brain import BrainSettings
from vigil.markets.price_charts import candle_chart, price_chart
from vigil.markets.sources import SeriesKind
from vigil.settings import Settings

router = APIRouter(prefix="/markets", include_in_schema=False, dependencies=[Depends(public)])

SessionDep = Annotated[Session, Depends(db_session)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]


def _blank_is_none(value: object) -> object:
    """An empty date input ("from=") means no date: the picker form (HTMX, or a plain GET
    without JavaScript) always sends both date fields, empty when not filled in."""
    return None if value == "" else value


CodeQ = Annotated[str | None, Query(pattern="^[A-Za-z]{3}$")]
RANGE_LABELS = {"3m": "3 months", "6m": "6 months", "1y": "1 year", "5y": "5 years", "all": "All"}
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class Shown:
    """The range a price page shows: a preset, or dates that win over it."""

    choice: str
    start: date | None
    end: date | None


def shown_range(
    choice: Annotated[str, Query(alias="range", pattern="^(3m|6m|1y|5y|all)$")] = "1y",
    start: Annotated[date | None, BeforeValidator(_blank_is_none), Query(alias="from")] = None,
    end: Annotated[date | None, BeforeValidator(_blank_is_none), Query(alias="to")] = None,
) -> Shown:
    return Shown(choice, start, end)


ShownDep = Annotated[Shown, Depends(shown_range)]


def _price_page(
    request: Request,
    session: Session,
    settings: Settings,
    shown: Shown,
    *,
    kind: SeriesKind,
    code: str | None,
    title: str,
    path: str,
) -> HTMLResponse:
    choices = service.assets_of_kind(session, kind)
    codes = [a.code for a in choices]
    if code is None:
        code = DEFAULT_CURRENCY if DEFAULT_CURRENCY in codes else (codes[0] if codes else None)
    board = None
    if code is not None:
        params = BrainSettings.from_settings(settings).params
        board = dashboards.price_dashboard(
            session, code, kind, shown.choice, shown.start, shown.end, params
        )
    context: dict[str, Any] = {
        "title": title,
        "path": path,
        "kind": kind.value,
        "assets": choices,
        "code": code.upper() if code else None,
        "choice": shown.choice,
        "start": shown.start,
        "end": shown.end,
        "ranges": RANGE_LABELS,
        "board": board,
        "price_chart": price_chart(board) if board else None,
        "candle_chart": candle_chart(board) if board else None,
        "now": datetime.now(UTC),
    }
    return render(request, "markets/prices.html", context, partial="markets/_price_panel.html")


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    shown: ShownDep,
    code: CodeQ = None,
) -> HTMLResponse:
    return _price_page(
        request, session, settings, shown, kind=SeriesKind.CURRENCY, code=code,
        title="Dashboard", path="/markets/dashboard",
    )  # fmt: skip


@router.get("/gold", response_class=HTMLResponse)
def gold(
    request: Request, session: SessionDep, settings: SettingsDep, shown: ShownDep
) -> HTMLResponse:
    return _price_page(
        request, session, settings, shown, kind=SeriesKind.GOLD, code=None,
        title="Gold", path="/markets/gold",
    )  # fmt: skip


# Each page router declares its own policies (these read pages are public; the crypto
# board's forms need markets.write), so they are gathered in a router that adds none.
all_pages = APIRouter()
for page_router in (router, miner_pages.router, crypto_pages.router):
    all_pages.include_router(page_router)

pages = WebPages(
    router=all_pages,
    templates=Path(__file__).parent / "templates",
    nav=(
        NavLink("Dashboard", "/markets/dashboard"),
        NavLink("Gold", "/markets/gold"),
        NavLink("Miner", miner_pages.PATH),
        NavLink("Crypto", crypto_pages.PATH),
    ),
)
