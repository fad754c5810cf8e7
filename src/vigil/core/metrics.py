"""Prometheus metrics shared by every role, and the HTTP middleware that records them.

The middleware is plain ASGI (no BaseHTTPMiddleware) so it adds little to each request. It
also assigns the request id (``X-Request-ID``, taken from the client when sane) and writes one
access log line per request.

Several API processes (``vigil api --workers N``) use prometheus_client's multiprocess mode:
``vigil api`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, every worker writes
its samples to files there, and a scrape of any worker reads them all, so it reports the sum
over the processes. prometheus_client reads that variable itself (it is its contract, not a
Vigil setting); this module only follows it. In that mode a Gauge needs a ``multiprocess_mode``
that says how the processes' values combine, and custom collectors (process_*, python_gc_*)
are not exported.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.logging import request_id_var

access_log = logging.getLogger("vigil.access")

HTTP_REQUESTS = Counter(
    "vigil_http_requests_total",
    "HTTP requests by method, route and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "vigil_http_request_duration_seconds",
    "HTTP request latency by method and route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_ERRORS = Counter(
    "vigil_http_request_errors_total",
    "HTTP responses with status >= 400, by route and status.",
    ["method", "route", "status"],
)

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


def _new_request_id() -> str:
    # Unique, not secret: 128 random bits without a system call per request (uuid4 reads
    # os.urandom, a measurable share of a cached answer).
    return f"{random.getrandbits(128):032x}"


_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}


def _record(method: str, route: str, status: int, elapsed: float) -> None:
    """Counts one request. The labelled children are looked up once per (method, route,
    status) and kept: ``labels()`` takes a lock and builds a key on every call."""
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        errors = HTTP_ERRORS.labels(method, route, str(status)) if status >= 400 else None
        children = _children[key] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_LATENCY.labels(method, route),
            errors,
        )
    requests, latency, errors = children
    requests.inc()
    latency.observe(elapsed)
    if errors is not None:
        errors.inc()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else _new_request_id()
        token = request_id_var.set(request_id)
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route, method = _route_template(scope), scope["method"]
            _record(method, route, status, elapsed)
            access_log.info(
                "%s %s %d %.1fms",
                method,
                scope["path"],
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The multiprocess directory when prometheus_client runs in multiprocess mode, else None."""
    return os.environ.get(MULTIPROC_DIR_ENV) or None


def mark_this_process_dead() -> None:
    """Drops this process's files of ``live*`` gauges (prometheus_client's bookkeeping for a
    worker that exits); does nothing outside multiprocess mode."""
    if path := multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


@contextmanager
def multiprocess_metrics() -> Iterator[Path]:
    """Multiprocess mode for the worker processes started inside this block (the parent of
    ``vigil api --workers N``). It must be entered before they start: prometheus_client picks
    its mode when a process first imports it.

    Without ``PROMETHEUS_MULTIPROC_DIR``, a new private directory (``tempfile.mkdtemp``, so
    empty and this run's alone) is created, exported to the workers and removed on the way
    out. If the operator set the variable, that directory is used (created if missing) and
    kept, but emptied of prometheus_client's ``*.db`` files first: a previous run's files
    would add its old counts to every scrape. Either way give each ``vigil api`` a directory
    of its own.
    """
    given = multiprocess_dir()
    if given is not None:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="vigil-api-metrics-"))
    os.environ[MULTIPROC_DIR_ENV] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_DIR_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def metrics_endpoint(_request: Request) -> Response:
    if path := multiprocess_dir():
        # A fresh registry per scrape, as prometheus_client documents: it reads every
        # process's files, so the answer is the sum over all workers, whichever one serves it.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
