"""RFC 9457 problem details: every error a client sees has this shape and a message that says
what to send instead."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil.core.logging import request_id_var

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from a service or router to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.type = status, detail, type_
        self.title = title or HTTPStatus(status).phrase
        self.extra = extra


class NotFound(Problem):
    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(404, detail, **extra)


class Conflict(Problem):
    """The request clashes with what exists (e.g. a symbol already taken)."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(409, detail, **extra)


class Unavailable(Problem):
    """An outside service the request needs did not answer; trying later may work."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(503, detail, **extra)


class BadRequest(Problem):
    """Input that parsed but makes no sense (e.g. `from` after `to`)."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(422, detail, **extra)


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _answer(request: Request, status: int, title: str, detail: str, **kwargs: Any) -> Response:
    """problem+json, or the web UI's error page when a browser asked for a page (the UI
    sets ``app.state.render_error``, which returns None for anything but a page)."""
    render_error = getattr(request.app.state, "render_error", None)
    if render_error is not None:
        page = render_error(request, status, detail)
        if page is not None:
            return cast(Response, page)
    return problem_response(request, status, title, detail, **kwargs)


def _describe(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    where = loc[0] if loc else "request"
    field = ".".join(loc[1:]) or where
    place = {"query": "query parameter", "path": "path parameter", "body": "body field"}
    label = f"{place.get(where, where)} '{field}'" if where in place else f"'{field}'"
    return f"{label}: {error.get('msg', 'invalid value')}"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return _answer(request, exc.status, exc.title, exc.detail, type_=exc.type, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(_describe(e) for e in exc.errors())
        return _answer(request, 422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No such path: {request.url.path}. The API is described at /docs."
        return _answer(
            request,
            exc.status_code,
            HTTPStatus(exc.status_code).phrase,
            detail,
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(DataError)
    async def _refused_value(request: Request, exc: DataError) -> Response:
        # The database refused a value that passed validation (PostgreSQL takes no NUL
        # character in text, say): bad input, so a 422; the transaction is rolled back.
        log.info("database refused a value on %s: %s", request.url.path, exc.orig)
        return _answer(
            request,
            422,
            "Invalid request",
            "A value was refused by the database: text may not contain NUL (\\x00) "
            "characters, and numbers must fit their field. Check the parameters and body.",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error serving %s", request.url.path)
        return _answer(
            request,
            500,
            "Internal Server Error",
            "The server hit an unexpected error; it has been logged with this request id.",
        )
