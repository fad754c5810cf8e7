"""One active scheduler: the Redis lock, take-over when the holder goes, and the scheduler
that submits nothing while on standby."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.redis_server import PrivateRedis
from vigil.core.db import Database
from vigil.core.events import InProcessEventBus
from vigil.core.jobs import JobContext, JobRegistry, JobResult, JobRunner, JobSpec
from vigil.core.leader import LeaderLock
from vigil.core.scheduling import Scheduler
from vigil.settings import Settings


@pytest.fixture
def key() -> str:
    return f"test:leader:{uuid.uuid4().hex[:8]}"


def test_only_one_scheduler_holds_the_lock_and_a_standby_takes_over(
    shared_redis: str, key: str
) -> None:
    first = LeaderLock(shared_redis, "first", key=key, ttl_seconds=5)
    second = LeaderLock(shared_redis, "second", key=key, ttl_seconds=5)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.try_acquire()  # renewing its own lock
        assert (first.is_leader, second.is_leader) == (True, False)

        first.release()  # a clean shutdown hands over at once
        assert second.try_acquire()
        assert not first.is_leader
    finally:
        first.release()
        second.release()


def test_a_holder_that_stops_renewing_loses_the_lock_after_its_ttl(
    shared_redis: str, key: str
) -> None:
    crashed = LeaderLock(shared_redis, "crashed", key=key, ttl_seconds=1)
    standby = LeaderLock(shared_redis, "standby", key=key, ttl_seconds=1)
    try:
        assert crashed.try_acquire()  # ... and never renews, as if the process died
        assert not standby.try_acquire()
        deadline = time.monotonic() + 5
        while not standby.try_acquire() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert standby.is_leader
        assert not crashed.is_leader  # its own view expires too
    finally:
        standby.release()


def test_an_active_scheduler_steps_down_when_redis_is_gone_past_the_ttl(
    private_redis: PrivateRedis,
) -> None:
    lock = LeaderLock(private_redis.url, "only", ttl_seconds=1)
    assert lock.try_acquire()
    private_redis.kill()
    assert lock.try_acquire()  # can't renew, but the lock it set still lives
    time.sleep(1.1)
    assert not lock.try_acquire()
    assert not lock.is_leader


def _registry(calls: list[str]) -> JobRegistry:
    def job(ctx: JobContext) -> JobResult:
        calls.append(ctx.name)
        return JobResult()

    registry = JobRegistry()
    registry.add(JobSpec(name="t.every", func=job, schedule="* * * * *", run_on_start=True))
    return registry


def test_only_the_active_scheduler_submits_jobs(shared_redis: str, key: str) -> None:
    registry = _registry([])
    runner = JobRunner(Database.from_url("sqlite://"), Settings(), InProcessEventBus(), registry)
    submitted: dict[str, list[str]] = {"active": [], "standby": []}
    clocks = []
    for name in ("active", "standby"):  # the first to start takes the lock
        lock = LeaderLock(shared_redis, name, key=key, ttl_seconds=5)
        clock = Scheduler(runner, Settings(), submit=submitted[name].append, leader=lock)
        clock.start(run_on_start=True)
        clocks.append(clock)
    try:
        deadline = time.monotonic() + 5
        while not submitted["active"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # the standby's start-up job has fired by now as well
    finally:
        for clock in clocks:
            clock.shutdown(wait=True)
    assert submitted == {"active": ["t.every"], "standby": []}
