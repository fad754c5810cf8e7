"""Rendering pages and partials. A page route renders its full template for a browser
and only the partial it names for an HTMX request (``HX-Request``), so auto-refresh and
forms swap a fragment served by the same URL."""

from __future__ import annotations

import gzip
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

FLASH_COOKIE = "vigil_flash"
GZIP_MIN_BYTES = 8 * 1024
FLASH_LEVELS = ("info", "success", "warning", "error")


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def templates_of(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    partial: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """``template`` for a page load, ``partial`` (when given) for an HTMX request.
    A flash message left by the previous response is shown once, then dropped."""
    name = partial if partial is not None and is_htmx(request) else template
    values = dict(context or {})
    flash_message = _read_flash(request)
    values.setdefault("flash", flash_message)
    response = templates_of(request).TemplateResponse(
        request, name, values, status_code=status_code, headers=headers
    )
    if flash_message is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    _compress(request, response)
    return response


def _compress(request: Request, response: HTMLResponse) -> None:
    """gzip for a large page (a chart of the full history is ~0.5 MB of numbers, ~1/5 of
    that compressed); level 1, which costs a few ms where level 9 would cost tens."""
    response.headers.append("Vary", "Accept-Encoding")
    if len(response.body) < GZIP_MIN_BYTES:
        return
    if "gzip" not in request.headers.get("accept-encoding", ""):
        return
    response.body = gzip.compress(response.body, compresslevel=1)
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Content-Length"] = str(len(response.body))


def flash(response: Response, message: str, level: str = "info") -> Response:
    """A message for the next page the browser loads (after a redirect, say)."""
    if level not in FLASH_LEVELS:
        raise ValueError(f"flash level must be one of {FLASH_LEVELS}")
    response.set_cookie(
        FLASH_COOKIE, quote(f"{level}:{message}"), max_age=60, path="/", samesite="lax"
    )
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    level, _, message = unquote(raw).partition(":")
    if level not in FLASH_LEVELS or not message:
        return None
    return {"level": level, "message": message}
