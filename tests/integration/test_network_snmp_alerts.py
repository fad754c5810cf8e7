"""SNMP alert rules when the SNMP poll fails, on SQLite and PostgreSQL: against Debian's
snmpd (tests/support/snmpd.py) on loopback, stopped while the device still answers pings,
the `snmp_down` rule fires and the other SNMP alerts keep their state (no data is not a
recovery); the agent back, `snmp_down` resolves and the others go on from the new data. A
device that ICMP says is down gets no `snmp_down` alert (that is `device_down`'s)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.support.app import api, network_api
from tests.support.snmpd import snmpd
from vigil.core.db import utcnow
from vigil.network import evaluation, polling
from vigil.network.models import DeviceState, Sample


def _open(client: TestClient) -> dict[str, tuple[str, float | None]]:
    response = client.get("/api/v1/network/alerts", params={"state": "open"})
    assert response.status_code == 200, response.text
    return {a["rule"]: (a["state"], a["value"]) for a in response.json()["items"]}


def _rule(client: TestClient, **body: Any) -> None:
    response = client.post("/api/v1/network/rules", json={"recover_after": 1, **body})
    assert response.status_code == 201, response.text


def test_a_stopped_agent_fires_snmp_down_and_keeps_the_other_snmp_alerts(
    db: TransactionalDatabase,
) -> None:
    client, runtime = network_api(db)
    with snmpd() as agent:
        response = client.post(
            "/api/v1/devices",
            json={
                "name": "agent",
                "address": "127.0.0.1",
                "snmp_port": agent.port,
                "snmp_interval_seconds": 60,
                "icmp_interval_seconds": 60,
                "credentials": agent.v2c,
            },
        )
        assert response.status_code == 201, response.text
        device = response.json()["id"]
        _rule(client, name="agent gone", kind="snmp_down", device_id=device)
        _rule(client, name="memory", kind="memory", device_id=device, threshold=0.5)
        assert runtime.runner.run("network.icmp", {"devices": [device]}).status == "ok"
        run = runtime.runner.run("network.snmp", {"devices": [device]})
        assert "1 answered" in (run.message or ""), run
        memory = _open(client)["memory"]
        assert memory[0] == "firing"  # any host uses more than 0.5 % of its RAM
        assert "snmp_down" not in _open(client)

    # The agent stopped, the host still answers pings.
    assert runtime.runner.run("network.icmp", {"devices": [device]}).status == "ok"
    assert client.get(f"/api/v1/devices/{device}").json()["status"] == "up"
    for failures in (1, 2):
        failed = runtime.runner.run("network.snmp", {"devices": [device]})
        assert "1 did not (127.0.0.1: " in (failed.message or ""), failed
        assert runtime.runner.run("network.alerts.evaluate").status == "ok"
        assert _open(client) == {
            "snmp_down": ("firing", float(failures)),  # failed SNMP polls in a row
            "memory": memory,  # kept as it was: no new data, no recovery
        }

    with snmpd(port=agent.port):
        back = runtime.runner.run("network.snmp", {"devices": [device]})
        assert "1 answered" in (back.message or ""), back
    still = _open(client)
    assert list(still) == ["memory"]  # snmp_down resolved
    assert still["memory"][0] == "firing"
    response = client.get("/api/v1/network/alerts", params={"state": "resolved"})
    [resolved] = response.json()["items"]
    assert (resolved["rule"], resolved["message"]) == (
        "snmp_down",
        "the SNMP agent does not answer (2 failed polls)",
    )


def test_no_snmp_down_alert_while_icmp_says_the_device_is_down(
    db: TransactionalDatabase,
) -> None:
    client, runtime = api(db, as_role="operator", cache_ttl=0, rate_limit="")
    response = client.post(
        "/api/v1/devices",
        json={"name": "gone", "address": "192.0.2.7", "snmp_interval_seconds": 60},
    )
    device = response.json()["id"]
    _rule(client, name="agent gone", kind="snmp_down", device_id=device)
    now = utcnow()

    def failed_poll(seconds_ago: int, status: str) -> None:
        with db.session() as session:
            state = session.get(DeviceState, device) or DeviceState(device_id=device)
            state.status, state.last_poll_at = status, now - timedelta(seconds=seconds_ago)
            session.add(state)
            ts = now - timedelta(seconds=seconds_ago)
            session.add(Sample(device_id=device, metric="snmp.ok", ts=ts, value=0.0))
            evaluation.evaluate(
                session, polling.down_rule(runtime.settings), now=now, sources=("snmp",)
            )
            session.commit()

    failed_poll(120, "down")
    assert _open(client) == {}  # the device is down: device_down's business
    failed_poll(60, "up")
    assert _open(client) == {"snmp_down": ("firing", 2.0)}
