"""Issue #9's target: "Polling 500 devices every 60 s (ICMP + SNMP) on this 2-core machine:
CPU used and polling success rate; target success ≥ 99.9 %."

500 devices at 127.3.0.1 … 127.3.1.250, each pinged and read over SNMP once a minute (both
intervals 60 s, the default settings otherwise: ICMP 3 echo requests, SNMP timeout 1 s with
1 retry, 50 in flight per collector). Every device address is also an SNMP agent address:
``--agents`` Debian snmpd processes share the 500 addresses (one UDP port), so each device
has its own agent address and ICMP and SNMP go to the same place, over loopback only. Every
``--v3-every``-th device uses SNMP v3 (SHA-256 + AES), the others v2c.

This process plays the worker: one thread runs ``network.icmp`` every
``VIGIL_NETWORK_ICMP_TICK_SECONDS`` (10), another ``network.snmp`` every
``VIGIL_NETWORK_SNMP_TICK_SECONDS`` (30), through the job runner as the scheduler starts
them (job log, locks, storage, alert evaluation), on a migrated SQLite file (or PostgreSQL
with ``--db postgresql``). The devices are added at the start, so each is first polled at
its own phase inside the next minute; the run lasts ``--cycles`` minutes to the tick.

Prints the CPU seconds this process used per minute (all its threads, the SNMP engine's
included; a minute's ticks counted to their end) and as a share of one core, the agents'
CPU, per collector the polls and their success rate, the polls per device (expected:
exactly one a minute each) and the sweeps' durations.

    .venv/bin/python bench/network_500.py [--cycles 3] [--agents 4] [--db sqlite]

As root (raw ICMP sockets, as the collector runs here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pydantic import SecretStr
from sqlalchemy import func, select
from tests.support.snmpd import Snmpd, _free_udp_port, snmpd

from _support import FreshDatabases
from vigil.core.runtime import Runtime
from vigil.network.credentials import Vault
from vigil.network.models import Device, Sample

INTERVAL = 60


def cpu_seconds(pid: int | None = None) -> float:
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Ticker:
    """Runs one job every ``tick`` seconds from ``start`` until ``end`` (both included)."""

    runtime: Runtime
    job: str
    tick: float
    start: float
    end: float
    runs: list[tuple[float, str, str]] = field(default_factory=list)  # (seconds, status, msg)
    idle: threading.Event = field(default_factory=threading.Event)

    def __call__(self) -> None:
        k = 1
        while (at := self.start + k * self.tick) <= self.end + 1e-6:
            self.idle.set()
            time.sleep(max(0.0, at - time.time()))
            self.idle.clear()
            t0 = time.perf_counter()
            run = self.runtime.runner.run(self.job)
            self.runs.append((time.perf_counter() - t0, run.status, run.message or ""))
            k += 1
        self.idle.set()


def add_devices(
    runtime: Runtime, vault: Vault, agents: list[Snmpd], v3_every: int, now: datetime
) -> None:
    addresses = [f"127.3.{i // 250}.{i % 250 + 1}" for i in range(500)]
    per_agent = -(-len(addresses) // len(agents))
    with runtime.db.session(write=True) as session:
        for i, address in enumerate(addresses):
            agent = agents[i // per_agent]
            secret = agent.v3 if v3_every and i % v3_every == v3_every - 1 else agent.v2c
            session.add(
                Device(
                    name=f"dev-{i}",
                    address=address,
                    type="server",
                    tags="",
                    enabled=True,
                    icmp_interval_seconds=INTERVAL,
                    snmp_interval_seconds=INTERVAL,
                    snmp_port=agent.port,
                    credentials=vault.seal(secret),
                    maintenance=[],
                    created_at=now,
                    updated_at=now,
                )
            )


def report(runtime: Runtime, cycles: int) -> None:
    with runtime.db.session() as session:

        def per_device(metric: str) -> list[int]:
            rows = session.execute(
                select(func.count()).where(Sample.metric == metric).group_by(Sample.device_id)
            ).scalars()
            return list(rows)

        def count(metric: str, ok: bool) -> int:
            stmt = select(func.count()).where(Sample.metric == metric)
            if ok:
                stmt = stmt.where(Sample.value > 0)
            return int(session.execute(stmt).scalar_one())

        for name, metric, ok_metric in (
            ("ICMP", "icmp.sent", "icmp.received"),
            ("SNMP", "snmp.ok", "snmp.ok"),
        ):
            polls, ok = count(metric, False), count(ok_metric, True)
            counts = per_device(metric)
            print(
                f"{name}: {polls} polls, {ok} answered = {100 * ok / max(polls, 1):.2f} % "
                f"success; polls per device min {min(counts, default=0)} max "
                f"{max(counts, default=0)} over {len(counts)} devices (expected {cycles})"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--v3-every", type=int, default=5, help="0: v2c only")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    addresses = [f"127.3.{i // 250}.{i % 250 + 1}" for i in range(500)]
    per_agent = -(-len(addresses) // args.agents)
    port = _free_udp_port()
    with ExitStack() as stack:
        agents = [
            stack.enter_context(snmpd(addresses[k : k + per_agent], port))
            for k in range(0, len(addresses), per_agent)
        ]
        dbs = FreshDatabases(args.db, "http://127.0.0.1:9/api")
        stack.callback(dbs.close)
        runtime = dbs.new()
        settings = runtime.settings.model_copy(
            update={"network_secret_key": SecretStr("bench-500")}
        )
        runtime.runner.settings = settings
        start = time.time()  # the devices' creation: the first minute starts with them
        vault = Vault.from_settings(settings)
        add_devices(runtime, vault, agents, args.v3_every, datetime.fromtimestamp(start, UTC))
        end = start + args.cycles * INTERVAL
        tickers = [
            Ticker(runtime, "network.icmp", settings.network_icmp_tick_seconds, start, end),
            Ticker(runtime, "network.snmp", settings.network_snmp_tick_seconds, start, end),
        ]
        threads = [threading.Thread(target=t, name=t.job) for t in tickers]
        print(
            f"{len(addresses)} devices, {len(agents)} snmpd on port {port}, {args.db}, "
            f"{args.cycles} x {INTERVAL} s; load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        cpu0 = cpu_seconds()
        agents0 = sum(cpu_seconds(a.pid) for a in agents)
        for t in threads:
            t.start()
        marks = [cpu0]
        for cycle in range(1, args.cycles + 1):
            # the minute's last ticks (at its end) are its own: wait for them to finish
            time.sleep(max(0.0, start + cycle * INTERVAL + 0.5 - time.time()))
            for ticker in tickers:
                ticker.idle.wait()
            marks.append(cpu_seconds())
            print(
                f"minute {cycle}: {marks[-1] - marks[-2]:.2f} CPU s = "
                f"{100 * (marks[-1] - marks[-2]) / INTERVAL:.1f} % of a core; "
                f"load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        for t in threads:
            t.join()
        cpu = cpu_seconds() - cpu0
        agents_cpu = sum(cpu_seconds(a.pid) for a in agents) - agents0
        wall = args.cycles * INTERVAL
        print(
            f"this process: {cpu:.1f} CPU s in {args.cycles} minutes = {cpu / args.cycles:.2f} "
            f"CPU s per minute = {100 * cpu / wall:.1f} % of one core; the snmpd agents: "
            f"{100 * agents_cpu / wall:.1f} % of one core"
        )
        for ticker in tickers:
            seconds = [s for s, status, _ in ticker.runs if status == "ok"]
            statuses = [status for _, status, _ in ticker.runs]
            print(
                f"{ticker.job}: {len(ticker.runs)} runs ({statuses.count('ok')} ok, "
                f"{statuses.count('skipped')} skipped, {statuses.count('failed')} failed), "
                f"sweep median {statistics.median(seconds or [0]):.2f} s, "
                f"max {max(seconds or [0]):.2f} s"
            )
            for _, status, message in ticker.runs:
                if status == "failed" or ("did not" in message and " 0 did not" not in message):
                    print(f"  {status}: {message[:300]}")
        report(runtime, args.cycles)


if __name__ == "__main__":
    main()
