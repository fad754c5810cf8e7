"""Issue #9's target: "ICMP sweep of 1,000 targets (loopback range): < 2 s including
storage."

    .venv/bin/python -m pytest bench/test_bench_network_sweep.py -p no:cacheprovider \
        --benchmark-only -s

1,000 devices at 127.1.0.1 … 127.1.3.232 (all of 127.0.0.0/8 answers on Linux) in a migrated
SQLite file and PostgreSQL database; each round is one run of the ``network.icmp`` job as the
scheduler would start it (the job-log row, reading the devices, the pings, the samples, the
device states and the alert evaluation, committed), with every device forced due;
concurrency 50 (the default); ``count`` 1 and 3 echo requests per device; both socket kinds:

- ``raw``: what root gets when ``net.ipv4.ping_group_range`` admits nobody (Debian's
  default): one raw socket per address family shared by every target
  (``vigil.network.rawping``);
- ``unprivileged``: datagram ICMP sockets, demultiplexed by the kernel. For this run the
  bench widens ``ping_group_range`` (a per-namespace sysctl) and restores it afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from _support import FreshDatabases, postgres_available
from vigil.core.db import utcnow
from vigil.core.runtime import Runtime
from vigil.network.models import Device

DEVICES = 1000
TARGET_SECONDS = 2.0


@pytest.fixture(params=["sqlite", "postgresql"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "postgresql" and (why := postgres_available()):
        pytest.skip(why)
    dbs = FreshDatabases(request.param, "http://127.0.0.1:9/api")
    try:
        runtime = dbs.new()
        now = utcnow()
        with runtime.db.session(write=True) as session:
            session.add_all(
                Device(
                    name=f"lo-{i}",
                    address=f"127.1.{i // 250}.{i % 250 + 1}",
                    type="server",
                    tags="",
                    enabled=True,
                    icmp_interval_seconds=60,
                    maintenance=[],
                    snmp_port=161,
                    created_at=now,
                    updated_at=now,
                )
                for i in range(DEVICES)
            )
        yield runtime
    finally:
        dbs.close()


RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


@pytest.fixture(params=["raw", "unprivileged"])
def sockets(request: pytest.FixtureRequest) -> Iterator[str]:
    mode: str = request.param
    if mode == "raw":
        yield mode
        return
    before = RANGE.read_text()
    try:
        RANGE.write_text("0 2147483647\n")
    except OSError as exc:
        pytest.skip(f"cannot widen {RANGE}: {exc}")
    try:
        yield mode
    finally:
        RANGE.write_text(before)


@pytest.mark.parametrize("count", [1, 3])
def test_icmp_sweep_1000_loopback_devices(
    benchmark: BenchmarkFixture, runtime: Runtime, count: int, sockets: str
) -> None:
    runtime.runner.settings = runtime.settings.model_copy(
        update={
            "network_icmp_count": count,
            "network_icmp_interval_seconds": 0.0,
            "network_icmp_timeout_seconds": 1.0,
            "network_icmp_concurrency": 50,
            "network_icmp_privileged": sockets,
        }
    )
    with runtime.db.session() as session:
        ids = [d.id for d in session.query(Device.id)]

    def sweep() -> int:
        run = runtime.runner.run("network.icmp", {"devices": ids})
        assert run.status == "ok", run
        return run.rows_written

    rows = benchmark.pedantic(sweep, rounds=5, iterations=1, warmup_rounds=1)
    assert rows == DEVICES * 7  # every device answered: 7 samples each
    median = benchmark.stats.stats.median
    print(
        f"\n{runtime.db.dialect} {sockets} count={count}: median {median:.3f} s for "
        f"{DEVICES} devices ({rows} samples), target < {TARGET_SECONDS} s"
    )
