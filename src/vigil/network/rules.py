"""Alert rules: what each kind watches, and the one state machine every kind runs.

A rule watches a device (``device_id``) or every device with a tag (``tag``). Each kind
reads the latest poll of one collector:

- ``device_down`` (ICMP): the poll failed. Due after ``failures`` consecutive failed polls
  or once polls have failed for ``for_seconds`` (when set).
- ``packet_loss`` (ICMP): loss % > ``threshold``, of polls that got at least one reply
  (a poll with no reply at all is the down rule's business).
- ``rtt`` (ICMP): average RTT > ``threshold`` ms.
- ``cpu`` / ``memory`` (SNMP): ``snmp.cpu_pct`` / ``snmp.mem_pct`` > ``threshold`` %.
- ``interface_down`` (SNMP): per interface (``interface`` glob), admin status up (1) and
  oper status down (2) or lowerLayerDown (7): an interface shut down on purpose (admin
  down or testing) is not an alarm. A poll without ifAdminStatus counts as admin up.
- ``interface_errors`` (SNMP): per interface, in + out errors per second since the
  previous poll > ``threshold``.
- ``snmp_down`` (SNMP): the last SNMP poll got no answer (timeout, refused credentials)
  while ICMP does not say the device is down (that is ``device_down``'s): the agent, not the
  device, is gone. Its value: the failed SNMP polls in a row.

The other SNMP kinds read the last *answered* poll only: when polls fail, they see nothing
new and their alerts keep their state (no data is not a recovery).

The threshold kinds are due once the condition has held for ``for_seconds`` (the pending
period, from the pending alert's start: fewer than ``recover_after`` good observations in
between do not reset it). Every kind resolves after ``recover_after`` good observations in a row
(hysteresis: a flapping condition stays firing and pages once). A due alert whose device's
parent is down, or that is in a maintenance window, stays pending (``suppressed_by``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Literal

from vigil.core.notify import Notice
from vigil.network import alerting
from vigil.network.alerting import Counters, DownRule, Suppression

Kind = Literal[
    "device_down",
    "packet_loss",
    "rtt",
    "interface_down",
    "interface_errors",
    "cpu",
    "memory",
    "snmp_down",
]
Source = Literal["icmp", "snmp"]
OPEN_STATES = ("pending", "firing", "acknowledged")
#: ifOperStatus values that mean the interface is down.
IF_DOWN = (2.0, 7.0)
#: ifAdminStatus up: the interface is meant to be up.
IF_ADMIN_UP = 1.0


@dataclass(frozen=True)
class KindInfo:
    source: Source
    event: str  # the notice's alertname
    title: str
    #: Allowed thresholds (exclusive upper bound) and their unit; None: no threshold.
    threshold: tuple[float, float] | None
    unit: str = ""
    per_interface: bool = False


KINDS: dict[str, KindInfo] = {
    "device_down": KindInfo("icmp", "DeviceDown", "Device down", None),
    "packet_loss": KindInfo("icmp", "PacketLoss", "Packet loss", (0, 100), "%"),
    "rtt": KindInfo("icmp", "HighRtt", "High RTT", (0, 600_000), " ms"),
    "interface_down": KindInfo("snmp", "InterfaceDown", "Interface down", None, "", True),
    "interface_errors": KindInfo(
        "snmp", "InterfaceErrors", "Interface errors", (0, 1e12), " errors/s", True
    ),
    "cpu": KindInfo("snmp", "HighCpu", "High CPU", (0, 100), "%"),
    "memory": KindInfo("snmp", "HighMemory", "High memory", (0, 100), "%"),
    "snmp_down": KindInfo("snmp", "SnmpDown", "SNMP not answering", None),
}


@dataclass(frozen=True)
class RuleSpec:
    """A rule as the evaluation uses it (``id`` None: the built-in down rule)."""

    id: int | None
    name: str
    kind: str
    threshold: float | None = None
    failures: int | None = None
    for_seconds: int = 0
    recover_after: int = 2
    interface: str | None = None
    severity: str = "warning"
    device_id: int | None = None
    tag: str | None = None

    @property
    def source(self) -> Source:
        return KINDS[self.kind].source

    def applies_to(self, device_id: int, tags: frozenset[str]) -> bool:
        if self.device_id is not None:
            return self.device_id == device_id
        return self.tag is not None and self.tag in tags

    def down_rule(self) -> DownRule:
        return DownRule(
            down_after_failures=self.failures or 3,
            down_after=timedelta(seconds=self.for_seconds) if self.for_seconds else None,
            up_after_successes=self.recover_after,
        )


def builtin_down(rule: DownRule) -> RuleSpec:
    """The settings' down rule, for every device no stored down rule covers."""
    return RuleSpec(
        id=None,
        name="Device down (default)",
        kind="device_down",
        failures=rule.down_after_failures,
        for_seconds=int(rule.down_after.total_seconds()) if rule.down_after else 0,
        recover_after=rule.up_after_successes,
        severity="critical",
    )


