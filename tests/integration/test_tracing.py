"""Traces (vigil.core.tracing) in process, with the SDK's in-memory exporter: off by default
(nothing installed); on, a request is one server span whose SQL statements are its
descendants, and every log line written while it is served carries its trace id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from vigil.core import tracing
from vigil.core.api import create_app
from vigil.core.logging import JsonFormatter
from vigil.core.runtime import Runtime
from vigil.settings import Settings


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.setup(Settings(), "api", exporter=exporter)
    yield exporter
    tracing.shutdown()
    assert not tracing.enabled()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("vigil.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    yield out
    access.removeHandler(handler)
    access.setLevel(level)


def migrated_runtime(tmp_path: Path) -> Runtime:
    runtime = Runtime.create(Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}"), role="api")
    runtime.migrate()
    return runtime


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def test_tracing_is_off_by_default(tmp_path: Path, json_log: io.StringIO) -> None:
    assert Settings().otel_traces_exporter == "none"
    runtime = migrated_runtime(tmp_path)
    assert not tracing.enabled()
    app = create_app(runtime)
    assert app.build_middleware_stack.__name__ != "build_traced"
    assert TestClient(app).get("/api/v1/markets/sources").status_code == 200
    (line,) = [json.loads(x) for x in json_log.getvalue().splitlines()]
    assert "trace_id" not in line
    runtime.close()


def test_a_request_is_one_trace_down_to_its_sql(
    tmp_path: Path, spans: InMemorySpanExporter, json_log: io.StringIO
) -> None:
    runtime = migrated_runtime(tmp_path)
    client = TestClient(create_app(runtime))
    spans.clear()
    assert client.get("/api/v1/markets/sources").status_code == 200
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (server,) = [s for s in finished if s.kind == SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/api/v1/markets/sources"
    sql = [s for s in finished if s.attributes and "db.statement" in s.attributes]
    assert sql, [s.name for s in finished]
    for statement in sql:
        assert statement.context.trace_id == server.context.trace_id
        assert server in ancestors(statement, by_id)
    # The access line written inside the request carries the trace and its server span.
    (line,) = [json.loads(x) for x in json_log.getvalue().splitlines()]
    assert line["trace_id"] == f"{server.context.trace_id:032x}"
    assert int(line["span_id"], 16) in by_id
    # Probes and scrapes make no spans.
    spans.clear()
    client.get("/health")
    client.get("/metrics")
    assert spans.get_finished_spans() == ()
    runtime.close()
