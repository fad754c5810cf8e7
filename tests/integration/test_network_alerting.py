"""Alert rules through the API and the jobs, on SQLite and PostgreSQL: CRUD with roles,
audit and problem+json refusals; every kind fires and resolves with its notifications on a
local webhook receiver (Alertmanager JSON, Slack), hysteresis, parent suppression,
acknowledgement (not repeated, the resolution still sent), deleted and disabled rules.

The polls are written as the collectors leave them (device state, samples), so each test
controls every value; the collectors themselves are tested against real peers in
test_network_icmp.py and test_network_snmp.py (the down rule end to end)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import bearer, login, make_user
from tests.support.webhook import Receiver
from vigil.core.auth.models import AuditEntry
from vigil.core.db import utcnow
from vigil.core.runtime import Runtime
from vigil.network import evaluation, polling
from vigil.network.models import DeviceState, Sample

RULES = "/api/v1/network/rules"
ALERTS = "/api/v1/network/alerts"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _app(
    db: TransactionalDatabase, receiver: Receiver, **settings: Any
) -> tuple[TestClient, Runtime]:
    return api(
        db,
        as_role="operator",
        cache_ttl=0,
        rate_limit="",
        network_secret_key="k",
        webhooks=[
            {"url": receiver.url("/am"), "format": "alertmanager"},
            {"url": receiver.url("/slack"), "format": "slack"},
        ],
        webhook_max_attempts=3,
        webhook_backoff_initial_seconds=0.01,
        webhook_backoff_max_seconds=0.02,
        **settings,
    )


def _device(client: TestClient, name: str, **fields: Any) -> int:
    body = {"name": name, "address": "192.0.2.1", **fields}
    response = client.post("/api/v1/devices", json=body)
    assert response.status_code == 201, response.text
    device_id: int = response.json()["id"]
    return device_id


def _as(client: TestClient, db: TransactionalDatabase, role: str) -> dict[str, str]:
    user = make_user(db, client.app.state.auth, role)  # type: ignore[attr-defined]
    return bearer(login(client, user.email)["access_token"])


def _rule(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post(RULES, json=fields)
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


def _poll(
    db: TransactionalDatabase,
    device_id: int,
    at: datetime,
    *,
    failures: int = 0,
    loss: float = 0.0,
    rtt: float | None = 1.0,
    status: str | None = None,
) -> None:
    """What an ICMP sweep leaves in the device's state."""
    with db.session() as session:
        state = session.get(DeviceState, device_id) or DeviceState(device_id=device_id)
        session.add(state)
        ok = failures == 0
        state.failures = failures
        state.successes = 0 if not ok else (state.successes or 0) + 1
        state.failing_since = None if ok else (state.failing_since or at)
        state.last_poll_at, state.last_loss_pct, state.last_rtt_ms = at, loss, rtt
        state.status = status or state.status or "unknown"
        session.commit()


def _evaluate(runtime: Runtime) -> Any:
    run = runtime.runner.run("network.alerts.evaluate", {})
    assert run.status == "ok", run
    runtime.queue.drain()  # the notifications it triggered
    return run


