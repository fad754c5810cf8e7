"""Traces across the Redis event bus (vigil.core.events with vigil.core.tracing), on a real
Redis with the SDK's in-memory exporter: an event published while a request is served carries
its W3C traceparent; the listening process handles it in a consumer span, child of the
publish span, child of the request; a job the event triggers is sent to Celery (a real Redis
broker) as a child of that consumer span — the link tests/e2e/test_trace_through_worker.py
follows into the worker. With tracing off the messages carry no trace and nothing is traced."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from vigil.core import tracing
from vigil.core.events import RedisEventBus
from vigil.core.jobs import JobContext, JobRegistry, JobResult, JobSpec
from vigil.core.queue import Trigger, wire_triggers
from vigil.core.worker import CeleryJobQueue
from vigil.settings import Settings


class Inbox:
    """Records each event with the span context current in its handler."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, Any], trace.SpanContext]] = []
        self.arrived = threading.Event()

    def __call__(self, _topic: str, payload: dict[str, Any]) -> None:
        self.events.append((payload, trace.get_current_span().get_span_context()))
        self.arrived.set()


@pytest.fixture
def topic() -> str:
    return f"test.trace.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.setup(Settings(), "api", exporter=exporter)
    yield exporter
    tracing.shutdown()


@pytest.fixture
def listener(shared_redis: str) -> Iterator[list[RedisEventBus]]:
    buses: list[RedisEventBus] = []
    yield buses
    for bus in buses:
        bus.stop()


def listening(bus: RedisEventBus, buses: list[RedisEventBus]) -> RedisEventBus:
    buses.append(bus)
    bus.start()
    assert bus.subscribed.wait(5), "the listener did not subscribe"
    return bus


def raw_messages(url: str, channel: str) -> Any:
    pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=2) is None  # the subscription's confirmation
    return pubsub


def one(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in spans.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in spans.get_finished_spans()]
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_an_event_continues_the_trace_of_the_request_that_published_it(
    shared_redis: str, topic: str, spans: InMemorySpanExporter, listener: list[RedisEventBus]
) -> None:
    inbox = Inbox()
    consumer = RedisEventBus(shared_redis)
    consumer.subscribe(topic, inbox)
    listening(consumer, listener)
    raw = raw_messages(shared_redis, topic)
    publisher = RedisEventBus(shared_redis)
    tracer = trace.get_tracer("test", tracer_provider=tracing.provider())

    with tracer.start_as_current_span(
        "POST /api/v1/network/devices", kind=SpanKind.SERVER
    ) as request:
        publisher.publish(topic, {"device": 7})
    assert inbox.arrived.wait(5)

    request_ctx = request.get_span_context()
    publish = one(spans, f"{topic} publish")
    assert publish.kind == SpanKind.PRODUCER
    assert parent_of(publish) == request_ctx.span_id
    # The message carries the publish span's context in W3C form; the payload is untouched.
    message = orjson.loads(raw.get_message(timeout=2)["data"])
    raw.close()
    traceparent = message["trace"]["traceparent"]
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, trace_id) == ("00", f"{request_ctx.trace_id:032x}")
    assert span_id == f"{publish.context.span_id:016x}"
    assert int(flags, 16) & 1  # sampled
    assert message["payload"] == {"device": 7}
    # The listener's thread handled it inside a consumer span, child of the publish span.
    process = one(spans, f"{topic} process")
    assert process.kind == SpanKind.CONSUMER
    assert parent_of(process) == publish.context.span_id
    assert process.context.trace_id == request_ctx.trace_id
    assert process.attributes is not None
    assert process.attributes["messaging.destination.name"] == topic
    ((payload, handled_in),) = inbox.events
    assert handled_in.span_id == process.context.span_id
    assert "trace" not in payload
    # Redis' own PUBLISH span sits under the publish span too.
    redis_publish = [s for s in spans.get_finished_spans() if s.name == "PUBLISH"]
    assert [parent_of(s) for s in redis_publish] == [publish.context.span_id]


def never_run(_ctx: JobContext) -> JobResult:
    raise AssertionError("no worker consumes this test's queue")


def test_a_job_triggered_by_the_event_is_sent_within_the_trace(
    shared_redis: str, topic: str, spans: InMemorySpanExporter, listener: list[RedisEventBus]
) -> None:
    # The trigger wiring of a real process: the event enqueues a job on Celery (real Redis
    # broker, a queue of its own nobody consumes; the message is removed afterwards).
    queue_name = f"test-trace-{uuid.uuid4().hex[:8]}"
    registry = JobRegistry()
    registry.add(JobSpec(name="test.traced", func=never_run, queue=queue_name))
    celery = CeleryJobQueue(Settings(redis_url=shared_redis), registry)
    consumer = RedisEventBus(shared_redis)
    sent = Inbox()
    wire_triggers(consumer, celery, (Trigger(topic, "test.traced", dict),))
    consumer.subscribe(topic, sent)
    listening(consumer, listener)
    tracer = trace.get_tracer("test", tracer_provider=tracing.provider())
    try:
        with tracer.start_as_current_span("POST /api/v1/x", kind=SpanKind.SERVER) as request:
            RedisEventBus(shared_redis).publish(topic, {"device": 7})
        assert sent.arrived.wait(5)
        process = one(spans, f"{topic} process")
        apply = [s for s in spans.get_finished_spans() if s.name == "apply_async/vigil.run_job"]
        assert len(apply) == 1, [s.name for s in spans.get_finished_spans()]
        assert apply[0].kind == SpanKind.PRODUCER
        assert parent_of(apply[0]) == process.context.span_id
        assert apply[0].context.trace_id == request.get_span_context().trace_id
    finally:
        celery.close()
        redis.Redis.from_url(shared_redis).delete(queue_name)


def test_tracing_off_adds_nothing(
    shared_redis: str, topic: str, listener: list[RedisEventBus]
) -> None:
    assert not tracing.enabled()
    inbox = Inbox()
    consumer = RedisEventBus(shared_redis)
    consumer.subscribe(topic, inbox)
    listening(consumer, listener)
    raw = raw_messages(shared_redis, topic)
    RedisEventBus(shared_redis).publish(topic, {"device": 7})
    assert inbox.arrived.wait(5)
    message = orjson.loads(raw.get_message(timeout=2)["data"])
    raw.close()
    assert set(message) == {"id", "topic", "payload"}
    ((_, handled_in),) = inbox.events
    assert not handled_in.is_valid  # no span current in the handler


def test_a_message_with_a_trace_is_handled_untraced_when_tracing_is_off(
    shared_redis: str, topic: str, listener: list[RedisEventBus]
) -> None:
    # A publisher with tracing on, a listener without: the trace field is ignored.
    inbox = Inbox()
    consumer = RedisEventBus(shared_redis)
    consumer.subscribe(topic, inbox)
    listening(consumer, listener)
    body = {
        "id": uuid.uuid4().hex,
        "topic": topic,
        "payload": {"device": 7},
        "trace": {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"},
    }
    redis.Redis.from_url(shared_redis).publish(topic, orjson.dumps(body))
    assert inbox.arrived.wait(5)
    ((payload, handled_in),) = inbox.events
    assert payload["device"] == 7
    assert "trace" not in payload
    assert not handled_in.is_valid
