"""Downsampling of the network samples (issue #9): one ``network.rollup`` pass over six hours
of ICMP samples of 500 devices.

    .venv/bin/python -m pytest bench/test_bench_network_rollups.py -p no:cacheprovider \
        --benchmark-only -s

500 devices x 7 ICMP metrics x one sample a minute for 6 hours = 1,260,000 raw samples in a
migrated SQLite file and PostgreSQL database. A round is ``rollups.run`` from empty rollups
(the rollup rows are deleted before each round, not timed): 252,000 rows of the 5 min tier in
batches of 12 buckets (one transaction each) and 21,000 of the 1 h tier; retention deletes
nothing (the samples are younger than 7 days). Then an idle re-run (nothing new) is timed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from sqlalchemy import Table, delete, func, select

from _support import FreshDatabases, postgres_available
from vigil.core.bulk import bulk_upsert
from vigil.core.db import utcnow
from vigil.core.runtime import Runtime
from vigil.network import rollups
from vigil.network.models import Sample, SampleRollup
from vigil.settings import Settings

DEVICES = 500
METRICS = ("sent", "received", "loss_pct", "rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "jitter_ms")
HOURS = 6
SAMPLES: Table = Sample.__table__  # type: ignore[assignment]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "postgresql" and (why := postgres_available()):
        pytest.skip(why)
    dbs = FreshDatabases(request.param, "http://127.0.0.1:9/api")
    try:
        runtime = dbs.new()
        now = rollups.floor_time(utcnow(), 3600)
        start = now - timedelta(hours=HOURS)
        for minute in range(HOURS * 60):
            at = start + timedelta(minutes=minute)
            rows = [
                (device, f"icmp.{metric}", at, float(device % 7 + minute % 5))
                for device in range(1, DEVICES + 1)
                for metric in METRICS
            ]
            rows.sort(key=lambda r: (r[0], r[1]))
            with runtime.db.session(write=True) as session:
                bulk_upsert(
                    session,
                    SAMPLES,
                    ("device_id", "metric", "ts", "value"),
                    rows,
                    key=("device_id", "metric", "ts"),
                    update=("value",),
                    keys_are_new=True,
                )
        yield runtime
    finally:
        dbs.close()


def _settings(runtime: Runtime) -> Settings:
    return runtime.settings.model_copy(update={"network_rollup_grace_seconds": 0})


def _empty(runtime: Runtime) -> None:
    with runtime.db.session(write=True) as session:
        session.execute(delete(SampleRollup))


def test_rollup_six_hours_of_500_devices(benchmark: BenchmarkFixture, runtime: Runtime) -> None:
    settings = _settings(runtime)

    def run() -> int:
        return rollups.run(runtime.db, settings).rows

    rows = benchmark.pedantic(run, setup=lambda: _empty(runtime), rounds=3, iterations=1)
    with runtime.db.session() as session:
        counts = dict(
            session.execute(
                select(SampleRollup.period, func.count()).group_by(SampleRollup.period)
            ).all()
        )
    assert counts == {
        300: DEVICES * len(METRICS) * HOURS * 12,
        3600: DEVICES * len(METRICS) * HOURS,
    }
    assert rows == sum(counts.values())
    median = benchmark.stats.stats.median
    print(
        f"\n{runtime.db.dialect}: median {median:.2f} s to roll up "
        f"{DEVICES * len(METRICS) * HOURS * 60:,} samples into {rows:,} rows"
    )


def test_an_idle_rerun(benchmark: BenchmarkFixture, runtime: Runtime) -> None:
    settings = _settings(runtime)
    rollups.run(runtime.db, settings)
    report = benchmark.pedantic(lambda: rollups.run(runtime.db, settings), rounds=5, iterations=1)
    median = benchmark.stats.stats.median
    print(f"\n{runtime.db.dialect}: idle re-run median {median * 1000:.0f} ms ({report.summary()})")