def _alerts(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get(ALERTS, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _am(receiver: Receiver) -> list[tuple[str, str]]:
    return [
        (body["alerts"][0]["labels"]["alertname"], body["status"]) for body in receiver.on("/am")
    ]


def test_rules_crud_with_roles_audit_and_refusals(
    db: TransactionalDatabase, receiver: Receiver
) -> None:
    client, _ = _app(db, receiver)
    device = _device(client, "core-1", tags=["core"])
    rule = _rule(client, name="core loss", kind="packet_loss", tag="core", threshold=5)
    assert (rule["threshold"], rule["for_seconds"], rule["recover_after"]) == (5.0, 0, 2)
    per_device = _rule(
        client, name="cpu", kind="cpu", device_id=device, threshold=90, for_seconds=300
    )
    assert per_device["device"] == "core-1"

    refusals = [
        {"name": "x", "kind": "cpu", "threshold": 90},  # neither device nor tag
        {"name": "x", "kind": "cpu", "threshold": 90, "tag": "a", "device_id": device},
        {"name": "x", "kind": "packet_loss", "tag": "core", "threshold": 100},  # out of range
        {"name": "x", "kind": "cpu", "tag": "core", "threshold": -1},
        {"name": "x", "kind": "rtt", "tag": "core"},  # needs a threshold
        {"name": "x", "kind": "device_down", "tag": "core", "threshold": 3},  # takes none
        {"name": "x", "kind": "cpu", "tag": "core", "threshold": 50, "interface": "eth*"},
        {"name": "x", "kind": "nope", "tag": "core"},
        {"name": "x", "kind": "cpu", "device_id": 999999, "threshold": 50},  # no such device
        {"name": "x", "kind": "cpu", "tag": "has space", "threshold": 50},
    ]
    for body in refusals:
        response = client.post(RULES, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    bad_patch = client.patch(f"{RULES}/{rule['id']}", json={"threshold": 150})
    assert bad_patch.status_code == 422
    assert "out of range" in bad_patch.json()["detail"]
    assert client.patch(f"{RULES}/{rule['id']}", json={"kind": "cpu"}).status_code == 422
    assert client.get(f"{RULES}/999999").status_code == 404

    changed = client.patch(f"{RULES}/{rule['id']}", json={"threshold": 10, "for_seconds": 60})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["threshold"], changed.json()["for_seconds"]) == (10.0, 60)
    listed = client.get(RULES, params={"kind": "packet_loss"}).json()
    assert [r["name"] for r in listed["items"]] == ["core loss"]
    assert client.get(RULES).json()["total"] == 2

    viewer = _as(client, db, "viewer")
    assert client.get(RULES, headers=viewer).status_code == 200
    refused = client.post(
        RULES, json={"name": "v", "kind": "cpu", "tag": "a", "threshold": 1}, headers=viewer
    )
    assert refused.status_code == 403
    assert client.delete(f"{RULES}/{rule['id']}").status_code == 403  # an Operator
    admin = _as(client, db, "admin")
    assert client.delete(f"{RULES}/{rule['id']}", headers=admin).status_code == 204
    assert client.get(f"{RULES}/{rule['id']}").status_code == 404

    with db.session() as session:
        actions = session.execute(
            select(AuditEntry.action, AuditEntry.entity_id)
            .where(AuditEntry.entity == "network_alert_rule")
            .order_by(AuditEntry.id)
        ).all()
    assert actions == [
        ("create", str(rule["id"])),
        ("create", str(per_device["id"])),
        ("update", str(rule["id"])),
        ("delete", str(rule["id"])),
    ]


def test_loss_and_rtt_rules_fire_and_resolve_with_notifications(
    db: TransactionalDatabase, receiver: Receiver
) -> None:
    client, runtime = _app(db, receiver)
    edge = _device(client, "edge-1", tags=["edge"])
    quiet = _device(client, "edge-2", tags=["edge"])
    loss = _rule(client, name="edge loss", kind="packet_loss", tag="edge", threshold=20,
                 for_seconds=120, recover_after=2, severity="critical")  # fmt: skip
    _rule(client, name="slow", kind="rtt", device_id=edge, threshold=100, recover_after=1)
    base = utcnow() - timedelta(hours=1)
    script = [(50, 150.0), (50, 90.0), (50, 90.0), (0, 90.0), (0, 90.0)]  # (loss %, rtt ms)
    states = []
    for minute, (loss_pct, rtt) in enumerate(script):
        at = base + timedelta(minutes=minute)
        _poll(db, edge, at, loss=loss_pct, rtt=rtt)
        _poll(db, quiet, at, loss=0, rtt=5)
        _evaluate(runtime)
        states.append({(a["rule"], a["state"]) for a in _alerts(client, device_id=edge)})
    assert states[0] == {("packet_loss", "pending"), ("rtt", "firing")}
    assert states[1] == {("packet_loss", "pending"), ("rtt", "resolved")}
    assert ("packet_loss", "firing") in states[2]  # held for 2 minutes
    assert ("packet_loss", "firing") in states[3]  # one good poll: still firing (hysteresis)
    assert ("packet_loss", "resolved") in states[4]
    assert _alerts(client, device_id=quiet) == []
    assert _am(receiver) == [
        ("HighRtt", "firing"),
        ("HighRtt", "resolved"),
        ("PacketLoss", "firing"),
        ("PacketLoss", "resolved"),
    ]
    fired = receiver.on("/am")[2]["alerts"][0]
    assert fired["labels"] == {
        "alertname": "PacketLoss",
        "device": "edge-1",
        "address": "192.0.2.1",
        "severity": "critical",
        "rule": "edge loss",
    }
    assert "packet loss: 50%" in fired["annotations"]["description"]
    assert receiver.on("/slack")[0]["text"].startswith("High RTT: edge-1")
    [resolved] = _alerts(client, kind="packet_loss", state="resolved")
    assert (resolved["rule_id"], resolved["rule_name"]) == (loss["id"], "edge loss")

    # Evaluating again with no new poll changes nothing (each poll is used once).
    before = len(receiver.on("/am"))
    assert "0 alert changes, 0 notices" in _evaluate(runtime).message
    assert len(receiver.on("/am")) == before


def test_down_rule_suppression_acknowledgement_and_repeats(  # noqa: PLR0915
    db: TransactionalDatabase, receiver: Receiver
) -> None:
    client, runtime = _app(db, receiver, network_alert_repeat_minutes=0.0001)
    router = _device(client, "router", tags=["core"])
    host = _device(client, "host", parent_id=router, tags=["core"])
    plain = _device(client, "plain")  # no stored rule: the built-in down rule (3 failures)
    _rule(client, name="core down", kind="device_down", tag="core", failures=2, recover_after=2)
    base = utcnow() - timedelta(hours=1)

    def poll_all(minute: int, failures: int, router_status: str, host_status: str) -> None:
        at = base + timedelta(minutes=minute)
        _poll(
            db, router, at, failures=failures, loss=100.0 if failures else 0.0, status=router_status
        )
        _poll(db, host, at, failures=failures, loss=100.0 if failures else 0.0, status=host_status)
        _poll(db, plain, at, failures=failures, loss=100.0 if failures else 0.0)
        _evaluate(runtime)

    poll_all(0, 1, "up", "up")
    by = {a["device"]: a for a in _alerts(client, state="open")}
    assert {d: a["state"] for d, a in by.items()} == {
        "router": "pending", "host": "pending", "plain": "pending",
    }  # fmt: skip
    poll_all(1, 2, "down", "unreachable")  # the router fires, the host is suppressed
    by = {a["device"]: a for a in _alerts(client, state="open")}
    assert by["router"]["state"] == "firing"
    assert (by["host"]["state"], by["host"]["suppressed_by"]) == ("pending", "parent")
    assert by["plain"]["state"] == "pending"  # the built-in rule wants 3 failures
    assert by["router"]["rule_name"] == "core down"
    assert _am(receiver) == [("DeviceDown", "firing")]

    viewer = _as(client, db, "viewer")
    alert_id = by["router"]["id"]
    assert client.post(f"{ALERTS}/{alert_id}/ack", headers=viewer).status_code == 403
    pending = client.post(f"{ALERTS}/{by['host']['id']}/ack")
    assert pending.status_code == 409
    assert pending.headers["content-type"] == "application/problem+json"
    assert client.post(f"{ALERTS}/999999/ack").status_code == 404
    acked = client.post(f"{ALERTS}/{alert_id}/ack")
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_at"] is not None
    assert client.post(f"{ALERTS}/{alert_id}/ack").json()["state"] == "acknowledged"  # again: no-op
    with db.session() as session:
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "network_alert")
        ).all()
    assert [(e.action, e.entity_id) for e in audited] == [("acknowledge", str(alert_id))]
    assert audited[0].actor == acked.json()["acknowledged_by"]

    poll_all(2, 3, "down", "unreachable")  # plain fires; the acknowledged router is not repeated
    assert _am(receiver) == [("DeviceDown", "firing"), ("DeviceDown", "firing")]
    assert receiver.on("/am")[1]["alerts"][0]["labels"]["device"] == "plain"
    poll_all(3, 4, "down", "unreachable")  # repeats: plain again, never the acknowledged one
    repeated = [b["alerts"][0]["labels"]["device"] for b in receiver.on("/am")[2:]]
    assert repeated == ["plain"]
    assert _alerts(client, state="acknowledged")[0]["device"] == "router"

    poll_all(4, 0, "down", "unreachable")  # one good poll: nothing resolves
    assert len(_alerts(client, state="open")) == 3
    poll_all(5, 0, "up", "up")
    assert _alerts(client, state="open") == []
    resolved = [
        (b["alerts"][0]["labels"]["device"], b["status"])
        for b in receiver.on("/am")
        if b["status"] == "resolved"
    ]
    assert sorted(resolved) == [("plain", "resolved"), ("router", "resolved")]  # not the host


