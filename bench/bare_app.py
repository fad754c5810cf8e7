"""A bare FastAPI app for bench/cached_rates.sh: the ceiling the cached rates API is compared
with. No Vigil code and no middleware (no request ids, metrics, access log, rate limiting or
database session): each route returns bytes read once at start-up, as ``application/json``
like the rates API.

Every environment variable ``BARE_FILE_<NAME>=<path>`` becomes ``GET /<name>`` (lower case)
answering the file's bytes, e.g. ``BARE_FILE_MONTH=/tmp/month.json`` serves ``GET /month``:
an ``async def`` endpoint, the ceiling. ``GET /<name>/sync`` answers the same from a plain
``def`` endpoint, which Starlette runs in its thread pool, as it runs Vigil's endpoints and
their (sync) dependencies.

    BARE_FILE_MONTH=month.json .venv/bin/python -m uvicorn --app-dir bench bare_app:app \\
        --host 127.0.0.1 --port 8001 --no-access-log --log-level warning
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from fastapi import FastAPI, Response

PREFIX = "BARE_FILE_"


def _async_route(body: bytes) -> Callable[[], Awaitable[Response]]:
    async def answer() -> Response:
        return Response(body, media_type="application/json")

    return answer


def _sync_route(body: bytes) -> Callable[[], Response]:
    def answer() -> Response:
        return Response(body, media_type="application/json")

    return answer


def create_app(environ: Mapping[str, str] | None = None) -> FastAPI:
    env: Mapping[str, str] = os.environ if environ is None else environ
    files = {k[len(PREFIX) :].lower(): v for k, v in env.items() if k.startswith(PREFIX)}
    if not files:
        raise RuntimeError(f"set at least one {PREFIX}<NAME>=<path> environment variable")
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for name, path in sorted(files.items()):
        body = Path(path).read_bytes()
        app.add_api_route(f"/{name}", _async_route(body), methods=["GET"])
        app.add_api_route(f"/{name}/sync", _sync_route(body), methods=["GET"])
    return app


app = create_app()
