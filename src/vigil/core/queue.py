"""Jobs run on demand (event triggers, the watchdog), away from the caller's thread.

The embedded mode runs them on one background thread of this process. Pending runs of a job
whose spec has ``merge`` are coalesced, and a job with ``settle_seconds`` waits for a quiet
moment before it starts: the thousands of events of a backfill become a few runs that each
cover everything asked so far, instead of runs that fight the backfill for the database.
In the distributed mode, :class:`RoutedJobQueue` sends jobs of other queues to Celery
(``core.worker``); a worker keeps the jobs of its own queues that events trigger here, so they
coalesce the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace

from vigil.core import tracing
from vigil.core.events import EventBus, Payload
from vigil.core.jobs import JobRegistry, JobRunner

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    def enqueue(self, name: str, params: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Trigger:
    """Run job ``job`` whenever ``topic`` is published, with parameters made from the
    event's payload (``params``); declared by modules, wired by core."""

    topic: str
    job: str
    params: Callable[[Payload], dict[str, Any]]


def wire_triggers(events: EventBus, queue: JobQueue, triggers: tuple[Trigger, ...]) -> None:
    for trigger in triggers:

        def enqueue(_topic: str, payload: Payload, t: Trigger = trigger) -> None:
            queue.enqueue(t.job, t.params(payload))

        # One process of those that run the job reacts to each event, not all of them.
        events.subscribe(trigger.topic, enqueue, group=f"trigger:{trigger.job}")


class RoutedJobQueue:
    """Sends each job where it runs: jobs of the queues this process serves (``local_queues``,
    None = all of them) to its in-process queue, the others to the broker (``remote``)."""

    def __init__(
        self,
        registry: JobRegistry,
        local: JobQueue,
        remote: JobQueue | None,
        local_queues: frozenset[str] | None,
    ) -> None:
        self._registry = registry
        self._local, self._remote = local, remote
        self.local_queues = local_queues

    def runs_here(self, name: str) -> bool:
        if self._remote is None or self.local_queues is None:
            return True
        return self._registry.get(name).queue in self.local_queues

    def enqueue(self, name: str, params: dict[str, Any]) -> None:
        target = self._local if self.runs_here(name) or self._remote is None else self._remote
        target.enqueue(name, params)

    def close(self) -> None:
        close = getattr(self._remote, "close", None)
        if close is not None:
            close()


@dataclass
class _Pending:
    name: str
    params: dict[str, Any]
    first: float  # monotonic time of the first request merged into this run
    last: float  # ... and of the latest one
    #: With tracing on: the trace context of the first request (the run continues it) and
    #: the spans of the requests merged into it later (linked to the run).
    context: Any = None
    links: list[trace.Link] = field(default_factory=list)


class InProcessJobQueue:
    def __init__(
        self,
        runner: JobRunner,
        registry: JobRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runner = runner
        self._registry = registry
        self._clock = clock
        self._pending: list[_Pending] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False

    def enqueue(self, name: str, params: dict[str, Any]) -> None:
        spec = self._registry.get(name)  # unknown names fail here, at the caller
        now = self._clock()
        traced = tracing.enabled()
        with self._wake:
            for item in self._pending:
                if item.name == name and spec.merge is not None:
                    item.params = spec.merge(item.params, params)
                    item.last = now
                    if traced:
                        caller = trace.get_current_span().get_span_context()
                        if caller.is_valid:
                            item.links.append(trace.Link(caller))
                    break
            else:
                context = otel_context.get_current() if traced else None
                self._pending.append(_Pending(name, dict(params), now, now, context))
            self._wake.notify_all()

    def backlog(self) -> dict[str, int]:
        """Runs waiting to start, per queue (the run in progress is not waiting)."""
        counts: dict[str, int] = {}
        with self._wake:
            for item in self._pending:
                queue = self._registry.get(item.name).queue
                counts[queue] = counts.get(queue, 0) + 1
        return counts

    def pending(self) -> list[tuple[str, dict[str, Any]]]:
        with self._wake:
            return [(item.name, item.params) for item in self._pending]

    def _ready_at(self, item: _Pending) -> float:
        spec = self._registry.get(item.name)
        if spec.settle_seconds <= 0:
            return item.last
        quiet = item.last + spec.settle_seconds
        if spec.max_delay_seconds > 0:
            return min(quiet, item.first + spec.max_delay_seconds)
        return quiet

    def _take_locked(self, ignore_settle: bool) -> tuple[_Pending | None, float | None]:
        """With the lock held: the first pending run that may start now (marked busy), else
        the time the next one may."""
        now = self._clock()
        soonest: float | None = None
        for index, item in enumerate(self._pending):
            ready_at = self._ready_at(item)
            if ignore_settle or ready_at <= now:
                self._busy = True
                return self._pending.pop(index), None
            soonest = ready_at if soonest is None else min(soonest, ready_at)
        return None, soonest

    def _done(self) -> None:
        with self._wake:
            self._busy = False
            self._wake.notify_all()

    def _run(self, item: _Pending) -> None:
        try:
            provider = tracing.provider()
            if provider is None or item.context is None:
                self._runner.run(item.name, item.params)
                return
            # The run continues the trace of the request (an event's handler, an API call)
            # that queued it, on this queue's thread.
            tracer = provider.get_tracer(__name__)
            with tracer.start_as_current_span(
                f"run {item.name}",
                context=item.context,
                links=item.links,
                attributes={"vigil.job": item.name},
            ):
                self._runner.run(item.name, item.params)
        finally:
            self._done()

    def drain(self) -> int:
        """Runs every pending job now, in the calling thread (CLI commands, tests).
        Returns the number of runs."""
        runs = 0
        while True:
            with self._wake:
                item = self._take_locked(ignore_settle=True)[0]
            if item is None:
                return runs
            self._run(item)
            runs += 1

    def wait_idle(self, timeout: float) -> bool:
        """Waits until nothing is pending or running."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._pending and not self._busy, timeout)

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="vigil-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                # Checking and waiting under one lock: an enqueue can't slip in between.
                item, soonest = self._take_locked(ignore_settle=False)
                while item is None and not self._stopping:
                    timeout = None if soonest is None else max(0.0, soonest - self._clock())
                    self._wake.wait(timeout)
                    item, soonest = self._take_locked(ignore_settle=False)
                if item is None or self._stopping:
                    if item is not None:  # stopping: leave it for the next start
                        self._pending.insert(0, item)
                        self._busy = False
                    return
            try:
                self._run(item)
            except Exception:  # the runner records failures; this guards the thread
                log.exception("queued job %s could not run", item.name)
