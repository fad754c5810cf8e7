"""Jobs queued in process continue the trace of what queued them (vigil.core.queue with
tracing on): an event delivered over Redis triggers a job on this process's queue; the run span
is the child of the event's consumer span, the job's SQL descends from it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from vigil.core import tracing
from vigil.core.events import RedisEventBus
from vigil.core.jobs import JobContext, JobRegistry, JobResult, JobRunner, JobSpec
from vigil.core.queue import InProcessJobQueue, Trigger, wire_triggers
from vigil.core.runtime import Runtime
from vigil.settings import Settings


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.setup(Settings(), "worker", exporter=exporter)
    yield exporter
    tracing.shutdown()


def test_an_event_triggered_job_runs_inside_the_trace(
    tmp_path: Path, shared_redis: str, spans: InMemorySpanExporter
) -> None:
    runtime = Runtime.create(Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}"))
    runtime.migrate()
    registry = JobRegistry()

    def job(ctx: JobContext) -> JobResult:
        return JobResult()

    registry.add(JobSpec(name="test.traced", func=job))
    runner = JobRunner(runtime.db, runtime.settings, runtime.events, registry)
    queue = InProcessJobQueue(runner, registry)
    topic = f"test.q.{uuid.uuid4().hex[:8]}"
    bus = RedisEventBus(shared_redis)
    wire_triggers(bus, queue, (Trigger(topic, "test.traced", dict),))
    bus.start()
    assert bus.subscribed.wait(5)
    queue.start()
    try:
        tracer = trace.get_tracer("t", tracer_provider=tracing.provider())
        with tracer.start_as_current_span("POST /x", kind=SpanKind.SERVER) as request:
            RedisEventBus(shared_redis).publish(topic, {"a": 1})
        deadline = time.monotonic() + 10
        while not [s for s in spans.get_finished_spans() if s.name == "run test.traced"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert queue.wait_idle(10)
    finally:
        queue.stop()
        bus.stop()
        runtime.close()
    finished = spans.get_finished_spans()
    (process,) = [s for s in finished if s.name == f"{topic} process"]
    (run,) = [s for s in finished if s.name == "run test.traced"]
    assert run.parent is not None
    assert run.parent.span_id == process.context.span_id
    assert run.context.trace_id == request.get_span_context().trace_id
    # The job's SQL (its jobs_log row) is in the same trace, below the run.
    sql = [
        s
        for s in finished
        if s.attributes
        and "db.statement" in s.attributes
        and s.context.trace_id == run.context.trace_id
    ]
    assert sql
