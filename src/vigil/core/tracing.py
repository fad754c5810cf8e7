"""Traces (OpenTelemetry), off by default.

``OTEL_TRACES_EXPORTER=otlp`` turns them on: every role then exports its spans over OTLP/HTTP
to where the standard variables say (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``: the SDK reads them itself, as prometheus_client
reads ``PROMETHEUS_MULTIPROC_DIR``); ``console`` prints them. Instrumented: FastAPI (a server
span per request), SQLAlchemy (a span per statement), httpx (a client span per call, with
``traceparent`` sent), Celery (the publish span on the sender, the run span on the worker,
linked through the message headers: a job continues the trace that sent it) and Redis.

Off (``none``, the default) nothing is installed: no provider, no instrumentation, no
middleware, so a request costs what it did before. Log lines carry ``trace_id`` and
``span_id`` whenever a span is current (vigil.core.logging).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import get_meter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy import Engine
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from vigil.settings import Settings

log = logging.getLogger(__name__)

#: Requests not worth a trace (probes and scrapes).
EXCLUDED_URLS = "/health,/health/ready,/metrics"


@dataclass
class _State:
    provider: TracerProvider | None = None
    engines: list[Any] = field(default_factory=list)


_state = _State()


def enabled() -> bool:
    return _state.provider is not None


def provider() -> TracerProvider | None:
    return _state.provider


def setup(
    settings: Settings, role: str, exporter: SpanExporter | None = None, *, batch: bool = False
) -> bool:
    """Installs tracing for this process once (later calls keep the first setup). With
    ``exporter`` (tests: an in-memory one) spans go there, synchronously unless ``batch``,
    whatever the settings; else ``settings.otel_traces_exporter`` decides. Returns whether
    tracing is on."""
    if _state.provider is not None:
        return True
    if exporter is not None:
        processor: Any = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    elif settings.otel_traces_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        processor = BatchSpanProcessor(OTLPSpanExporter())
    elif settings.otel_traces_exporter == "console":
        processor = BatchSpanProcessor(ConsoleSpanExporter())
    else:
        return False
    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, when set, win over this default name.
    resource = Resource.create({SERVICE_NAME: f"vigil-{role}", "vigil.role": role})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(processor)
    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider)
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    CeleryInstrumentor().instrument(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
    _state.provider = tracer_provider
    log.info("tracing on: %s spans of role %s", type(processor).__name__, role)
    return True


def instrument_engine(engine: Engine) -> None:
    """A span per SQL statement on ``engine`` (once per engine; nothing when tracing is off)."""
    if _state.provider is None or engine in _state.engines:
        return
    # The instrumentor's own instrument(engine=…) works once per process; an EngineTracer per
    # engine (what it builds) serves every engine a process (or a test run) creates.
    tracer = _state.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    usage = get_meter(__name__).create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, engine, usage, enable_commenter=False)  # type: ignore[no-untyped-call]
    _state.engines.append(engine)


def instrument_app(app: FastAPI) -> None:
    """A server span around each request (probes and scrapes excluded); nothing when tracing
    is off. OpenTelemetry's ASGI middleware (what FastAPIInstrumentor installs), outermost,
    but named cheaply: FastAPIInstrumentor names a span by matching the request against every
    route first, which cost ~0.5 ms per request here; this one starts as ``GET`` and takes the
    route template (``GET /api/v1/markets/rates``, ``http.route``) once routing found it. An
    answer served from the cache before routing keeps the plain method name."""
    if _state.provider is None:
        return
    tracer_provider = _state.provider
    build = app.build_middleware_stack

    def build_traced() -> ASGIApp:
        inner = build()

        async def named(scope: Scope, receive: Receive, send: Send) -> None:
            async def naming_send(message: Message) -> None:
                # Routing is done when the answer starts, and the span not yet ended.
                if message["type"] == "http.response.start":
                    route = getattr(scope.get("route"), "path", None)
                    if isinstance(route, str):
                        span = trace.get_current_span()
                        span.update_name(f"{scope.get('method', 'HTTP')} {route}")
                        span.set_attribute("http.route", route)
                await send(message)

            await inner(scope, receive, naming_send)

        return OpenTelemetryMiddleware(
            named,
            excluded_urls=EXCLUDED_URLS,
            default_span_details=_span_details,
            tracer_provider=tracer_provider,
            exclude_spans=["receive", "send"],
        )

    app.build_middleware_stack = build_traced  # type: ignore[method-assign]


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    return str(scope.get("method", "HTTP")), {}


def shutdown() -> None:
    """Flushes and removes tracing (process exit; tests that set it up)."""
    if _state.provider is None:
        return
    HTTPXClientInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
    CeleryInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    EngineTracer.remove_all_event_listeners()  # type: ignore[no-untyped-call]
    _state.provider.shutdown()
    _state.provider = None
    _state.engines.clear()