@dataclass(frozen=True)
class Observation:
    """One new look at a rule's condition on a device (``subject``: an interface or "")."""

    subject: str
    at: datetime
    breaching: bool
    value: float | None
    #: For device_down, from the poll counters: whether it is due, since when it fails and
    #: the good polls in a row. None: the generic pending period and hysteresis count.
    due: bool | None = None
    since: datetime | None = None
    ok_streak: int | None = None


@dataclass(frozen=True)
class Step:
    state: str | None  # None: no alert (none was open and nothing breaches)
    started_at: datetime | None
    ok_count: int
    suppressed_by: Suppression | None


def step(
    state: str | None,
    started_at: datetime | None,
    ok_count: int,
    obs: Observation,
    rule: RuleSpec,
    suppressed: Suppression | None,
) -> Step:
    """The alert's state after one observation. ``state``: the open alert's (pending,
    firing, acknowledged) or None."""
    if obs.breaching:
        if state in ("firing", "acknowledged"):
            return Step(state, started_at, 0, None)
        start = (started_at if state == "pending" else None) or obs.since or obs.at
        due = (
            obs.due
            if obs.due is not None
            else obs.at - start >= timedelta(seconds=rule.for_seconds)
        )
        if due and suppressed is None:
            return Step("firing", start, 0, None)
        return Step("pending", start, 0, suppressed if due else None)
    if state is None:
        return Step(None, None, 0, None)
    ok = obs.ok_streak if obs.ok_streak is not None else ok_count + 1
    if ok >= rule.recover_after:
        return Step("resolved", started_at, ok, None)
    return Step(state, started_at, ok, None)


# --- observations from the latest poll --------------------------------------------------------


@dataclass(frozen=True)
class IcmpState:
    """What the last ICMP poll left in the device's state."""

    last_poll_at: datetime | None
    failures: int
    successes: int
    failing_since: datetime | None
    loss_pct: float | None
    rtt_ms: float | None


@dataclass(frozen=True)
class SnmpSnapshot:
    """The device's last answered SNMP poll: its samples, and per interface the error rate
    since the poll before (when known); and its last poll, answered or not. A device whose
    recent polls all failed has no samples (``at`` is then the last poll's time)."""

    at: datetime
    values: Mapping[str, float]
    error_rates: Mapping[str, float]
    #: The last poll's time (None: the answered one) and the failed polls since the last
    #: answered one (0: the last poll answered).
    polled_at: datetime | None = None
    failures: int = 0

    def interfaces(self) -> list[str]:
        return sorted({m[3:-5] for m in self.values if m.startswith("if.") and m.endswith(".oper")})


def _over(value: float | None, threshold: float | None) -> bool:
    return value is not None and threshold is not None and value > threshold


