"""vigil_jobs_backlog{queue,where}: the jobs waiting in a real broker (Redis and RabbitMQ,
sent by Celery as the API and the scheduler send them, no worker consuming) and in a
process's own queue, read when /metrics is scraped; a broker that cannot be asked gives no
series, not a false zero."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.support.redis_server import PrivateRedis
from vigil.core.backlog import BACKLOG, broker_source
from vigil.core.jobs import JobSpec
from vigil.core.runtime import Runtime
from vigil.core.worker import TASK_NAME, create_celery
from vigil.settings import Settings


def backlog(queue: str, where: str) -> float | None:
    return REGISTRY.get_sample_value("vigil_jobs_backlog", {"queue": queue, "where": where})


def send(settings: Settings, queue: str, count: int) -> None:
    app = create_celery(settings)
    try:
        for i in range(count):
            app.send_task(TASK_NAME, args=["test.job", {"n": i}], queue=queue)
    finally:
        app.close()


@pytest.fixture
def watched() -> Iterator[list[object]]:
    """Sources attached during the test, detached after it."""
    stops: list[object] = []
    yield stops
    for stop in stops:
        stop()  # type: ignore[operator]


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_jobs_waiting_in_the_broker_are_counted_per_queue(
    broker: str, request: pytest.FixtureRequest, watched: list[object]
) -> None:
    if broker == "redis":
        server: PrivateRedis = request.getfixturevalue("private_redis")
        settings = Settings(redis_url=server.url)
    else:
        settings = Settings(redis_url="", broker_url=request.getfixturevalue("rabbitmq_url"))
    send(settings, "ingest", 3)
    send(settings, "collect", 1)
    app = create_celery(settings)
    watched.append(app.close)
    watched.append(BACKLOG.attach(broker_source(app, ["ingest", "collect", "analytics"])))

    assert backlog("ingest", "broker") == 3
    assert backlog("collect", "broker") == 1
    assert backlog("analytics", "broker") == 0  # nothing was ever sent there
    send(settings, "ingest", 2)
    assert backlog("ingest", "broker") == 5  # read at every scrape


def test_an_unreachable_broker_reports_nothing_and_warns_once(
    private_redis: PrivateRedis, watched: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(redis_url=private_redis.url)
    send(settings, "ingest", 1)
    app = create_celery(settings)
    watched.append(app.close)
    watched.append(BACKLOG.attach(broker_source(app, ["ingest"])))
    assert backlog("ingest", "broker") == 1
    private_redis.kill()
    with caplog.at_level(logging.WARNING, logger="vigil.core.backlog"):
        assert backlog("ingest", "broker") is None
        assert backlog("ingest", "broker") is None  # the scrape still answers
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1


def test_a_process_queue_reports_its_waiting_runs_until_the_runtime_closes(
    tmp_path: Path,
) -> None:
    runtime = Runtime.create(Settings(redis_url="", database_url=f"sqlite:///{tmp_path / 'v.db'}"))
    # Queue names of this test's own: other runtimes of the test session report theirs too.
    ingest, collect = f"ingest-{uuid.uuid4().hex[:6]}", f"collect-{uuid.uuid4().hex[:6]}"
    try:
        for name, queue in (("test.a", ingest), ("test.b", ingest), ("test.c", collect)):
            runtime.registry.add(JobSpec(name, lambda ctx: None, queue=queue))  # type: ignore[arg-type, return-value]
            runtime.queue.enqueue(name, {})  # the queue's thread is not started: they wait
        assert backlog(ingest, "process") == 2
        assert backlog(collect, "process") == 1
    finally:
        runtime.close()
    assert backlog(ingest, "process") is None
