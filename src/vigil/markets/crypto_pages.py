"""The crypto board, /markets/crypto: tracked assets, a price chart with a window picker,
fired alerts and alert rules (public), and its forms (markets.write): add an asset, add or
delete an alert rule. The forms call what the JSON API calls, with its validation.

The data panel (#crypto-panel) refreshes itself; the forms sit outside it, so a half-typed
form survives a refresh. A form answers HTMX with itself (the error next to the fields and
the user's input, status 422; or a fresh form and a success message) plus, after a change,
the refreshed panel swapped out of band; without JavaScript, a 422 page or a 303 redirect
with a flash message. The panel keeps the user's picks: they come with the request (the
picker's fields, or the page's URL that HTMX sends as HX-Current-URL)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vigil.core.auth.policy import public, require
from vigil.core.deps import db_session
from vigil.core.deps import runtime as runtime_dep
from vigil.core.problems import BadRequest, NotFound, Problem
from vigil.core.runtime import Runtime
from vigil.core.web import flash, is_htmx, render
from vigil.markets import alerting, api, service
from vigil.markets.board_charts import price_window_chart
from vigil.markets.crypto_board import DEFAULT_WINDOW, WINDOWS, crypto_board
from vigil.markets.schemas import AlertRuleIn, AssetIn
from vigil.markets.sources import SeriesKind

router = APIRouter(prefix="/markets", include_in_schema=False)

PATH = "/markets/crypto"
READ = Depends(public)
WRITE = Depends(require("markets.write"))
SessionDep = Annotated[Session, Depends(db_session)]
CODE = re.compile(r"^[A-Za-z0-9]{2,12}$")
CRYPTO = SeriesKind.CRYPTO
MAX_ID = 2_147_483_647  # a larger id is refused (422), never a database error
RULE_LABELS = {
    "asset": "Asset",
    "threshold_pct": "Threshold %",
    "window_minutes": "Window (minutes)",
    "direction": "Direction",
    "cooldown_minutes": "Cooldown (minutes)",
    "enabled": "Enabled",
}
ASSET_FORM_DEFAULTS = {"symbol": "", "source_ref": "", "quote": "usd"}
RULE_FORM_DEFAULTS = {
    "asset": "",
    "threshold_pct": "",
    "window_minutes": "60",
    "direction": "both",
    "cooldown_minutes": "60",
    "enabled": "on",
}


@dataclass
class FormState:
    """A form as shown: its values, and the error or the success message under it."""

    values: dict[str, str]
    error: str | None = None
    notice: str | None = None
    fields: list[str] = field(default_factory=list)  # the fields the error is about


@dataclass(frozen=True)
class Picks:
    asset: str | None
    window: str

    def query(self) -> str:
        values = {"asset": self.asset, "window": self.window}
        return urlencode({k: v for k, v in values.items() if v})


def _checked_picks(asset: str | None, window: str) -> Picks:
    if window not in WINDOWS:
        raise BadRequest(f"window {window[:20]!r} is not offered: pick one of {', '.join(WINDOWS)}")
    return Picks(asset.upper() if asset else None, window)


def _picks_of_page(request: Request) -> Picks:
    """The picks in the URL of the page the user is on (HTMX sends it; a browser without
    JavaScript sends the Referer); defaults for anything missing or not valid."""
    url = request.headers.get("hx-current-url") or request.headers.get("referer") or ""
    query = parse_qs(urlsplit(url).query)
    asset = (query.get("asset") or [""])[0]
    window = (query.get("window") or [""])[0]
    return Picks(
        asset.upper() if CODE.match(asset) else None,
        window if window in WINDOWS else DEFAULT_WINDOW,
    )


def _panel_context(session: Session, picks: Picks, *, strict: bool) -> dict[str, Any]:
    """The data panel's values. ``strict``: an asset that is not a tracked crypto asset is
    a 404 (the user asked for it); otherwise the first asset is charted instead."""
    now = datetime.now(UTC)
    code = picks.asset
    if code is not None and code not in {a.code for a in service.assets_of_kind(session, CRYPTO)}:
        if strict:
            raise NotFound(
                f"no crypto asset {code} is tracked; the board lists them (add one with the form)"
            )
        code = None
    board = crypto_board(session, code, picks.window, now)
    chart = None
    if board.code is not None and board.chart is not None:
        chart = price_window_chart(board.code, board.chart.points)
    return {
        "path": PATH,
        "board": board,
        "windows": WINDOWS,
        "price_chart": chart,
        "now": now,
    }


def _page_context(
    session: Session,
    picks: Picks,
    *,
    strict: bool = True,
    asset_form: FormState | None = None,
    rule_form: FormState | None = None,
) -> dict[str, Any]:
    return {
        "title": "Crypto",
        **_panel_context(session, picks, strict=strict),
        "asset_form": asset_form or FormState(dict(ASSET_FORM_DEFAULTS)),
        "rule_form": rule_form or FormState(dict(RULE_FORM_DEFAULTS)),
    }


@router.get("/crypto", response_class=HTMLResponse, dependencies=[READ])
def crypto_page(
    request: Request,
    session: SessionDep,
    asset: Annotated[str | None, Query(pattern="^[A-Za-z0-9]{2,12}$")] = None,
    window: Annotated[str, Query(max_length=20)] = DEFAULT_WINDOW,
) -> HTMLResponse:
    context = _page_context(session, _checked_picks(asset, window))
    return render(request, "markets/crypto.html", context, partial="markets/_crypto_panel.html")


def _form_answer(
    request: Request,
    session: Session,
    *,
    form: str,
    state: FormState,
    changed: bool,
) -> Response:
    """A form's answer: see the module's docstring."""
    picks = _picks_of_page(request)
    if not is_htmx(request):
        if state.error is None:
            target = f"{PATH}?{picks.query()}" if picks.query() else PATH
            return flash(RedirectResponse(target, status_code=303), state.notice or "", "success")
        forms = {f"{form}_form": state}
        context = _page_context(session, picks, strict=False, **forms)
        return render(request, "markets/crypto.html", context, status_code=422)
    context = {
        "form_template": f"markets/_{form}_form.html",
        f"{form}_form": state,
        "oob": changed,
        **(_panel_context(session, picks, strict=False) if changed else {}),
    }
    status = 200 if state.error is None else 422
    return render(request, "markets/_form_answer.html", context, status_code=status)


# --- add an asset ---------------------------------------------------------------------------


@router.post("/crypto/assets", response_class=HTMLResponse, dependencies=[WRITE])
def add_asset(
    request: Request,
    runtime: Annotated[Runtime, Depends(runtime_dep)],
    symbol: Annotated[str, Form(max_length=100)] = "",
    source_ref: Annotated[str, Form(max_length=200)] = "",
    quote: Annotated[str, Form(max_length=20)] = "usd",
) -> Response:
    values = {"symbol": symbol, "source_ref": source_ref, "quote": quote}
    body = AssetIn(symbol=symbol, source="coingecko", source_ref=source_ref, quote=quote)
    try:
        # What POST /api/v1/markets/assets does, checks and answers included. It opens its
        # own sessions and holds none while CoinGecko is asked.
        created = api.create_asset(body, runtime)
    except Problem as exc:  # 409 taken, 422 refused, 503 no answer: nothing was written
        state = FormState(values, error=exc.detail)
    else:
        state = FormState(
            dict(ASSET_FORM_DEFAULTS),
            notice=f"Added {created.code} ({created.source_ref}, in {created.quote}): "
            f"{created.backfilled_rows} prices of the last 24 h loaded.",
        )
    with runtime.db.session() as session:
        return _form_answer(request, session, form="asset", state=state, changed=not state.error)


# --- alert rules ----------------------------------------------------------------------------


def _validation_message(exc: ValidationError) -> tuple[str, list[str]]:
    parts, fields = [], []
    for error in exc.errors():
        name = str(error["loc"][0]) if error.get("loc") else ""
        fields.append(name)
        parts.append(f"{RULE_LABELS.get(name, name)}: {error['msg']}")
    return "; ".join(parts), fields


@router.post("/crypto/rules", response_class=HTMLResponse, dependencies=[WRITE])
def add_rule(
    request: Request,
    session: SessionDep,
    asset: Annotated[str, Form(max_length=100)] = "",
    threshold_pct: Annotated[str, Form(max_length=50)] = "",
    window_minutes: Annotated[str, Form(max_length=50)] = "",
    direction: Annotated[str, Form(max_length=20)] = "both",
    cooldown_minutes: Annotated[str, Form(max_length=50)] = "60",
    enabled: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    values = {
        "asset": asset.strip(),
        "threshold_pct": threshold_pct.strip(),
        "window_minutes": window_minutes.strip(),
        "direction": direction,
        "cooldown_minutes": cooldown_minutes.strip(),
        "enabled": "on" if enabled else "",
    }
    try:
        # The API's own model (AlertRuleIn): the same fields, bounds and messages.
        body = AlertRuleIn.model_validate(
            {**values, "asset": values["asset"] or None, "enabled": bool(enabled)}
        )
        rule = alerting.create_rule(session, alerting.RuleInput(**body.model_dump()))
    except ValidationError as exc:
        message, fields = _validation_message(exc)
        state = FormState(values, error=message, fields=fields)
    except Problem as exc:  # e.g. an asset that is not tracked
        state = FormState(values, error=exc.detail, fields=["asset"])
    else:
        what = rule.asset_code or "every asset (default)"
        state = FormState(
            dict(RULE_FORM_DEFAULTS),
            notice=f"Rule {rule.id} added: {what}, {rule.threshold_pct} % in "
            f"{rule.window_minutes} min, {rule.direction}.",
        )
    return _form_answer(request, session, form="rule", state=state, changed=not state.error)


@router.post("/crypto/rules/{rule_id}/delete", response_class=HTMLResponse, dependencies=[WRITE])
def delete_rule(
    request: Request,
    session: SessionDep,
    rule_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    alerting.delete_rule(session, rule_id)  # 404 for an unknown id
    notice = f"Rule {rule_id} deleted."
    picks = _picks_of_page(request)
    if not is_htmx(request):
        target = f"{PATH}?{picks.query()}" if picks.query() else PATH
        return flash(RedirectResponse(target, status_code=303), notice, "success")
    context = {**_panel_context(session, picks, strict=False), "notice": notice}
    return render(request, "markets/_crypto_panel.html", context)
