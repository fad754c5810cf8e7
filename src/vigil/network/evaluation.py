"""Runs the alert rules over the devices' latest polls and keeps the alert history.

Called after each sweep (for the devices it polled and the kinds its collector feeds) and by
the ``network.alerts.evaluate`` job (every device, every kind). Each observation is used
once (``NetworkAlert.observed_at``), so evaluating twice, or concurrently with a sweep,
changes nothing. The caller owns the transaction; what is to be notified comes back as
(alert id, state) pairs for ``network.alert.changed`` events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from vigil.core.db import utcnow
from vigil.network import alerting, rules
from vigil.network.alerting import DownRule, Suppression
from vigil.network.models import AlertRule, Device, DeviceState, NetworkAlert, Sample
from vigil.network.rules import IcmpState, Observation, RuleSpec, SnmpSnapshot, Source
from vigil.network.snmp_polling import COUNTER32_BITS, counter_rate

T = TypeVar("T")
AlertKey = tuple[int, int | None, str, str]  # device, rule id (None: built-in), kind, subject
SNMP_METRICS = ("snmp.ok", "snmp.uptime_s", "snmp.cpu_pct", "snmp.mem_pct")


@dataclass
class Evaluated:
    devices: int = 0
    observations: int = 0
    changed: int = 0
    #: (alert, state) to notify: fired, resolved after firing, or repeated.
    pending_notices: list[tuple[NetworkAlert, str]] = field(default_factory=list)

    @property
    def notify(self) -> list[tuple[int, str]]:
        return [(alert.id, state) for alert, state in self.pending_notices]


def spec_of(rule: AlertRule) -> RuleSpec:
    return RuleSpec(
        id=rule.id,
        name=rule.name,
        kind=rule.kind,
        threshold=rule.threshold,
        failures=rule.failures,
        for_seconds=rule.for_seconds,
        recover_after=rule.recover_after,
        interface=rule.interface,
        severity=rule.severity,
        device_id=rule.device_id,
        tag=rule.tag,
    )


def _tags(device: Device) -> frozenset[str]:
    return frozenset(t for t in device.tags.split(",") if t)


def _icmp_state(state: DeviceState | None) -> IcmpState | None:
    if state is None:
        return None
    return IcmpState(
        state.last_poll_at,
        state.failures,
        state.successes,
        state.failing_since,
        state.last_loss_pct,
        state.last_rtt_ms,
    )


def snmp_snapshots(
    session: Session, devices: Sequence[Device], now: datetime
) -> dict[int, SnmpSnapshot]:
    """Per device, its last answered SNMP poll within three intervals (one query over the
    recent samples, by the time index), with interface error rates from the poll before,
    and its last poll (``snmp.ok``) with the failed ones since the last answered."""
    polled = [d for d in devices if d.snmp_interval_seconds]
    if not polled:
        return {}
    lookback = 3 * max(d.snmp_interval_seconds or 0 for d in polled) + 60
    polls: dict[int, dict[datetime, dict[str, float]]] = {}
    ids = [d.id for d in polled]
    for chunk in range(0, len(ids), 500):
        rows = session.execute(
            select(Sample.device_id, Sample.metric, Sample.ts, Sample.value).where(
                Sample.ts >= now - timedelta(seconds=lookback),
                Sample.device_id.in_(ids[chunk : chunk + 500]),
                or_(
                    Sample.metric.in_(SNMP_METRICS),
                    Sample.metric.like("if.%.oper"),
                    Sample.metric.like("if.%.admin"),
                    Sample.metric.like("if.%.in_errors"),
                    Sample.metric.like("if.%.out_errors"),
                ),
            )
        ).all()
        for device_id, metric, ts, value in rows:
            polls.setdefault(device_id, {}).setdefault(ts, {})[metric] = value
    out = {}
    for device_id, by_ts in polls.items():
        answered = sorted((ts for ts, v in by_ts.items() if "snmp.uptime_s" in v), reverse=True)
        tried = sorted((ts for ts, v in by_ts.items() if "snmp.ok" in v), reverse=True)
        newest = answered[0] if answered else None
        failed = [ts for ts in tried if newest is None or ts > newest]
        last = tried[0] if failed else None
        if newest is None:
            if last is not None:  # only failed polls in the window
                out[device_id] = SnmpSnapshot(last, {}, {}, last, len(failed))
            continue
        values = by_ts[newest]
        rates: dict[str, float] = {}
        if len(answered) > 1:
            rates = _error_rates(answered[1], by_ts[answered[1]], newest, values)
        out[device_id] = SnmpSnapshot(newest, values, rates, last, len(failed))
    return out


def _error_rates(
    before_at: datetime, before: dict[str, float], at: datetime, values: dict[str, float]
) -> dict[str, float]:
    rates = {}
    for metric in values:
        if not (metric.startswith("if.") and metric.endswith(".oper")):
            continue
        name = metric[3:-5]
        total = 0.0
        for direction in ("in", "out"):
            key = f"if.{name}.{direction}_errors"
            if key not in values or key not in before:
                break
            rate = counter_rate(
                before[key],
                before["snmp.uptime_s"],
                before_at,
                values[key],
                values["snmp.uptime_s"],
                at,
                COUNTER32_BITS,  # ifInErrors and ifOutErrors wrap at 2**32
            )
            if rate is None:
                break
            total += rate
        else:
            rates[name] = total
    return rates


def _icmp_down(state: DeviceState) -> bool:
    return state.status in ("down", "unreachable")


def _suppression(
    device: Device, states: dict[int, DeviceState], now: datetime
) -> Suppression | None:
    parent = states.get(device.parent_id) if device.parent_id else None
    if parent is not None and parent.status in ("down", "unreachable"):
        return "parent"
    if alerting.in_maintenance(device.maintenance or [], now):
        return "maintenance"
    return None


@dataclass
class _Run:
    session: Session
    now: datetime
    kinds: set[str]
    repeat: timedelta | None
    states: dict[int, DeviceState]
    snaps: dict[int, SnmpSnapshot]
    result: Evaluated


def evaluate(
    session: Session,
    default_down: DownRule,
    *,
    now: datetime | None = None,
    devices: Iterable[int] | None = None,
    sources: Iterable[Source] = ("icmp", "snmp"),
    repeat: timedelta | None = None,
) -> Evaluated:
    """Runs the enabled rules of ``sources``' kinds over the enabled ``devices`` (None:
    all); ``repeat``: notify firing, unacknowledged alerts again after this long."""
    now = now or utcnow()
    kinds: set[str] = set(sources)
    result = Evaluated()
    if devices is None:
        _close_disabled(session, now, result)
        scope = list(
            session.scalars(select(Device).where(Device.enabled.is_(True)).order_by(Device.id))
        )
    else:
        scope = _chunked(
            session,
            sorted(set(devices)),
            lambda ids: select(Device).where(Device.enabled.is_(True), Device.id.in_(ids)),
        )
    result.devices = len(scope)
    if not scope:
        session.flush()
        return result
    stored = [
        spec_of(r)
        for r in session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True)))
        if rules.KINDS[r.kind].source in kinds
    ]
    default = rules.builtin_down(default_down)
    open_alerts: dict[int, dict[AlertKey, NetworkAlert]] = {}
    scope_ids = [d.id for d in scope]
    for alert in _chunked(
        session,
        scope_ids,
        lambda ids: select(NetworkAlert).where(
            NetworkAlert.state.in_(rules.OPEN_STATES), NetworkAlert.device_id.in_(ids)
        ),
    ):
        key = (alert.device_id, alert.rule_id, alert.rule, alert.subject)
        open_alerts.setdefault(alert.device_id, {})[key] = alert
    # The devices' states and their parents' (for the suppression).
    wanted = sorted(set(scope_ids) | {d.parent_id for d in scope if d.parent_id})
    states = _chunked(
        session, wanted, lambda ids: select(DeviceState).where(DeviceState.device_id.in_(ids))
    )
    run = _Run(
        session,
        now,
        kinds,
        repeat,
        {s.device_id: s for s in states},
        snmp_snapshots(session, scope, now) if any(r.source == "snmp" for r in stored) else {},
        result,
    )
    for device in scope:
        tags = _tags(device)
        applicable = [r for r in stored if r.applies_to(device.id, tags)]
        if "icmp" in kinds and not any(r.kind == "device_down" for r in applicable):
            applicable.append(default)
        _device(run, device, applicable, open_alerts.get(device.id, {}))
    session.flush()
    return result


def _chunked(
    session: Session, ids: Sequence[int], query: Callable[[list[int]], Select[T]]
) -> list[T]:
    """The rows of ``query`` over ``ids``, 500 ids per statement."""
    out: list[T] = []
    for start in range(0, len(ids), 500):
        out.extend(session.scalars(query(list(ids[start : start + 500]))))
    return out


def _close_disabled(session: Session, now: datetime, result: Evaluated) -> None:
    """The open alerts of disabled devices are resolved (a notice if they had fired)."""
    stmt = (
        select(NetworkAlert)
        .join(Device, Device.id == NetworkAlert.device_id)
        .where(Device.enabled.is_(False), NetworkAlert.state.in_(rules.OPEN_STATES))
    )
    for alert in session.scalars(stmt):
        _close(alert, "the device is disabled", now, result)
        result.changed += 1


def _device(
    run: _Run, device: Device, applicable: list[RuleSpec], open_alerts: dict[AlertKey, NetworkAlert]
) -> None:
    suppressed = _suppression(device, run.states, run.now)
    icmp_state = _icmp_state(run.states.get(device.id))
    snap = run.snaps.get(device.id)
    for rule in applicable:
        if rule.source == "icmp":
            observations = rules.icmp_observations(rule, icmp_state) if icmp_state else []
        else:
            down = icmp_state is not None and _icmp_down(run.states[device.id])
            observations = rules.snmp_observations(rule, snap, down) if snap else []
        for obs in observations:
            key = (device.id, rule.id, rule.kind, obs.subject)
            alert = _observe(
                run.session,
                open_alerts.get(key),
                device,
                rule,
                obs,
                suppressed,
                run.now,
                run.result,
            )
            if alert is not None:
                open_alerts[key] = alert
    live = {(r.id, r.kind) for r in applicable}
    for (_, rule_id, kind, _), alert in open_alerts.items():
        info = rules.KINDS.get(kind)
        if alert.state not in rules.OPEN_STATES or info is None or info.source not in run.kinds:
            continue
        if (rule_id, kind) not in live:
            _close(alert, "the rule no longer applies", run.now, run.result)
        elif (
            run.repeat
            and alert.state == "firing"
            and alert.notified_at is not None
            and run.now - alert.notified_at >= run.repeat
        ):
            alert.notified_at = run.now
            run.result.pending_notices.append((alert, "firing"))


def _observe(
    session: Session,
    alert: NetworkAlert | None,
    device: Device,
    rule: RuleSpec,
    obs: Observation,
    suppressed: Suppression | None,
    now: datetime,
    result: Evaluated,
) -> NetworkAlert | None:
    if alert is not None and alert.observed_at is not None and obs.at <= alert.observed_at:
        return alert  # seen already
    result.observations += 1
    current = alert.state if alert is not None else None
    started = alert.started_at if alert is not None else None
    step = rules.step(current, started, alert.ok_count if alert else 0, obs, rule, suppressed)
    if step.state is None:
        return None
    if alert is None:
        alert = NetworkAlert(
            device_id=device.id,
            rule=rule.kind,
            rule_id=rule.id,
            subject=obs.subject,
            severity=rule.severity,
            state="pending",
            started_at=step.started_at or obs.at,
            message="",
            ok_count=0,
            updated_at=now,
        )
        session.add(alert)
        result.changed += 1
    alert.observed_at, alert.value = obs.at, obs.value
    alert.ok_count, alert.suppressed_by = step.ok_count, step.suppressed_by
    if obs.breaching:
        alert.message = _message(rule, obs)[:500]
    if step.state == alert.state:
        return alert
    result.changed += 1
    if step.state == "resolved":
        _close(alert, "cleared", now, result)
        return alert
    alert.state, alert.updated_at = step.state, now
    if step.state == "firing":
        alert.fired_at = alert.notified_at = now
        result.pending_notices.append((alert, "firing"))
    return alert


def _message(rule: RuleSpec, obs: Observation) -> str:
    if rule.kind == "device_down":
        return f"not answering ICMP ({obs.value:g} failed polls)"
    return rules.describe(rule.kind, obs.subject, obs.value, rule.threshold)


def _close(alert: NetworkAlert, why: str, now: datetime, result: Evaluated) -> None:
    """Resolves an open alert; the receivers hear of it when they heard it fire."""
    fired = alert.fired_at is not None
    alert.state, alert.resolved_at, alert.updated_at = "resolved", now, now
    alert.suppressed_by = None
    if why != "cleared":
        alert.message = why
    if fired:
        result.pending_notices.append((alert, "resolved"))


def notices(session: Session, requested: Sequence[tuple[int, str]]) -> list[Any]:
    """The notices of (alert id, state) pairs, in order; a "firing" notice of an alert
    acknowledged since is dropped (acknowledged alerts are not paged again)."""
    ids = [alert_id for alert_id, _ in requested]
    rows = {
        a.id: (a, d, name)
        for a, d, name in session.execute(
            select(NetworkAlert, Device, AlertRule.name)
            .join(Device, Device.id == NetworkAlert.device_id)
            .outerjoin(AlertRule, AlertRule.id == NetworkAlert.rule_id)
            .where(NetworkAlert.id.in_(ids))
        ).all()
    }
    out = []
    for alert_id, state in requested:
        if alert_id not in rows:
            continue  # the device was deleted since
        alert, device, rule_name = rows[alert_id]
        if state == "firing" and alert.acknowledged_at is not None:
            continue  # acknowledged before the notice went out: not paged again
        out.append(
            rules.notice(
                alert_id=alert.id,
                kind=alert.rule,
                rule_name=rule_name,
                builtin=alert.rule_id is None,
                state=state,
                device=device.name,
                address=device.address,
                site=device.site,
                subject=alert.subject,
                severity=alert.severity,
                message=alert.message,
                started_at=alert.started_at,
                fired_at=alert.fired_at,
                resolved_at=alert.resolved_at,
            )
        )
    return out
