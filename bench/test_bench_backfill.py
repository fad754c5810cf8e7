"""Full-history NBP backfill, its idempotent re-run, and the hourly sync, on SQLite and
PostgreSQL. Figures, not pass/fail (only a failed or partial job fails a benchmark).

    .venv/bin/python -m pytest bench -p no:cacheprovider --benchmark-only

The fake NBP server runs as a subprocess on 127.0.0.1 (not a thread of this process), so
its request handling does not compete with the job for the GIL; HTTP round trips, JSON
parsing and the database writes are all inside the timed call
``runtime.runner.run("markets.backfill")``. Every backfill round starts from a new, empty,
migrated database (created in the untimed setup). Before the first round every history
request is sent once, untimed, so the fake server has rendered (and cached) its replies and
no round pays for that.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from _support import FreshDatabases, fake_nbp_process, postgres_available, warm_up
from vigil.core.jobs import JobRun
from vigil.core.runtime import Runtime

BACKENDS = ["sqlite", "postgresql"]
BACKFILL_ROUNDS = 3
QUICK_ROUNDS = 10
TARGET_BACKFILL_SECONDS = 5.0
TARGET_RERUN_SECONDS = 1.0


@pytest.fixture(scope="module")
def nbp_url() -> Iterator[str]:
    with fake_nbp_process() as url:
        warm_up(url)
        yield url


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, nbp_url: str) -> Iterator[FreshDatabases]:
    backend: str = request.param
    if backend == "postgresql" and (why := postgres_available()):
        pytest.skip(why)
    dbs = FreshDatabases(backend, nbp_url)
    yield dbs
    dbs.close()


def _summary(
    capsys: pytest.CaptureFixture[str],
    benchmark: BenchmarkFixture,
    label: str,
    rows: int,
    target: float,
) -> None:
    stats: Any = benchmark.stats.stats  # type: ignore[union-attr]
    mean, low, high = stats.mean, stats.min, stats.max
    benchmark.extra_info.update(rows=rows, target_seconds=target, target_met=mean < target)
    volume = "nothing written"
    if rows:
        rate = rows / mean
        benchmark.extra_info["rows_per_second"] = round(rate)
        volume = f"{rows} rows, {rate:,.0f} rows/s"
    verdict = "met" if mean < target else "MISSED"
    with capsys.disabled():
        print(
            f"\n[bench] {label}: mean {mean:.3f}s (min {low:.3f}s, max {high:.3f}s,"
            f" {stats.rounds} rounds), {volume}; target < {target:g}s {verdict}"
        )


def _check(run: JobRun, expected: set[str]) -> JobRun:
    assert run.status in expected, f"{run.name} ended {run.status}: {run.error or run.message}"
    return run


def test_backfill_full_history(
    benchmark: BenchmarkFixture,
    databases: FreshDatabases,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs: list[JobRun] = []

    def setup() -> tuple[tuple[Runtime], dict[str, Any]]:
        return (databases.new(),), {}

    def backfill(runtime: Runtime) -> None:
        runs.append(runtime.runner.run("markets.backfill"))

    benchmark.group = "backfill: full history into an empty database"
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        backfill, setup=setup, rounds=BACKFILL_ROUNDS, iterations=1
    )
    rows = {_check(run, {"ok"}).rows_written for run in runs}
    assert len(rows) == 1, f"rounds wrote different row counts: {rows}"
    label = f"backfill {databases.backend}"
    _summary(capsys, benchmark, label, rows.pop(), TARGET_BACKFILL_SECONDS)


@pytest.mark.parametrize("job", ["markets.backfill", "markets.sync"])
def test_rerun_on_full_database(
    benchmark: BenchmarkFixture,
    databases: FreshDatabases,
    job: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime = databases.new()
    loaded = _check(runtime.runner.run("markets.backfill"), {"ok"}).rows_written
    runs: list[JobRun] = []

    def rerun() -> None:
        runs.append(runtime.runner.run(job))

    benchmark.group = "re-run on a full database (nothing new)"
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        rerun, rounds=QUICK_ROUNDS, iterations=1, warmup_rounds=1
    )
    written = sum(_check(run, {"ok", "skipped"}).rows_written for run in runs)
    assert written == 0, f"{job} wrote {written} rows on a full database"
    benchmark.extra_info["rows_in_database"] = loaded
    _summary(capsys, benchmark, f"{job} re-run {databases.backend}", 0, TARGET_RERUN_SECONDS)
