"""One ICMP sweep: which devices are due, poll them, store what came back and update each
device's status (the alert rules then run over it: ``vigil.network.evaluation``).

Due: each device polls every ``icmp_interval_seconds``, at a phase of its own inside the
interval (from its id), so 1,000 devices on a 60 s interval are spread over the minute
instead of all starting on the same tick. The job runs every ``VIGIL_NETWORK_ICMP_TICK_SECONDS``
and takes the devices whose slot has started since their last poll. Two sweeps never run at
once (the job's lock, across processes), so a device is never polled twice at the same time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from vigil.core.bulk import bulk_upsert
from vigil.core.db import utcnow
from vigil.network import alerting, metrics
from vigil.network.alerting import Counters, DownRule, Suppression
from vigil.network.icmp import PingSettings, PollResult, use_raw_sockets
from vigil.network.models import Device, DeviceState, Sample
from vigil.settings import Settings

SAMPLES: Table = Sample.__table__  # type: ignore[assignment]

POLLS = Counter(
    "vigil_network_polls_total",
    "Device polls by collector and outcome (ok: the device answered).",
    ["collector", "outcome"],
)
POLL_SUCCESS = Gauge(
    "vigil_network_poll_success_ratio",
    "Share of the last sweep's polls that succeeded, by collector.",
    ["collector"],
    multiprocess_mode="liveall",
)


def ping_settings(settings: Settings) -> PingSettings:
    return PingSettings(
        count=settings.network_icmp_count,
        interval=settings.network_icmp_interval_seconds,
        timeout=settings.network_icmp_timeout_seconds,
        concurrency=settings.network_icmp_concurrency,
        raw=use_raw_sockets(settings.network_icmp_privileged),
    )


def down_rule(settings: Settings) -> DownRule:
    minutes = settings.network_down_after_minutes
    return DownRule(
        down_after_failures=settings.network_down_after_failures,
        down_after=timedelta(minutes=minutes) if minutes > 0 else None,
        up_after_successes=settings.network_up_after_successes,
    )


def phase(device_id: int, interval: int) -> float:
    """Where in its interval a device's polls fall (seconds), spread by a multiplicative
    hash of its id."""
    return ((device_id * 2654435761) % 2**32) / 2**32 * interval


def slot(moment: datetime, device_id: int, interval: int) -> int:
    return math.floor((moment.timestamp() - phase(device_id, interval)) / interval)


def is_due(
    device: Device, last_poll_at: datetime | None, now: datetime, interval: int | None = None
) -> bool:
    """A device polled in an earlier slot is due once its next slot starts; one never
    polled is due at its phase after it was added (a thousand devices imported at once are
    spread over their interval too). ``interval``: the collector's (default: ICMP's)."""
    interval = interval or device.icmp_interval_seconds
    reference = last_poll_at or device.created_at
    return slot(now, device.id, interval) > slot(reference, device.id, interval)


@dataclass(frozen=True)
class Target:
    id: int
    address: str


def due_targets(session: Session, now: datetime, only: Sequence[int] | None = None) -> list[Target]:
    """The enabled devices due a poll (``only``: these devices, due or not)."""
    stmt = (
        select(Device, DeviceState.last_poll_at)
        .outerjoin(DeviceState, DeviceState.device_id == Device.id)
        .where(Device.enabled.is_(True))
        .order_by(Device.id)
    )
    if only is not None:
        stmt = stmt.where(Device.id.in_(only))
    return [
        Target(d.id, d.address)
        for d, last in session.execute(stmt).all()
        if only is not None or is_due(d, last, now)
    ]


@dataclass
class Applied:
    samples: int = 0
    ok: int = 0
    failed: int = 0


def _depths(parents: dict[int, int | None]) -> dict[int, int]:
    depth: dict[int, int] = {}
    for start in parents:
        chain: list[int] = []
        node: int | None = start
        while node is not None and node not in depth and node not in chain:
            chain.append(node)
            node = parents.get(node)
        base = depth.get(node, -1) if node is not None else -1
        for offset, item in enumerate(reversed(chain), 1):
            depth[item] = base + offset
    return depth


def store_results(
    session: Session, results: Iterable[PollResult], rule: DownRule, now: datetime | None = None
) -> Applied:
    """Writes the samples of ``results`` and updates each device's state and status
    (parents before children, so a child sees its parent's new status). The alert rules
    run afterwards (``vigil.network.evaluation``)."""
    now = now or utcnow()
    by_device = {r.key: r for r in results}
    applied = Applied()
    rows = []
    for result in by_device.values():
        for metric, value in result.samples().items():
            rows.append((result.key, metric, result.at, value))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    bulk_upsert(
        session,
        SAMPLES,
        ("device_id", "metric", "ts", "value"),
        rows,
        key=("device_id", "metric", "ts"),
        update=("value",),
        keys_are_new=True,
    )
    applied.samples = len(rows)
    devices = {d.id: d for d in session.scalars(select(Device))}
    states = {s.device_id: s for s in session.scalars(select(DeviceState))}
    depth = _depths({d.id: d.parent_id for d in devices.values()})
    for device_id in sorted(by_device, key=lambda i: (depth.get(i, 0), i)):
        device = devices.get(device_id)
        if device is None:  # deleted while it was polled
            continue
        result = by_device[device_id]
        state = states.get(device_id)
        if state is None:
            state = DeviceState(device_id=device_id, status="unknown", failures=0, successes=0)
            session.add(state)
            states[device_id] = state
        parent = states.get(device.parent_id) if device.parent_id else None
        suppressed: Suppression | None = None
        if parent is not None and parent.status in ("down", "unreachable"):
            suppressed = "parent"
        elif alerting.in_maintenance(device.maintenance or [], now):
            suppressed = "maintenance"
        _apply(state, result, rule, suppressed, now, applied)
    session.flush()
    metrics.record_sweep(
        metrics.DeviceSample(
            device.name,
            states[device.id].status if device.id in states else "unknown",
            by_device[device.id].rtt_avg_ms if device.id in by_device else None,
        )
        for device in devices.values()
        if device.enabled
    )
    POLLS.labels("icmp", "ok").inc(applied.ok)
    POLLS.labels("icmp", "failed").inc(applied.failed)
    if applied.ok + applied.failed:
        POLL_SUCCESS.labels("icmp").set(applied.ok / (applied.ok + applied.failed))
    return applied


def _apply(
    state: DeviceState,
    result: PollResult,
    rule: DownRule,
    suppressed: Suppression | None,
    now: datetime,
    applied: Applied,
) -> None:
    counters = Counters(state.failures, state.successes, state.failing_since).after(
        result.ok, result.at
    )
    state.failures, state.successes = counters.failures, counters.successes
    state.failing_since = counters.failing_since
    state.last_poll_at = result.at
    state.last_loss_pct = result.loss_pct
    state.last_rtt_ms = result.rtt_avg_ms
    if result.ok:
        state.last_ok_at = result.at
        applied.ok += 1
    else:
        applied.failed += 1
    state.status = alerting.device_status(counters, rule, suppressed, now, state.status)