def test_snmp_rules_cpu_memory_interfaces_fire_and_resolve(
    db: TransactionalDatabase, receiver: Receiver
) -> None:
    client, runtime = _app(db, receiver)
    switch = _device(client, "sw-1", snmp_interval_seconds=60, tags=["access"])
    for body in (
        {"name": "cpu", "kind": "cpu", "tag": "access", "threshold": 90, "recover_after": 1},
        {"name": "mem", "kind": "memory", "tag": "access", "threshold": 90, "recover_after": 1},
        {"name": "links", "kind": "interface_down", "tag": "access", "interface": "eth*",
         "recover_after": 1, "severity": "critical"},
        {"name": "errors", "kind": "interface_errors", "tag": "access", "threshold": 10,
         "recover_after": 1},
    ):  # fmt: skip
        _rule(client, **body)
    now = utcnow()
    t0, t1, t2 = (
        now - timedelta(seconds=130),
        now - timedelta(seconds=70),
        now - timedelta(seconds=10),
    )

    def poll(at: datetime, uptime: float, cpu: float, eth1: float, eth0_errors: float) -> Any:
        values = {
            "snmp.ok": 1.0,
            "snmp.uptime_s": uptime,
            "snmp.cpu_pct": cpu,
            "snmp.mem_pct": 50.0,
            "if.eth0.oper": 1.0,
            "if.eth0.in_errors": eth0_errors,
            "if.eth0.out_errors": 0.0,
            "if.eth1.oper": eth1,
            "if.eth1.in_errors": 0.0,
            "if.eth1.out_errors": 0.0,
            "if.lo.oper": 2.0,  # down, but not matched by eth*
        }
        with db.session() as session:
            session.add_all(
                Sample(device_id=switch, metric=m, ts=at, value=v) for m, v in values.items()
            )
            done = evaluation.evaluate(
                session, polling.down_rule(runtime.settings), now=now, sources=("snmp",)
            )
            session.commit()
        run = runtime.runner.run("network.alerts.notify", {"alerts": done.notify})
        assert run.status in ("ok", "skipped"), run
        return done

    poll(t0, 100, 50, 1, 0)
    assert _alerts(client) == []
    poll(t1, 160, 95, 2, 1200)  # cpu 95 %, eth1 down, eth0 20 errors/s
    open_ = {(a["rule"], a["subject"]): a for a in _alerts(client, state="firing")}
    assert set(open_) == {("cpu", ""), ("interface_down", "eth1"), ("interface_errors", "eth0")}
    assert open_[("interface_errors", "eth0")]["value"] == pytest.approx(20.0)
    again = evaluation.evaluate  # the same poll evaluated twice changes nothing
    with db.session() as session:
        assert (
            again(session, polling.down_rule(runtime.settings), now=now, sources=("snmp",)).changed
            == 0
        )
    poll(t2, 220, 10, 1, 1200)
    assert _alerts(client, state="open") == []
    assert sorted(_am(receiver)) == sorted(
        [(name, status) for name in ("HighCpu", "InterfaceDown", "InterfaceErrors")
         for status in ("firing", "resolved")]
    )  # fmt: skip
    down = next(
        b for b in receiver.on("/am") if b["alerts"][0]["labels"]["alertname"] == "InterfaceDown"
    )
    assert down["alerts"][0]["labels"]["interface"] == "eth1"


