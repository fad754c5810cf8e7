"""Issue #10: the cost of carrying the trace over the Redis event bus (vigil.core.events), off
(the default: must be ~0) and on.

    .venv/bin/python -m pytest bench/test_bench_event_tracing.py -p no:cacheprovider \
        --benchmark-only -s

- ``publish``: RedisEventBus.publish of a small payload to the local Redis (127.0.0.1:6379, a
  channel nobody listens to), BATCH per round. ``before`` is the same bus as it was before the
  trace rode on events (vigil/core/events.py of commit e241e35, loaded from git), ``off`` and
  ``on`` the current one; on = tracing set up as OTEL_TRACES_EXPORTER=otlp does
  (BatchSpanProcessor) with an exporter that drops the spans, publishing inside a span.
- ``deliver``: the listener's hand-over of one received message to a no-op handler (parse,
  extract the context, consumer span), without Redis, BATCH per round.

The figure: the fastest of ROUNDS rounds / BATCH (the machine is shared), the median beside it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
import redis
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from pytest_benchmark.fixture import BenchmarkFixture

from vigil.core import events, tracing
from vigil.settings import Settings

BATCH = 2000
ROUNDS = 15
REDIS_URL = "redis://127.0.0.1:6379/0"
BEFORE = "e241e35"  # the last commit before the trace rode on events
PAYLOAD = {"type": "currency", "asset": "USD", "from": "2024-01-02", "to": "2024-01-31", "rows": 21}


class Drop(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def old_events() -> ModuleType:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        ["git", "show", f"{BEFORE}:src/vigil/core/events.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"commit {BEFORE} is not in this clone")
    spec = importlib.util.spec_from_loader("vigil_events_before", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    # Its metrics would clash with the current module's in the default registry.
    source = done.stdout.replace('"vigil_events_', '"bench_before_vigil_events_')
    exec(compile(source, "events_before.py", "exec"), module.__dict__)
    sys.modules.setdefault("vigil_events_before", module)
    return module


@pytest.fixture(scope="module")
def before() -> ModuleType:
    return old_events()


@pytest.fixture
def traced() -> Iterator[None]:
    assert tracing.setup(Settings(), "api", exporter=Drop(), batch=True)
    yield
    tracing.shutdown()


def run_rounds(benchmark: BenchmarkFixture, one_round: Any, label: str) -> None:
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    stats = benchmark.stats.stats
    print(
        f"\n{label}: {stats.min / BATCH * 1e6:.1f} µs per event "
        f"(median {stats.median / BATCH * 1e6:.1f} µs)"
    )


def publisher(bus_class: Any) -> Any:
    bus = bus_class(REDIS_URL)
    topic = f"bench.{uuid.uuid4().hex[:8]}"

    def one_round() -> None:
        for _ in range(BATCH):
            bus.publish(topic, PAYLOAD)

    return one_round


def test_publish_before(benchmark: BenchmarkFixture, before: ModuleType) -> None:
    redis.Redis.from_url(REDIS_URL).ping()
    run_rounds(benchmark, publisher(before.RedisEventBus), "publish, before")


def test_publish_off(benchmark: BenchmarkFixture) -> None:
    assert not tracing.enabled()
    run_rounds(benchmark, publisher(events.RedisEventBus), "publish, tracing off")


def test_publish_on(benchmark: BenchmarkFixture, traced: None) -> None:
    one = publisher(events.RedisEventBus)
    tracer = tracing.provider().get_tracer("bench")  # type: ignore[union-attr]

    def in_a_span() -> None:
        with tracer.start_as_current_span("POST /api/v1/x"):
            one()

    run_rounds(benchmark, in_a_span, "publish, tracing on")


def deliverer(bus_module: Any, traced_message: bool) -> Any:
    bus = bus_module.RedisEventBus(REDIS_URL)
    topic = "bench.deliver"
    bus.subscribe(topic, lambda _t, _p: None)
    body: dict[str, Any] = {"id": uuid.uuid4().hex, "topic": topic, "payload": PAYLOAD}
    if traced_message:
        body["trace"] = {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"}
    message = {"channel": topic.encode(), "data": orjson.dumps(body)}
    topics = {topic: topic}

    def one_round() -> None:
        for _ in range(BATCH):
            bus._deliver(topics, message)

    return one_round


def test_deliver_before(benchmark: BenchmarkFixture, before: ModuleType) -> None:
    run_rounds(benchmark, deliverer(before, False), "deliver, before")


def test_deliver_off(benchmark: BenchmarkFixture) -> None:
    run_rounds(benchmark, deliverer(events, True), "deliver, tracing off (trace field ignored)")


def test_deliver_on(benchmark: BenchmarkFixture, traced: None) -> None:
    run_rounds(benchmark, deliverer(events, True), "deliver, tracing on")
