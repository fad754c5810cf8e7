"""Where jobs go in each role: the process's own queue, or the broker's queue named by the
job's spec (a real Redis, read back with the Celery message format's task name)."""

from __future__ import annotations

from typing import Any

import orjson
import redis

from tests.support.redis_server import PrivateRedis
from vigil.core.jobs import JobContext, JobRegistry, JobResult, JobSpec
from vigil.core.queue import RoutedJobQueue
from vigil.core.runtime import Runtime
from vigil.core.worker import TASK_NAME, CeleryJobQueue
from vigil.settings import Settings


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, name: str, params: dict[str, Any]) -> None:
        self.sent.append((name, params))


def _registry() -> JobRegistry:
    def noop(_ctx: JobContext) -> JobResult:
        return JobResult()

    registry = JobRegistry()
    registry.add(JobSpec(name="t.ingest", func=noop, queue="ingest"))
    registry.add(JobSpec(name="t.analytics", func=noop, queue="analytics"))
    return registry


def test_a_worker_keeps_the_jobs_of_its_queues_and_sends_the_rest() -> None:
    local, remote = Recorder(), Recorder()
    routed = RoutedJobQueue(_registry(), local, remote, frozenset({"analytics"}))
    routed.enqueue("t.analytics", {"a": 1})
    routed.enqueue("t.ingest", {"b": 2})
    assert local.sent == [("t.analytics", {"a": 1})]
    assert remote.sent == [("t.ingest", {"b": 2})]


def test_without_a_broker_everything_runs_here() -> None:
    local = Recorder()
    routed = RoutedJobQueue(_registry(), local, None, frozenset())
    routed.enqueue("t.ingest", {})
    assert local.sent == [("t.ingest", {})]


def test_the_celery_queue_puts_a_job_on_its_specs_queue_in_redis(
    private_redis: PrivateRedis,
) -> None:
    queue = CeleryJobQueue(Settings(redis_url=private_redis.url), _registry())
    try:
        queue.enqueue("t.ingest", {"from": "2024-01-02"})
    finally:
        queue.close()
    client = redis.Redis.from_url(private_redis.url)
    assert client.llen("analytics") == 0
    [raw] = client.lrange("ingest", 0, -1)
    message = orjson.loads(raw)
    assert message["headers"]["task"] == TASK_NAME
    assert message["headers"]["argsrepr"] == "['t.ingest', {'from': '2024-01-02'}]"


def _pending_after_an_ingest_event(runtime: Runtime) -> list[str]:
    runtime.events.publish(
        "rates.ingested",
        {"type": "currency", "asset": "USD", "from": "2024-01-02", "to": "2024-01-03", "rows": 2},
    )
    return [name for name, _params in runtime.queue.pending()]


def test_only_roles_that_run_the_brain_react_to_ingest_events(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path)  # no Redis: in-process events
    embedded = Runtime.create(settings)
    api = Runtime.create(settings, role="api")
    try:
        assert _pending_after_an_ingest_event(embedded) == [
            "markets.signals",
            "markets.alerts",
        ]
        assert _pending_after_an_ingest_event(api) == []
    finally:
        embedded.close()
        api.close()


def test_an_ingest_worker_leaves_ingest_events_to_the_analytics_workers(
    private_redis: PrivateRedis, tmp_path: Any
) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=private_redis.url)
    ingest = Runtime.create(settings, role="worker", queues=frozenset({"ingest"}))
    analytics = Runtime.create(settings, role="worker", queues=frozenset({"analytics"}))
    try:
        assert ingest.distributed
        assert analytics.distributed
        assert not ingest.dispatch.runs_here("markets.signals")
        assert analytics.dispatch.runs_here("markets.signals")
        assert not analytics.dispatch.runs_here("markets.backfill")
    finally:
        ingest.close()
        analytics.close()
