"""Issue #9's SNMP target: "≥ 1,500 GETs/s sustained per worker process against the local
snmpd". Starts Debian's snmpd on a free loopback port (as the tests do) and sends GETs of
sysUpTime.0 from one process with the collector's client (pysnmp asyncio, one SnmpEngine),
N in flight, for a few seconds per setting; prints GETs/s and the failures.

    .venv/bin/python bench/snmp_gets.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.snmpd import snmpd

from vigil.network.snmp import SYS_UPTIME, SnmpClient, auth_data


async def run(port: int, secret: dict[str, str], in_flight: int, seconds: float) -> None:
    client = SnmpClient(timeout=2.0, retries=0)
    auth = auth_data(secret)
    target = await client._target("127.0.0.1", port)
    done = failed = 0
    errors: set[str] = set()
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, failed
        while time.perf_counter() < stop:
            try:
                await client._get(auth, target, SYS_UPTIME)
                done += 1
            except Exception as exc:
                failed += 1
                errors.add(f"{type(exc).__name__}: {exc}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - start
    client.close()
    print(
        f"{secret['version']:>2} in flight {in_flight:>3}: {done / elapsed:7.0f} GETs/s "
        f"({done} in {elapsed:.1f} s, {failed} failed{': ' if errors else ''}"
        f"{'; '.join(sorted(errors))[:200]})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with snmpd() as agent:
        for secret in (agent.v2c, agent.v3):
            for in_flight in (1, 8, 32):
                asyncio.run(run(agent.port, secret, in_flight, args.seconds))


if __name__ == "__main__":
    main()