def icmp_observations(rule: RuleSpec, state: IcmpState) -> list[Observation]:
    if state.last_poll_at is None:
        return []
    at = state.last_poll_at
    if rule.kind == "device_down":
        counters = Counters(state.failures, state.successes, state.failing_since)
        return [
            Observation(
                "",
                at,
                state.failures > 0,
                float(state.failures),
                due=alerting.is_due(counters, rule.down_rule(), at),
                since=state.failing_since,
                ok_streak=state.successes,
            )
        ]
    if state.failures > 0:  # no reply at all: the down rule's, no loss or RTT to judge
        return []
    value = state.loss_pct if rule.kind == "packet_loss" else state.rtt_ms
    if value is None:
        return []
    return [Observation("", at, _over(value, rule.threshold), value)]


def snmp_observations(
    rule: RuleSpec, snap: SnmpSnapshot, device_down: bool = False
) -> list[Observation]:
    """``device_down``: ICMP says the device is down or unreachable, so a failing SNMP
    poll is no news (``snmp_down`` sees nothing)."""
    if rule.kind == "snmp_down":
        if device_down:
            return []
        at = snap.polled_at or snap.at
        return [Observation("", at, snap.failures > 0, float(snap.failures))]
    if rule.kind in ("cpu", "memory"):
        value = snap.values.get(f"snmp.{'cpu' if rule.kind == 'cpu' else 'mem'}_pct")
        if value is None:
            return []
        return [Observation("", snap.at, _over(value, rule.threshold), value)]
    out = []
    for name in snap.interfaces():
        if rule.interface and not fnmatchcase(name, rule.interface):
            continue
        if rule.kind == "interface_down":
            oper = snap.values[f"if.{name}.oper"]
            admin = snap.values.get(f"if.{name}.admin", IF_ADMIN_UP)
            out.append(Observation(name, snap.at, admin == IF_ADMIN_UP and oper in IF_DOWN, oper))
        elif name in snap.error_rates:
            rate = snap.error_rates[name]
            out.append(Observation(name, snap.at, _over(rate, rule.threshold), rate))
    return out


# --- notices ----------------------------------------------------------------------------------


def describe(rule_kind: str, subject: str, value: float | None, threshold: float | None) -> str:
    info = KINDS.get(rule_kind)
    if info is None or value is None:
        return ""
    where = f" on {subject}" if subject else ""
    if rule_kind == "interface_down":
        return f"interface {subject} is down (oper status {value:g})"
    if rule_kind == "snmp_down":
        return f"the SNMP agent does not answer ({value:g} failed polls)"
    limit = f" (> {threshold:g}{info.unit})" if threshold is not None else ""
    return f"{info.title.lower()}{where}: {value:.4g}{info.unit}{limit}"


def notice(
    *,
    alert_id: int,
    kind: str,
    rule_name: str | None,
    builtin: bool,
    state: str,
    device: str,
    address: str,
    site: str | None,
    subject: str,
    severity: str,
    message: str,
    started_at: datetime,
    fired_at: datetime | None,
    resolved_at: datetime | None,
) -> Notice:
    """The notice of an alert that fired, was resolved or is repeated. The built-in down
    rule keeps its original labels and text."""
    if kind == "device_down" and builtin:
        return alerting.notice(
            alert_id=alert_id,
            state=state,
            device=device,
            address=address,
            site=site,
            started_at=started_at,
            fired_at=fired_at,
            resolved_at=resolved_at,
        )
    info = KINDS[kind]
    resolved = state == "resolved"
    since = (fired_at or started_at).isoformat(timespec="seconds")
    what = f"{device} ({address})" + (f" {subject}" if subject else "")
    text = f"{what}: cleared (since {since})." if resolved else f"{what}: {message} since {since}."
    labels = {"device": device, "address": address, "severity": severity}
    if rule_name:
        labels["rule"] = rule_name
    if subject:
        labels["interface"] = subject
    if site:
        labels["site"] = site
    title = f"{info.title}: {device}" + (f" {subject}" if subject else "")
    return Notice(
        event=info.event,
        title=f"{'[RESOLVED] ' if resolved else ''}{title}",
        text=text,
        details={"alert_id": alert_id, "state": state, "kind": kind, **labels},
        status="resolved" if resolved else "firing",
        labels=labels,
        starts_at=fired_at or started_at,
        ends_at=resolved_at if resolved else None,
    )