def test_disabled_and_deleted_rules_close_their_alerts(
    db: TransactionalDatabase, receiver: Receiver
) -> None:
    client, runtime = _app(db, receiver)
    device = _device(client, "d1")
    rule = _rule(client, name="rtt", kind="rtt", device_id=device, threshold=10)
    other = _rule(client, name="rtt2", kind="rtt", device_id=device, threshold=20)
    _poll(db, device, utcnow() - timedelta(minutes=5), rtt=50)
    _evaluate(runtime)
    assert len(_alerts(client, state="firing")) == 2
    assert client.patch(f"{RULES}/{rule['id']}", json={"enabled": False}).status_code == 200
    _evaluate(runtime)
    [closed] = _alerts(client, state="resolved")
    assert (closed["rule_id"], closed["message"]) == (rule["id"], "the rule no longer applies")
    assert ("HighRtt", "resolved") in _am(receiver)
    admin = _as(client, db, "admin")
    assert client.delete(f"{RULES}/{other['id']}", headers=admin).status_code == 204
    assert _alerts(client, state="open") == []
    assert {a["message"] for a in _alerts(client)} == {"the rule no longer applies", "rule deleted"}


def test_a_disabled_device_has_its_alerts_resolved(
    db: TransactionalDatabase, receiver: Receiver
) -> None:
    client, runtime = _app(db, receiver)
    device = _device(client, "d1")
    kept = _device(client, "d2")
    for target in (device, kept):
        _rule(client, name=f"rtt {target}", kind="rtt", device_id=target, threshold=10)
        _poll(db, target, utcnow() - timedelta(minutes=1), rtt=50)
    _evaluate(runtime)
    assert len(_alerts(client, state="firing")) == 2
    assert client.patch(f"/api/v1/devices/{device}", json={"enabled": False}).status_code == 200
    _evaluate(runtime)
    [closed] = _alerts(client, device_id=device)
    assert (closed["state"], closed["message"]) == ("resolved", "the device is disabled")
    assert _alerts(client, device_id=kept)[0]["state"] == "firing"
    assert _am(receiver) == [("HighRtt", "firing")] * 2 + [("HighRtt", "resolved")]


def test_notifications_are_retried(db: TransactionalDatabase, receiver: Receiver) -> None:
    client, runtime = _app(db, receiver)
    device = _device(client, "d1")
    _rule(client, name="rtt", kind="rtt", device_id=device, threshold=10)
    receiver.plan["/am"] = [503, 502]  # two refusals, then taken
    _poll(db, device, utcnow() - timedelta(minutes=1), rtt=50)
    _evaluate(runtime)
    assert [b["status"] for b in receiver.on("/am")] == ["firing"] * 3
    assert len(receiver.on("/slack")) == 1
