"""Device-down: the device status from its consecutive poll outcomes, and the down
alert's notice. The alert state machine of every rule kind is ``vigil.network.rules.step``.

An alert opens as **pending** at the first failed poll. It **fires** when the device has
failed ``down_after_failures`` polls in a row, or (when set) has been failing for
``down_after`` — unless it is suppressed: its parent device is down (the child is then
*unreachable*, not down: one page for the router, not one per host behind it) or it is in a
maintenance window. It is **resolved** after ``up_after_successes`` good polls in a row
(hysteresis: a firing alert stays firing through a single good poll, so a flapping device
pages once, not on every poll). A pending alert that recovers is resolved without ever
firing, and nothing is sent for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from vigil.core.notify import Notice

State = Literal["pending", "firing", "resolved"]
Suppression = Literal["parent", "maintenance"]


@dataclass(frozen=True)
class DownRule:
    down_after_failures: int = 3
    down_after: timedelta | None = None
    up_after_successes: int = 2


@dataclass(frozen=True)
class Counters:
    failures: int = 0  # consecutive failed polls
    successes: int = 0  # consecutive good polls
    failing_since: datetime | None = None

    def after(self, ok: bool, at: datetime) -> Counters:
        if ok:
            return Counters(0, self.successes + 1, None)
        return Counters(self.failures + 1, 0, self.failing_since or at)


def is_due(counters: Counters, rule: DownRule, now: datetime) -> bool:
    """Whether the failures so far make the device down."""
    if counters.failures == 0:
        return False
    if counters.failures >= rule.down_after_failures:
        return True
    return (
        rule.down_after is not None
        and counters.failing_since is not None
        and now - counters.failing_since >= rule.down_after
    )


def device_status(
    counters: Counters,
    rule: DownRule,
    suppressed: Suppression | None,
    now: datetime,
    previous: str,
) -> str:
    """The device's status after a poll, by the settings' down rule (the alerts are the
    rules' business, ``vigil.network.rules``): ``down`` when due, ``unreachable`` when due
    but its parent is down, the previous status while a failure is pending or in a
    maintenance window; a down device is ``up`` again after ``up_after_successes`` good
    polls (hysteresis)."""
    if counters.failures > 0:
        if not is_due(counters, rule, now):
            return previous
        if suppressed == "parent":
            return "unreachable"
        return "down" if suppressed is None else previous
    if previous in ("down", "unreachable") and counters.successes < rule.up_after_successes:
        return previous
    return "up"


def in_maintenance(windows: Iterable[Mapping[str, Any]], now: datetime) -> bool:
    for window in windows:
        start = datetime.fromisoformat(str(window["start"]))
        end = datetime.fromisoformat(str(window["end"]))
        if start <= now < end:
            return True
    return False


def notice(
    *,
    alert_id: int,
    state: str,
    device: str,
    address: str,
    site: str | None,
    started_at: datetime,
    fired_at: datetime | None,
    resolved_at: datetime | None,
) -> Notice:
    resolved = state == "resolved"
    since = (fired_at or started_at).isoformat(timespec="seconds")
    text = (
        f"{device} ({address}) is up again (down since {since})."
        if resolved
        else f"{device} ({address}) is not answering ICMP since {since}."
    )
    labels = {"device": device, "address": address, "severity": "critical"}
    if site:
        labels["site"] = site
    return Notice(
        event="DeviceDown",
        title=f"{'[RESOLVED] ' if resolved else ''}Device down: {device}",
        text=text,
        details={"alert_id": alert_id, "state": state, **labels},
        status="resolved" if resolved else "firing",
        labels=labels,
        starts_at=fired_at or started_at,
        ends_at=resolved_at if resolved else None,
    )
