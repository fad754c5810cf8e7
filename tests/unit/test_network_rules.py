"""The network module's pure parts: the down-alert state machine, poll spreading, input
validation, credential encryption and the Alertmanager payload."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from vigil.core.notify import alertmanager_payload
from vigil.network import alerting, evaluation, icmp, polling, rawping, rules, snmp_polling
from vigil.network.alerting import Counters, DownRule
from vigil.network.credentials import Vault, fernet_key
from vigil.network.schemas import DeviceIn, SnmpV3, valid_address
from vigil.network.snmp import SnmpPoll
from vigil.network.snmp_polling import SnmpResult
from vigil.settings import Settings

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RULE = DownRule(down_after_failures=3, up_after_successes=2)


def run(outcomes: str, rule: DownRule = RULE, suppressed: str | None = None) -> list[str]:
    """Feeds polls ('x' failed, '.' answered) one a minute through the down rule's
    observations and the rules' state machine; returns the alert's state after each ('-'
    for no alert)."""
    spec = rules.builtin_down(rule)
    counters, state, out = Counters(), None, []
    started: datetime | None = None
    ok_count = 0
    for minute, outcome in enumerate(outcomes):
        now = T0 + timedelta(minutes=minute)
        counters = counters.after(outcome == ".", now)
        icmp_state = rules.IcmpState(
            now, counters.failures, counters.successes, counters.failing_since, None, None
        )
        [obs] = rules.icmp_observations(spec, icmp_state)
        step = rules.step(state, started, ok_count, obs, spec, suppressed)  # type: ignore[arg-type]
        state, started, ok_count = step.state, step.started_at, step.ok_count
        out.append(state or "-")
        if state == "resolved":
            state = None
    return out


def test_down_after_n_consecutive_failures_then_resolved_after_m_good_polls() -> None:
    assert run("..xxx..") == [
        "-", "-", "pending", "pending", "firing", "firing", "resolved",
    ]  # fmt: skip


def test_a_blip_shorter_than_the_rule_never_fires() -> None:
    states = run(".xx..x.")
    assert "firing" not in states
    assert states[4] == "resolved"  # resolved from pending: nothing is sent for it


def test_hysteresis_a_flapping_device_fires_once() -> None:
    states = run("xxx.x.x.xx..")
    assert states == ["pending", "pending"] + ["firing"] * 9 + ["resolved"]


def test_down_for_m_minutes_fires_before_n_failures() -> None:
    rule = DownRule(down_after_failures=100, down_after=timedelta(minutes=2))
    assert run("xxx", rule) == ["pending", "pending", "firing"]


def test_a_suppressed_device_stays_pending_and_is_unreachable_behind_its_parent() -> None:
    assert run("xxxx", suppressed="parent") == ["pending"] * 4
    counters = Counters(failures=3, failing_since=T0)
    assert alerting.device_status(counters, RULE, "parent", T0, "up") == "unreachable"
    assert alerting.device_status(counters, RULE, "maintenance", T0, "up") == "up"
    assert alerting.device_status(counters, RULE, None, T0, "up") == "down"
    pending = Counters(failures=1, failing_since=T0)
    assert alerting.device_status(pending, RULE, None, T0, "up") == "up"
    one_good = Counters(successes=1)
    assert alerting.device_status(one_good, RULE, None, T0, "down") == "down"  # hysteresis
    assert alerting.device_status(Counters(successes=2), RULE, None, T0, "down") == "up"


def test_maintenance_windows() -> None:
    windows = [{"start": "2026-11-27T11:00:00+00:00", "end": "2026-11-27T12:00:00+00:00"}]
    assert alerting.in_maintenance(windows, T0 - timedelta(minutes=1))
    assert not alerting.in_maintenance(windows, T0)  # the end is excluded
    assert not alerting.in_maintenance([], T0)


def test_polls_are_spread_over_the_interval_and_each_device_polls_once_per_interval() -> None:
    interval = 60
    phases = sorted(polling.phase(i, interval) for i in range(1, 1001))
    # 1,000 devices in 60 one-second buckets: none holds more than 3x its share.
    buckets = [0] * interval
    for p in phases:
        buckets[int(p)] += 1
    assert max(buckets) < 3 * 1000 / interval
    device = SimpleNamespace(id=7, icmp_interval_seconds=interval, created_at=T0)
    polls, last = 0, None
    for second in range(0, 600, 10):  # a tick every 10 s for 10 minutes
        now = T0 + timedelta(seconds=second)
        if polling.is_due(device, last, now):  # type: ignore[arg-type]
            polls, last = polls + 1, now
    assert polls == 10  # the first at its phase after it was added, then one a minute


def test_addresses() -> None:
    assert valid_address(" 10.0.0.1 ") == "10.0.0.1"
    assert valid_address("2001:DB8::1") == "2001:db8::1"
    assert valid_address("Core-1.Example.org.") == "core-1.example.org"
    for bad in ("10.0.0.256", "-bad.example", "a b", "", "1.2.3", "x" * 64 + ".org"):
        with pytest.raises(ValueError, match="neither"):
            valid_address(bad)


def test_device_input_is_checked() -> None:
    with pytest.raises(ValidationError):
        DeviceIn(name="r1", address="10.0.0.1", icmp_interval_seconds=1)
    with pytest.raises(ValidationError, match="priv"):
        SnmpV3(version="3", user="u", priv_protocol="AES", priv_key="12345678")
    device = DeviceIn(name=" r1 ", address="10.0.0.1", tags=["b", "a", "b"], type="Router")
    assert (device.name, device.tags, device.type) == ("r1", ["a", "b"], "router")


def test_credentials_are_encrypted_and_need_the_key(tmp_path: Path) -> None:
    vault = Vault.from_settings(Settings(network_secret_key="one key", data_dir=tmp_path))
    token = vault.seal({"version": "2c", "community": "s3cret"})
    assert "s3cret" not in token
    assert vault.open(token) == {"version": "2c", "community": "s3cret"}
    rotated = Vault.from_settings(
        Settings(
            network_secret_key="two key",
            network_previous_secret_keys="one key",
            data_dir=tmp_path,
        )
    )
    assert rotated.open(token)["community"] == "s3cret"
    other = Vault.from_settings(Settings(network_secret_key="other", data_dir=tmp_path))
    with pytest.raises(Exception, match="do not decrypt"):
        other.open(token)
    generated = Vault.from_settings(Settings(data_dir=tmp_path))
    assert (tmp_path / "network_secret_key").stat().st_mode & 0o777 == 0o600
    again = Vault.from_settings(Settings(data_dir=tmp_path))
    assert again.open(generated.seal({"a": 1})) == {"a": 1}
    assert fernet_key(fernet_key("x").decode()) == fernet_key("x")


def test_alertmanager_payload() -> None:
    notice = alerting.notice(
        alert_id=5,
        state="resolved",
        device="core-1",
        address="10.0.0.1",
        site="waw",
        started_at=T0,
        fired_at=T0 + timedelta(minutes=3),
        resolved_at=T0 + timedelta(minutes=9),
    )
    body = alertmanager_payload(notice)
    assert body["version"] == "4"
    assert body["status"] == "resolved"
    [alert] = body["alerts"]
    assert alert["labels"] == {
        "alertname": "DeviceDown",
        "device": "core-1",
        "address": "10.0.0.1",
        "severity": "critical",
        "site": "waw",
    }
    assert alert["startsAt"] == "2026-11-27T12:03:00Z"
    assert alert["endsAt"] == "2026-11-27T12:09:00Z"
    firing = alerting.notice(
        alert_id=5, state="firing", device="core-1", address="10.0.0.1", site="waw",
        started_at=T0, fired_at=T0, resolved_at=None,
    )  # fmt: skip
    fired = alertmanager_payload(firing)["alerts"][0]
    assert fired["endsAt"] == "0001-01-01T00:00:00Z"
    assert fired["fingerprint"] == alert["fingerprint"]  # the same alert, opened and closed


def test_socket_kind_follows_ping_group_range(tmp_path: Path) -> None:
    path = tmp_path / "range"
    path.write_text("1\t0\n")  # the kernel's default: nobody
    assert not icmp.unprivileged_allowed(0, path)
    path.write_text("0\t2147483647\n")
    assert icmp.unprivileged_allowed(1000, path)
    assert icmp.use_raw_sockets("raw")
    assert not icmp.use_raw_sockets("unprivileged")


def test_raw_packets_are_matched_by_identifier_and_sequence() -> None:
    ip_header = bytes([0x45]) + bytes(19)  # IPv4, 20-byte header
    echo_reply = struct.pack("!BBHHH", 0, 0, 0, 0x1234, 2) + b"payload"
    assert rawping._parse(4, ip_header + echo_reply) == (0, 0x1234, 2)
    assert rawping._parse(6, struct.pack("!BBHHH", 129, 0, 0, 7, 1)) == (129, 7, 1)
    request = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 3)
    unreachable = struct.pack("!BBHI", 3, 1, 0, 0) + ip_header + request
    assert rawping._parse(4, ip_header + unreachable) == (3, 0x1234, 3)  # quotes the request
    assert rawping._parse(4, b"\x45" + bytes(10)) is None  # truncated


def test_counter_rates_handle_wraps_and_restarts() -> None:
    later = T0 + timedelta(seconds=10)
    assert snmp_polling.counter_rate(1000, 50, T0, 6000, 60, later) == 500.0
    wrapped = snmp_polling.counter_rate(2**64 - 1000, 50, T0, 4000, 60, later)
    assert wrapped == 500.0  # 1,000 to the wrap, 4,000 after it
    assert snmp_polling.counter_rate(2**32 - 10, 50, T0, 90, 60, later, bits=32) == 10.0
    assert snmp_polling.counter_rate(9000, 5000, T0, 10, 3, later) is None  # agent restarted
    assert snmp_polling.counter_rate(1, 50, T0, 2, 60, T0) is None


def _poll(at: datetime, uptime: float, interfaces: dict[str, dict[str, float]]) -> SnmpResult:
    target = snmp_polling.SnmpTarget(1, "192.0.2.1", 161, {})
    return SnmpResult(target, at, SnmpPoll(at, uptime, "r", "", interfaces=interfaces))


def test_octet_rates_wrap_at_the_width_of_the_counters_read() -> None:
    """32-bit ifInOctets (``octets_bits`` 32) wrap at 2**32, the 64-bit ones at 2**64; a
    width that changed between two polls (agent upgraded) gives no rate."""
    later = T0 + timedelta(seconds=10)
    before_32 = {
        "snmp.uptime_s": (50.0, T0),
        "if.eth0.in_octets": (2.0**32 - 1000, T0),
        "if.eth0.out_octets": (10.0, T0),
        "if.eth0.octets_bits": (32.0, T0),
    }
    wrapped = {"in_octets": 4000.0, "out_octets": 1010.0, "octets_bits": 32.0}
    values = snmp_polling.samples_of(_poll(later, 60, {"eth0": wrapped}), before_32)
    assert values["if.eth0.in_bps"] == 5000 * 8 / 10  # 1,000 to the wrap, 4,000 after it
    assert values["if.eth0.out_bps"] == 1000 * 8 / 10
    assert values["if.eth0.octets_bits"] == 32.0
    # The same lower reading of a 64-bit counter wraps at 2**64: a huge, honest rate.
    before_64 = {k: v for k, v in before_32.items() if not k.endswith("octets_bits")}
    hc = {"in_octets": 4000.0, "out_octets": 1010.0}
    values = snmp_polling.samples_of(_poll(later, 60, {"eth0": hc}), before_64)
    assert values["if.eth0.in_bps"] == pytest.approx((2**64 - 2**32 + 5000) * 8 / 10)
    assert "if.eth0.octets_bits" not in values
    # 32-bit before, 64-bit now: no rate rather than a wrong one.
    values = snmp_polling.samples_of(_poll(later, 60, {"eth0": hc}), before_32)
    assert "if.eth0.in_bps" not in values
    assert values["if.eth0.in_octets"] == 4000.0


def test_interface_error_rates_wrap_at_2_32() -> None:
    """ifInErrors and ifOutErrors are Counter32."""
    later = T0 + timedelta(seconds=10)
    before = {"snmp.uptime_s": 50.0, "if.eth0.oper": 1.0}
    before |= {"if.eth0.in_errors": 2.0**32 - 5, "if.eth0.out_errors": 0.0}
    now = {"snmp.uptime_s": 60.0, "if.eth0.oper": 1.0}
    now |= {"if.eth0.in_errors": 5.0, "if.eth0.out_errors": 10.0}
    assert evaluation._error_rates(T0, before, later, now) == {"eth0": 2.0}


# --- alert rules of every kind (vigil.network.rules) -------------------------------------------


def spec(kind: str, **fields: object) -> rules.RuleSpec:
    return rules.RuleSpec(id=1, name=kind, kind=kind, **fields)  # type: ignore[arg-type]


def icmp_at(
    minute: int, *, failures: int = 0, loss: float = 0.0, rtt: float | None = 1.0
) -> rules.IcmpState:
    at = T0 + timedelta(minutes=minute)
    return rules.IcmpState(at, failures, 0 if failures else 1, at if failures else None, loss, rtt)


def feed(rule: rules.RuleSpec, observations: list[rules.Observation]) -> list[str]:
    state, started, ok, out = None, None, 0, []
    for obs in observations:
        step = rules.step(state, started, ok, obs, rule, None)
        state, started, ok = step.state, step.started_at, step.ok_count
        out.append(state or "-")
        if state == "resolved":
            state = None
    return out


def test_loss_and_rtt_rules_fire_after_their_pending_period_and_recover_with_hysteresis() -> None:
    loss = spec("packet_loss", threshold=20.0, for_seconds=120, recover_after=2)
    values = [0, 50, 50, 50, 0, 50, 0, 0]
    observed = [rules.icmp_observations(loss, icmp_at(i, loss=v))[0] for i, v in enumerate(values)]
    # breach at minute 1; due at minute 3 (2 min held); a single good poll does not resolve
    assert feed(loss, observed) == [
        "-", "pending", "pending", "firing", "firing", "firing", "firing", "resolved",
    ]  # fmt: skip
    rtt = spec("rtt", threshold=100.0)
    assert rules.icmp_observations(rtt, icmp_at(0, rtt=150.0))[0].breaching
    assert not rules.icmp_observations(rtt, icmp_at(0, rtt=100.0))[0].breaching  # > only
    # a poll with no reply at all is the down rule's: no loss or RTT observation
    assert rules.icmp_observations(loss, icmp_at(0, failures=1, loss=100.0)) == []


def test_snmp_rules_read_cpu_memory_and_each_interface() -> None:
    values = {
        "snmp.uptime_s": 100.0,
        "snmp.cpu_pct": 95.0,
        "snmp.mem_pct": 40.0,
        "if.eth0.oper": 1.0,
        "if.eth1.oper": 2.0,
        "if.lo.oper": 7.0,  # no admin status stored: taken as up
        "if.eth2.admin": 2.0,  # shut down by an operator: down, but no alarm
        "if.eth2.oper": 2.0,
        "if.eth3.admin": 3.0,  # testing
        "if.eth3.oper": 2.0,
        "if.eth4.admin": 1.0,
        "if.eth4.oper": 2.0,
    }
    snap = rules.SnmpSnapshot(T0, values, {"eth0": 12.5, "eth1": 0.0})
    [cpu] = rules.snmp_observations(spec("cpu", threshold=90.0), snap)
    assert (cpu.breaching, cpu.value) == (True, 95.0)
    [mem] = rules.snmp_observations(spec("memory", threshold=90.0), snap)
    assert not mem.breaching
    down = rules.snmp_observations(spec("interface_down"), snap)
    assert [(o.subject, o.breaching) for o in down] == [
        ("eth0", False), ("eth1", True), ("eth2", False), ("eth3", False), ("eth4", True),
        ("lo", True),
    ]  # fmt: skip
    only_eth = rules.snmp_observations(spec("interface_down", interface="eth*"), snap)
    assert [o.subject for o in only_eth] == ["eth0", "eth1", "eth2", "eth3", "eth4"]
    errors = rules.snmp_observations(spec("interface_errors", threshold=10.0), snap)
    assert [(o.subject, o.breaching) for o in errors] == [("eth0", True), ("eth1", False)]


def test_snmp_down_reads_the_failed_polls_and_the_others_only_answered_ones() -> None:
    """A device whose last SNMP polls failed: snmp_down breaches with the count, unless
    ICMP says the device is down; cpu and the interface kinds see only the last answered
    poll (already observed: the evaluation skips it), or nothing when none is left."""
    rule = spec("snmp_down")
    answered = rules.SnmpSnapshot(T0, {"snmp.cpu_pct": 99.0, "if.eth0.oper": 2.0}, {})
    [ok] = rules.snmp_observations(rule, answered)
    assert (ok.at, ok.breaching, ok.value) == (T0, False, 0.0)
    later = T0 + timedelta(minutes=2)
    failing = rules.SnmpSnapshot(T0, answered.values, {}, polled_at=later, failures=2)
    [down] = rules.snmp_observations(rule, failing)
    assert (down.at, down.breaching, down.value) == (later, True, 2.0)
    assert rules.snmp_observations(rule, failing, device_down=True) == []
    [cpu] = rules.snmp_observations(spec("cpu", threshold=90.0), failing)
    assert cpu.at == T0  # the answered poll's, not the failed one's
    nothing = rules.SnmpSnapshot(later, {}, {}, polled_at=later, failures=3)
    assert rules.snmp_observations(spec("cpu", threshold=90.0), nothing) == []
    assert rules.snmp_observations(spec("interface_down"), nothing) == []
    assert rules.describe("snmp_down", "", 3.0, None) == (
        "the SNMP agent does not answer (3 failed polls)"
    )


def test_a_due_suppressed_alert_stays_pending_and_an_acknowledged_one_stays_acknowledged() -> None:
    rule = spec("cpu", threshold=50.0, recover_after=1)
    hot = rules.Observation("", T0, True, 99.0)
    step = rules.step(None, None, 0, hot, rule, "parent")
    assert (step.state, step.suppressed_by) == ("pending", "parent")
    assert rules.step("acknowledged", T0, 0, hot, rule, None).state == "acknowledged"
    cool = rules.Observation("", T0, False, 1.0)
    assert rules.step("acknowledged", T0, 0, cool, rule, None).state == "resolved"


def test_notices_of_the_new_kinds_carry_rule_and_interface_labels() -> None:
    firing = rules.notice(
        alert_id=7,
        kind="interface_down",
        rule_name="uplinks",
        builtin=False,
        state="firing",
        device="sw-1",
        address="10.0.0.2",
        site=None,
        subject="eth1",
        severity="critical",
        message="interface eth1 is down (oper status 2)",
        started_at=T0,
        fired_at=T0,
        resolved_at=None,
    )
    payload = alertmanager_payload(firing)
    labels = payload["alerts"][0]["labels"]
    assert labels["alertname"] == "InterfaceDown"
    assert (labels["rule"], labels["interface"], labels["severity"]) == (
        "uplinks",
        "eth1",
        "critical",
    )
    fields = {
        "alert_id": 7, "kind": "interface_down", "rule_name": "uplinks", "builtin": False,
        "device": "sw-1", "address": "10.0.0.2", "site": None, "subject": "eth1",
        "severity": "critical", "message": "", "started_at": T0, "fired_at": T0,
    }  # fmt: skip
    resolved = rules.notice(state="resolved", resolved_at=T0 + timedelta(minutes=5), **fields)  # type: ignore[arg-type]
    again = alertmanager_payload(resolved)
    assert again["status"] == "resolved"
    assert again["alerts"][0]["fingerprint"] == payload["alerts"][0]["fingerprint"]
    assert resolved.title.startswith("[RESOLVED] Interface down: sw-1 eth1")
