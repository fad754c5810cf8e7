"""Issue #9's SNMP target: "≥ 1,500 GETs/s sustained per worker process against the local
snmpd". Starts Debian's snmpd on a free loopback port (as the tests do) and drives it from
this one process with the collector's client, on the process's one SnmpEngine and its
event loop thread (vigil.network.snmp_engine), N requests in flight, a few seconds per
setting. Prints, per setting: request PDUs answered per second, varbinds per second (a GET
of k OIDs is one PDU and k varbinds), failures, this process's CPU per PDU and snmpd's CPU
share over the same seconds.

Settings: GET of sysUpTime.0 (1 varbind), GET of 10 scalars (10 varbinds), and whole device
polls as the collector makes them (a GET of 3 system objects and the GETBULK walk of 12
table columns).

    .venv/bin/python bench/snmp_gets.py [--seconds 5] [--in-flight 1 8 32 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.snmpd import snmpd

from vigil.network import snmp_engine
from vigil.network.snmp import SYS_UPTIME, SnmpClient, oid

#: Ten scalars every net-snmp agent has (system group and snmp group counters).
TEN = tuple(
    oid(o)
    for o in (
        "1.3.6.1.2.1.1.1.0",
        "1.3.6.1.2.1.1.2.0",
        "1.3.6.1.2.1.1.3.0",
        "1.3.6.1.2.1.1.4.0",
        "1.3.6.1.2.1.1.5.0",
        "1.3.6.1.2.1.1.6.0",
        "1.3.6.1.2.1.1.7.0",
        "1.3.6.1.2.1.11.1.0",
        "1.3.6.1.2.1.11.2.0",
        "1.3.6.1.2.1.11.4.0",
    )
)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    kind: str, port: int, secret: dict[str, str], in_flight: int, seconds: float, agent_pid: int
) -> str:
    client = SnmpClient(snmp_engine.runtime().engine, timeout=2.0, retries=0)
    target = await client.target("127.0.0.1", port, secret)
    one: Callable[[], Awaitable[object]] = {
        "get1": lambda: client.get(target, (oid(SYS_UPTIME),)),
        "get10": lambda: client.get(target, TEN),
        "poll": lambda: client.poll("127.0.0.1", port, secret),
    }[kind]
    await one()  # v3: engine discovery and key localisation before the clock starts
    client.requests = client.varbinds = 0
    failed = 0
    errors: set[str] = set()
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failed
        while time.perf_counter() < stop:
            try:
                await one()
            except Exception as exc:
                failed += 1
                errors.add(f"{type(exc).__name__}: {exc}")

    cpu0, agent0, start = time.process_time(), _cpu_seconds(agent_pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - start
    cpu, agent = time.process_time() - cpu0, _cpu_seconds(agent_pid) - agent0
    pdus = client.requests / elapsed
    return (
        f"{secret['version']:>2} {kind:>5} in flight {in_flight:>3}: {pdus:6.0f} PDUs/s "
        f"{client.varbinds / elapsed:7.0f} varbinds/s, {failed} failed, "
        f"{1e6 * cpu / max(client.requests, 1):5.0f} µs CPU/PDU here, "
        f"snmpd {100 * agent / elapsed:3.0f} % of a core"
        + (f" ({'; '.join(sorted(errors))[:200]})" if errors else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--kinds", nargs="+", default=["get1", "get10", "poll"])
    args = parser.parse_args()
    snmp = snmp_engine.runtime()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    with snmpd() as agent:
        for secret in (agent.v2c, agent.v3):
            for kind in args.kinds:
                for in_flight in args.in_flight:
                    line = snmp.run(
                        run(kind, agent.port, secret, in_flight, args.seconds, agent.pid)
                    )
                    print(line, flush=True)
    snmp.close()


if __name__ == "__main__":
    main()
