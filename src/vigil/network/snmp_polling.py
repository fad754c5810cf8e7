"""One SNMP sweep: the devices due (``snmp_interval_seconds`` set, SNMP credentials stored),
polled with bounded concurrency and a deadline each, stored as samples with interface rates
computed from the counters of the previous poll.

Samples per poll: ``snmp.ok`` (1 or 0: the polling success), and when the agent answered
``snmp.uptime_s``, ``snmp.cpu_pct``, ``snmp.mem_pct`` and per interface
``if.<ifName>.<admin|oper|in_octets|out_octets|in_errors|out_errors|in_discards|out_discards>``
plus ``if.<ifName>.in_bps`` / ``out_bps``, and ``if.<ifName>.octets_bits`` (32) when the
octets are the 32-bit ifInOctets/ifOutOctets (an agent without ifXTable).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, func, select
from sqlalchemy.orm import Session

from vigil.core.bulk import bulk_upsert
from vigil.network import snmp_engine
from vigil.network.credentials import Vault
from vigil.network.models import Device, Sample
from vigil.network.polling import POLL_SUCCESS, POLLS, is_due
from vigil.network.snmp import OCTETS_BITS, SnmpClient, SnmpPoll
from vigil.network.snmp_transport import SnmpTransport
from vigil.settings import Settings

SAMPLES: Table = Sample.__table__  # type: ignore[assignment]
COUNTER_BITS = 64
#: ifInErrors, ifOutErrors, ifIn/OutDiscards, ifIn/OutOctets: Counter32.
COUNTER32_BITS = 32
MAX_IF_NAME = 40  # metric names are at most 64 characters
UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]")  # what the samples API's metric may hold


def counter_rate(
    previous: float,
    previous_uptime: float,
    previous_at: datetime,
    value: float,
    uptime: float,
    at: datetime,
    bits: int = COUNTER_BITS,
) -> float | None:
    """Per second growth of a counter between two polls, None when it cannot be known: the
    agent restarted in between (its uptime went back, so the counter started again from 0)
    or no time passed. A counter that is lower than before without a restart wrapped at
    2**bits."""
    seconds = (at - previous_at).total_seconds()
    if uptime < previous_uptime or seconds <= 0:
        return None
    delta = value - previous
    if delta < 0:
        delta += 2**bits
    return delta / seconds


@dataclass(frozen=True)
class SnmpTarget:
    id: int
    address: str
    port: int
    secret: dict[str, Any]


@dataclass(frozen=True)
class SnmpResult:
    target: SnmpTarget
    at: datetime
    poll: SnmpPoll | None
    error: str | None = None


def due_targets(
    session: Session, now: datetime, vault: Vault, only: Sequence[int] | None = None
) -> list[SnmpTarget]:
    last = dict(
        session.execute(
            select(Sample.device_id, func.max(Sample.ts))
            .where(Sample.metric == "snmp.ok")
            .group_by(Sample.device_id)
        ).all()
    )
    stmt = select(Device).where(
        Device.enabled.is_(True),
        Device.snmp_interval_seconds.is_not(None),
        Device.credentials.is_not(None),
    )
    if only is not None:
        stmt = stmt.where(Device.id.in_(only))
    out = []
    for device in session.scalars(stmt.order_by(Device.id)):
        interval = device.snmp_interval_seconds or 0
        if only is None and not is_due(device, last.get(device.id), now, interval):
            continue
        secret = vault.open(device.credentials or "")
        out.append(SnmpTarget(device.id, device.address, device.snmp_port, secret))
    return out


async def poll_many(
    targets: Sequence[SnmpTarget], settings: Settings, engine: SnmpTransport
) -> tuple[list[SnmpResult], SnmpClient]:
    """Polls ``targets`` with at most ``network_snmp_concurrency`` in flight, each cut off
    after ``network_snmp_deadline_seconds``; runs on ``engine``'s loop. Also returns the
    client (its request and varbind counts)."""
    client = SnmpClient(
        engine, settings.network_snmp_timeout_seconds, settings.network_snmp_retries
    )
    semaphore = asyncio.Semaphore(settings.network_snmp_concurrency)
    deadline = settings.network_snmp_deadline_seconds

    async def one(target: SnmpTarget) -> SnmpResult:
        async with semaphore:
            at = datetime.now(UTC)
            try:
                poll = await asyncio.wait_for(
                    client.poll(target.address, target.port, target.secret), deadline
                )
            except TimeoutError:
                return SnmpResult(target, at, None, f"no complete answer within {deadline:g} s")
            except Exception as exc:  # one device's failure is its own
                return SnmpResult(target, at, None, f"{type(exc).__name__}: {exc}")
            return SnmpResult(target, poll.at, poll)

    return list(await asyncio.gather(*(one(t) for t in targets))), client


def poll(targets: Sequence[SnmpTarget], settings: Settings) -> list[SnmpResult]:
    """:func:`poll_many` from synchronous code (a job on any thread), on the process's one
    SNMP engine."""
    snmp = snmp_engine.runtime()
    results, _client = snmp.run(poll_many(targets, settings, snmp.engine))
    return results


def _previous(session: Session, device_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per device, the samples of its last answered poll: metric -> (value, ts)."""
    latest = (
        select(Sample.device_id, func.max(Sample.ts).label("ts"))
        .where(Sample.metric == "snmp.uptime_s", Sample.device_id.in_(device_ids))
        .group_by(Sample.device_id)
        .subquery()
    )
    rows = session.execute(
        select(Sample.device_id, Sample.metric, Sample.value, Sample.ts).join(
            latest, and_(Sample.device_id == latest.c.device_id, Sample.ts == latest.c.ts)
        )
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for device_id, metric, value, ts in rows:
        out.setdefault(device_id, {})[metric] = (value, ts)
    return out


def samples_of(result: SnmpResult, previous: dict[str, Any]) -> dict[str, float]:
    if result.poll is None:
        return {"snmp.ok": 0.0}
    p = result.poll
    values: dict[str, float] = {"snmp.ok": 1.0, "snmp.uptime_s": p.uptime_s}
    if p.cpu_pct is not None:
        values["snmp.cpu_pct"] = round(p.cpu_pct, 3)
    if p.mem_pct is not None:
        values["snmp.mem_pct"] = round(p.mem_pct, 3)
    before = previous.get("snmp.uptime_s")
    for name, columns in p.interfaces.items():
        prefix = f"if.{UNSAFE.sub('_', name)[:MAX_IF_NAME]}"
        for column, value in columns.items():
            values[f"{prefix}.{column}"] = value
        # The octets' width (32-bit ifInOctets or 64-bit ifHCInOctets) gives the wrap; a
        # width that changed since the last poll (agent upgraded) gives no rate.
        width_key = f"{prefix}.{OCTETS_BITS}"
        bits = int(values.get(width_key, COUNTER_BITS))
        if before is None or bits != int(previous.get(width_key, (COUNTER_BITS,))[0]):
            continue
        for direction in ("in", "out"):
            metric = f"{prefix}.{direction}_octets"
            if metric not in previous or metric not in values:
                continue
            rate = counter_rate(
                previous[metric][0],
                before[0],
                before[1],
                values[metric],
                p.uptime_s,
                p.at,
                bits,
            )
            if rate is not None:
                values[f"{prefix}.{direction}_bps"] = round(rate * 8, 3)
    return values


def store_results(session: Session, results: Sequence[SnmpResult]) -> tuple[int, int, int]:
    """Writes the samples of ``results``; returns (samples, answered, failed)."""
    previous = _previous(session, [r.target.id for r in results])
    rows = []
    for result in results:
        for metric, value in samples_of(result, previous.get(result.target.id, {})).items():
            rows.append((result.target.id, metric, result.at, value))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    bulk_upsert(
        session,
        SAMPLES,
        ("device_id", "metric", "ts", "value"),
        rows,
        key=("device_id", "metric", "ts"),
        update=("value",),
    )
    ok = sum(1 for r in results if r.poll is not None)
    failed = len(results) - ok
    POLLS.labels("snmp", "ok").inc(ok)
    POLLS.labels("snmp", "failed").inc(failed)
    if results:
        POLL_SUCCESS.labels("snmp").set(ok / len(results))
    return len(rows), ok, failed
