"""Alert rule evaluation over 500 devices (issue #9).

    .venv/bin/python -m pytest bench/test_bench_network_rules.py -p no:cacheprovider \
        --benchmark-only -s

500 devices tagged ``edge`` in a migrated SQLite file and PostgreSQL database, each with the
state an ICMP poll leaves and two answered SNMP polls a minute apart (CPU, memory and 10
interfaces: oper status and error counters), and 8 rules on the tag, one of each kind. One
device in ten is down and breaches every SNMP rule (CPU and memory 97 %, interface eth3
down, 50 errors/s on eth5); another one in ten has 50 % loss and 900 ms RTT; a third one
in ten answers ICMP but its last SNMP poll failed (SNMP not answering). Each round
evaluates the latest polls as the sweeps do — the ICMP kinds (``sources=("icmp",)``,
what ``network.alerts.evaluate`` and the ICMP sweep run) and the SNMP kinds (what the SNMP
sweep runs) — in a transaction rolled back afterwards, so every round sees the same new
observations and opens the same alerts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from _support import FreshDatabases, postgres_available
from vigil.core.db import utcnow
from vigil.core.runtime import Runtime
from vigil.network import evaluation, polling
from vigil.network.models import AlertRule, Device, DeviceState, Sample

DEVICES = 500
INTERFACES = 10
RULES = [
    ("down", "device_down", None, {"failures": 3}),
    ("loss", "packet_loss", 20.0, {}),
    ("rtt", "rtt", 500.0, {}),
    ("cpu", "cpu", 90.0, {}),
    ("memory", "memory", 90.0, {}),
    ("links", "interface_down", None, {"interface": "eth*"}),
    ("errors", "interface_errors", 10.0, {}),
    ("agent", "snmp_down", None, {}),
]


def _populate(runtime: Runtime) -> None:
    now = utcnow()
    polls = (now - timedelta(seconds=90), now - timedelta(seconds=30))
    with runtime.db.session(write=True) as session:
        for name, kind, threshold, extra in RULES:
            session.add(
                AlertRule(
                    name=name,
                    kind=kind,
                    tag="edge",
                    threshold=threshold,
                    for_seconds=0,
                    recover_after=2,
                    severity="warning",
                    enabled=True,
                    created_at=now,
                    updated_at=now,
                    **extra,
                )
            )
        devices = [
            Device(
                name=f"d{i}",
                address=f"10.{i // 250}.{i % 250}.1",
                type="switch",
                tags=",edge,",
                enabled=True,
                icmp_interval_seconds=60,
                snmp_interval_seconds=60,
                maintenance=[],
                snmp_port=161,
                created_at=now,
                updated_at=now,
            )
            for i in range(DEVICES)
        ]
        session.add_all(devices)
        session.flush()
        samples = []
        for i, device in enumerate(devices):
            bad, slow, mute = i % 10 == 0, i % 10 == 1, i % 10 == 2
            session.add(
                DeviceState(
                    device_id=device.id,
                    status="down" if bad else "up",
                    last_poll_at=polls[1],
                    failures=3 if bad else 0,
                    successes=0 if bad else 5,
                    failing_since=polls[0] if bad else None,
                    last_loss_pct=100.0 if bad else 50.0 if slow else 0.0,
                    last_rtt_ms=None if bad else 900.0 if slow else 2.0,
                )
            )
            for n, at in enumerate(polls):
                values = {
                    "snmp.ok": 1.0,
                    "snmp.uptime_s": 1000.0 + 60 * n,
                    "snmp.cpu_pct": 97.0 if bad else 20.0,
                    "snmp.mem_pct": 97.0 if bad else 40.0,
                }
                for k in range(INTERFACES):
                    down = bad and k == 3
                    values[f"if.eth{k}.oper"] = 2.0 if down else 1.0
                    errors = 3000.0 * n if bad and k == 5 else 0.0
                    values[f"if.eth{k}.in_errors"] = errors
                    values[f"if.eth{k}.out_errors"] = 0.0
                    values[f"if.eth{k}.in_octets"] = 1e9 * n
                if mute and n == 1:  # the last SNMP poll got no answer
                    values = {"snmp.ok": 0.0}
                samples += [
                    Sample(device_id=device.id, metric=m, ts=at, value=v) for m, v in values.items()
                ]
        session.add_all(samples)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "postgresql" and (why := postgres_available()):
        pytest.skip(why)
    dbs = FreshDatabases(request.param, "http://127.0.0.1:9/api")
    try:
        runtime = dbs.new()
        _populate(runtime)
        yield runtime
    finally:
        dbs.close()


@pytest.mark.parametrize("source", ["icmp", "snmp"])
def test_rule_evaluation_500_devices(
    benchmark: BenchmarkFixture, runtime: Runtime, source: str
) -> None:
    rule = polling.down_rule(runtime.settings)

    def evaluate() -> tuple[int, int]:
        with runtime.db.session(write=True) as session:
            done = evaluation.evaluate(session, rule, sources=(source,))  # type: ignore[arg-type]
            result = (done.observations, len(done.notify))
            session.rollback()
        return result

    observations, notices = benchmark.pedantic(evaluate, rounds=7, iterations=1, warmup_rounds=1)
    tenth = DEVICES // 10
    if source == "icmp":  # a device that is down gives no loss or RTT observation
        assert observations == DEVICES * 3 - tenth * 2
        assert notices == tenth + tenth * 2  # down; loss and RTT
    else:
        # CPU, memory, each interface's status and error rate; SNMP not answering for the
        # devices ICMP does not say are down; no error rates where the last poll failed.
        assert observations == (
            DEVICES * (2 + 2 * INTERFACES) + (DEVICES - tenth) - tenth * INTERFACES
        )
        assert notices == tenth * 5  # CPU, memory, eth3 down, eth5 errors; SNMP not answering
    median = benchmark.stats.stats.median
    print(
        f"\n{runtime.db.dialect} {source}: median {median * 1000:.0f} ms for {DEVICES} devices, "
        f"{observations} observations, {notices} alerts fired"
    )
