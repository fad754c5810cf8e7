"""Puts the web UI into the app: templates, static files, the modules' pages, the home
page and HTML error pages for browsers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Scope

from vigil import __version__
from vigil.core.auth.policy import declare, public
from vigil.core.ops_alerts.web import router as ops_alerts_page_router
from vigil.core.web.account import router as account_router
from vigil.core.web.account import safe_next
from vigil.core.web.assets import STATIC_DIR, asset_url, missing_vendor_files
from vigil.core.web.audit_page import router as audit_router
from vigil.core.web.pages import NavLink
from vigil.core.web.rendering import is_htmx, render
from vigil.core.web.session import (
    SessionCookieMiddleware,
    cookie_resolver,
    csrf_token,
    session_identity,
)

if TYPE_CHECKING:
    from vigil.core.db import Database
    from vigil.core.modules import Module
    from vigil.settings import Settings

log = logging.getLogger(__name__)

CORE_TEMPLATES = Path(__file__).parent / "templates"
YEAR = 365 * 24 * 3600


class VersionedStaticFiles(StaticFiles):
    """Static files; a URL carrying ``?v=<hash>`` (see ``asset_url``) is cached for a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200 and b"v=" in scope.get("query_string", b""):
            response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        return response


def wants_html(request: Request) -> bool:
    """A browser asking for a page (not the API, not a script)."""
    path = request.url.path
    if path.startswith(("/api/", "/metrics", "/health", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def build_templates(
    modules: Sequence[Module], settings: Settings, missing_assets: list[str]
) -> Jinja2Templates:
    folders = [CORE_TEMPLATES] + [m.web.templates for m in modules if m.web is not None]
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    nav: list[tuple[str, list[NavLink]]] = [
        (m.title, list(m.web.nav)) for m in modules if m.web is not None and m.web.nav
    ]
    env.globals.update(
        asset_url=asset_url,
        csrf_token=csrf_token,
        current_user=session_identity,
        nav=nav,
        version=__version__,
        refresh_seconds=settings.ui_refresh_seconds,
        missing_assets=missing_assets,
    )
    return Jinja2Templates(env=env)


def install_web(app: FastAPI, modules: Sequence[Module], settings: Settings, db: Database) -> None:
    missing = missing_vendor_files()
    if missing:
        log.warning(
            "web UI: front-end files missing (%s); pages work without charts. "
            "Run `make install` (npm ci + copy) to get them.",
            ", ".join(missing),
        )
    app.state.templates = build_templates(modules, settings, missing)
    # The UI's cookie session: after the Bearer resolver, with its own CSRF check.
    app.state.identity_resolver.add(cookie_resolver())
    app.add_middleware(SessionCookieMiddleware, auth=app.state.auth, db=db)
    app.include_router(account_router)
    app.include_router(audit_router)
    app.include_router(ops_alerts_page_router)
    app.state.render_error = render_error
    app.mount(
        "/static",
        GZipMiddleware(VersionedStaticFiles(directory=STATIC_DIR), minimum_size=512),
        name="static",
    )
    declare(app.routes[-1])  # static files are public
    for module in modules:
        if module.web is not None:
            app.include_router(module.web.router)

    @app.get(
        "/", include_in_schema=False, response_class=HTMLResponse, dependencies=[Depends(public)]
    )
    def home(request: Request) -> HTMLResponse:
        context = {"title": "Home", "cards": home_cards(request, modules)}
        return render(request, "home.html", context)


def home_cards(request: Request, modules: Sequence[Module]) -> list[Markup]:
    """The modules' home page cards; one that fails is logged and left out (the home page
    still answers)."""
    cards: list[Markup] = []
    for module in modules:
        for card in module.web.home_cards if module.web is not None else ():
            try:
                html = card(request)
            except Exception:
                log.exception("home page card of module %s failed", module.name)
                continue
            if html:
                cards.append(Markup(html))  # the module's own rendered (escaped) template
    return cards


def render_error(request: Request, status: int, detail: str) -> Response | None:
    """The shell's error page (404, 422, 500…) for a browser asking for a page; None for
    anything else, which keeps problem+json."""
    if not wants_html(request):
        return None
    if status == 401:  # a page that needs a signed-in user: sign in, then come back
        login = f"/login?next={quote(safe_next(_page_path(request)))}"
        if is_htmx(request):
            return HTMLResponse("", status_code=401, headers={"HX-Redirect": login})
        return RedirectResponse(login, status_code=303)
    if status == 404 and detail.startswith("No such path"):
        detail = f"There is no page at {request.url.path}."
    title = HTTPStatus(status).phrase
    context: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    return render(request, "error.html", context, partial="_error.html", status_code=status)


def _page_path(request: Request) -> str:
    """Where to come back after signing in: the page itself (for an HTMX request or a
    form post, the page the user was on)."""
    if request.method == "GET" and not is_htmx(request):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    current = request.headers.get("hx-current-url") or request.headers.get("referer") or "/"
    parts = urlsplit(current)
    return parts.path + (f"?{parts.query}" if parts.query else "")
