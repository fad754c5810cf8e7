"""Prometheus metrics shared by every role, and the HTTP middleware that records them.

The middleware is plain ASGI (no BaseHTTPMiddleware) so it adds little to each request. It
also assigns the request id (``X-Request-ID``, taken from the client when sane) and writes one
access log line per request.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
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


def metrics_endpoint(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
