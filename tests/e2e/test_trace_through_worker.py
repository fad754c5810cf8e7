"""One trace across processes: a job sent while a span is current (as the API or the scheduler
sends it) is run by a real `vigil worker` that continues that trace — its Celery run span is
the child of the sender's publish span, its SQL statements descend from the run — exported by
the worker over OTLP/HTTP (OTEL_* variables only) to a receiver in this test, and the
worker's JSON log lines about the job carry the trace id."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.e2e.conftest import stop_process, tail, vigil_command, wait_for
from tests.support.redis_server import PrivateRedis
from vigil.core import tracing
from vigil.core.runtime import Runtime
from vigil.settings import Settings

pytestmark = pytest.mark.e2e


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on loopback: keeps every span it is sent."""

    def __init__(self) -> None:
        received: list[Span] = []
        self.spans = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        received.extend(scope.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.close()


@pytest.fixture
def sender_spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.setup(Settings(), "api", exporter=exporter)
    yield exporter
    tracing.shutdown()


def test_a_job_continues_the_trace_that_sent_it(
    tmp_path: Path,
    private_redis: PrivateRedis,
    receiver: OtlpReceiver,
    sender_spans: InMemorySpanExporter,
) -> None:
    database = f"sqlite:///{tmp_path / 'vigil.db'}"
    settings = Settings(database_url=database, redis_url=private_redis.url)
    sender = Runtime.create(settings, role="api")
    sender.migrate()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "OTEL_"))}
    env |= {
        "VIGIL_DATABASE_URL": database,
        "VIGIL_REDIS_URL": private_redis.url,
        "VIGIL_LOG_FORMAT": "json",
        "VIGIL_HOST": "127.0.0.1",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    stderr_path = tmp_path / "worker.stderr"
    with stderr_path.open("wb") as stderr:
        worker = subprocess.Popen(
            [*vigil_command(), "worker", "-Q", "analytics", "--metrics-port", "0"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        tracer = tracing.provider().get_tracer("test")  # type: ignore[union-attr]
        with tracer.start_as_current_span("POST /api/v1/…", kind=SpanKind.SERVER) as request:
            sender.dispatch.enqueue("markets.signals.watchdog", {})
        trace_id = request.get_span_context().trace_id
        (publish,) = [s for s in sender_spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
        assert publish.name == "apply_async/vigil.run_job"
        assert publish.parent is not None
        assert publish.parent.span_id == request.get_span_context().span_id

        def run_span() -> Span | None:
            assert worker.poll() is None, tail(stderr_path)
            runs = [s for s in receiver.spans if s.name == "run/vigil.run_job"]
            return runs[0] if runs else None

        run = wait_for(
            run_span, timeout=60, what="its run span", diagnostics=lambda: tail(stderr_path)
        )
        assert int.from_bytes(run.trace_id, "big") == trace_id
        assert int.from_bytes(run.parent_span_id, "big") == publish.context.span_id

        def sql_spans() -> list[Span] | None:
            spans = [s for s in receiver.spans if s.trace_id == run.trace_id and s != run]
            return spans or None

        children = wait_for(sql_spans, timeout=30, what="the job's SQL spans")
        by_id = {s.span_id: s for s in receiver.spans}
        for span in children:
            chain, node = [], span
            while node.parent_span_id in by_id:
                node = by_id[node.parent_span_id]
                chain.append(node.span_id)
            assert run.span_id in chain or span.parent_span_id == run.span_id, span.name
        assert any(a.key == "db.statement" for s in children for a in s.attributes), [
            s.name for s in children
        ]
    finally:
        stop_process(worker)
        sender.close()
    hex_id = f"{trace_id:032x}"
    lines = [json.loads(x) for x in stderr_path.read_text().splitlines() if x.strip()]
    traced = [line for line in lines if line.get("trace_id") == hex_id]
    assert traced, "no worker log line carries the trace id"
    assert any("markets.signals.watchdog" in json.dumps(line) for line in traced)
