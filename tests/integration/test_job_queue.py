"""The in-process job queue: coalescing, waiting for a quiet moment, draining."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TransactionalDatabase
from vigil.core.events import InProcessEventBus
from vigil.core.jobs import JobContext, JobRegistry, JobResult, JobRunner, JobSpec
from vigil.core.queue import InProcessJobQueue, Trigger, wire_triggers
from vigil.settings import Settings


def union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {"items": sorted(set(a["items"]) | set(b["items"]))}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, dict[str, Any]]] = []
        self.ran = threading.Event()

    def __call__(self, ctx: JobContext) -> JobResult:
        self.calls.append((time.monotonic(), ctx.params))
        self.ran.set()
        if ctx.params.get("explode"):
            raise RuntimeError("boom")
        return JobResult()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def queue(db: TransactionalDatabase, recorder: Recorder) -> Iterator[InProcessJobQueue]:
    registry = JobRegistry()
    registry.extend(
        [
            JobSpec("q.merge", recorder, merge=union),
            JobSpec("q.plain", recorder),
            JobSpec("q.settle", recorder, merge=union, settle_seconds=0.5, max_delay_seconds=0.8),
        ]
    )
    runner = JobRunner(db, Settings(), InProcessEventBus(), registry)
    q = InProcessJobQueue(runner, registry)
    yield q
    q.stop()


def test_pending_runs_of_a_mergeable_job_coalesce(queue: InProcessJobQueue) -> None:
    queue.enqueue("q.merge", {"items": ["b"]})
    queue.enqueue("q.merge", {"items": ["a", "b"]})
    queue.enqueue("q.plain", {"n": 1})
    queue.enqueue("q.plain", {"n": 2})
    assert queue.pending() == [
        ("q.merge", {"items": ["a", "b"]}),
        ("q.plain", {"n": 1}),
        ("q.plain", {"n": 2}),
    ]


def test_drain_runs_everything_now(queue: InProcessJobQueue, recorder: Recorder) -> None:
    queue.enqueue("q.settle", {"items": ["x"]})
    queue.enqueue("q.plain", {"n": 1})
    assert queue.drain() == 2
    assert [params for _, params in recorder.calls] == [{"items": ["x"]}, {"n": 1}]
    assert queue.pending() == []


def test_unknown_job_is_refused_at_enqueue(queue: InProcessJobQueue) -> None:
    with pytest.raises(KeyError, match=r"q\.merge"):
        queue.enqueue("q.nope", {})


def test_background_thread_runs_jobs_and_survives_failures(
    queue: InProcessJobQueue, recorder: Recorder
) -> None:
    queue.start()
    queue.enqueue("q.plain", {"explode": True})
    queue.enqueue("q.plain", {"n": 2})
    assert queue.wait_idle(5)
    assert [params for _, params in recorder.calls] == [{"explode": True}, {"n": 2}]


def test_a_burst_waits_for_a_quiet_moment_then_runs_once(
    queue: InProcessJobQueue, recorder: Recorder
) -> None:
    queue.start()
    start = time.monotonic()
    for item in "abc":
        queue.enqueue("q.settle", {"items": [item]})
        time.sleep(0.05)
    assert queue.wait_idle(5)
    ((ran_at, params),) = recorder.calls
    assert params == {"items": ["a", "b", "c"]}
    assert ran_at - start >= 0.1 + 0.5  # after the last request plus the quiet period


def test_a_steady_stream_still_runs_every_max_delay(
    queue: InProcessJobQueue, recorder: Recorder
) -> None:
    queue.start()
    start = time.monotonic()
    while time.monotonic() - start < 2.0:  # never quiet for 0.5 s
        queue.enqueue("q.settle", {"items": [str(time.monotonic())]})
        time.sleep(0.05)
    assert queue.wait_idle(5)
    assert len(recorder.calls) >= 2  # at least one run during the stream, one after
    assert recorder.calls[0][0] - start < 1.8  # max_delay (0.8 s), not the end of the stream


def test_triggers_turn_events_into_queued_runs(queue: InProcessJobQueue) -> None:
    bus = InProcessEventBus()
    wire_triggers(
        bus, queue, (Trigger("thing.happened", "q.merge", lambda event: {"items": [event["id"]]}),)
    )
    bus.publish("thing.happened", {"id": "1"})
    bus.publish("thing.happened", {"id": "2"})
    bus.publish("other.topic", {"id": "3"})
    assert queue.pending() == [("q.merge", {"items": ["1", "2"]})]
