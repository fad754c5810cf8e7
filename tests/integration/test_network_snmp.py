"""The SNMP collector against Debian's snmpd, started by the tests on a high loopback port:
v2c and v3 (authPriv) devices added through the API with encrypted credentials, two sweeps of
the network.snmp job, interface rates checked against the stored counters, a device with
wrong credentials counted as failed. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.snmpd import Snmpd, snmpd


@pytest.fixture(scope="module")
def agent() -> Iterator[Snmpd]:
    with snmpd() as running:
        yield running


def _series(client: TestClient, device_id: int, metric: str) -> list[tuple[datetime, float]]:
    response = client.get(f"/api/v1/network/devices/{device_id}/samples", params={"metric": metric})
    assert response.status_code == 200, response.text
    return [(datetime.fromisoformat(p["ts"]), p["value"]) for p in response.json()["points"]]


def test_snmp_v2c_and_v3_polls_with_interface_rates(
    db: TransactionalDatabase, agent: Snmpd
) -> None:
    client, runtime = api(
        db,
        as_role="operator",
        cache_ttl=0,
        rate_limit="",
        network_secret_key="k",
        network_snmp_timeout_seconds=0.3,
        network_snmp_retries=0,
    )

    def add(name: str, credentials: dict[str, Any]) -> int:
        body = {
            "name": name,
            "address": "127.0.0.1",
            "snmp_port": agent.port,
            "snmp_interval_seconds": 60,
            "credentials": credentials,
        }
        response = client.post("/api/v1/devices", json=body)
        assert response.status_code == 201, response.text
        device_id: int = response.json()["id"]
        return device_id

    v2c, v3 = add("agent-v2c", agent.v2c), add("agent-v3", agent.v3)
    wrong = add("agent-wrong", {**agent.v2c, "community": "not-this-one"})
    ids = [v2c, v3, wrong]

    first = runtime.runner.run("network.snmp", {"devices": ids})
    assert first.status == "ok", first
    assert "2 answered, 1 did not" in (first.message or "")
    time.sleep(3.5)  # snmpd refreshes its interface table every ~3 s
    second = runtime.runner.run("network.snmp", {"devices": ids})
    assert second.status == "ok", second

    for device_id in (v2c, v3):
        assert [v for _, v in _series(client, device_id, "snmp.ok")] == [1.0, 1.0]
        (t1, up1), (t2, up2) = _series(client, device_id, "snmp.uptime_s")
        assert 0 < up2 - up1 < (t2 - t1).total_seconds() + 1
        (_, oper), *_ = _series(client, device_id, "if.lo.oper")
        assert oper == 1.0  # up
        octets = _series(client, device_id, "if.lo.in_octets")
        [(_, rate)] = _series(client, device_id, "if.lo.in_bps")
        (a_ts, a), (b_ts, b) = octets
        assert b > a  # the SNMP requests themselves went through lo
        expected = (b - a) * 8 / (b_ts - a_ts).total_seconds()
        assert rate == pytest.approx(expected, abs=0.001)  # stored to 3 decimals
    assert [v for _, v in _series(client, wrong, "snmp.ok")] == [0.0, 0.0]
    assert _series(client, wrong, "snmp.uptime_s") == []


def test_only_devices_with_snmp_and_credentials_are_polled(
    db: TransactionalDatabase, agent: Snmpd
) -> None:
    client, runtime = api(db, as_role="operator", cache_ttl=0, rate_limit="")
    client.post(  # no credentials: never an SNMP target
        "/api/v1/devices",
        json={"name": "plain", "address": "127.0.0.1", "snmp_interval_seconds": 60},
    )
    run = runtime.runner.run("network.snmp")
    assert (run.status, run.message) == ("skipped", "no device due an SNMP poll")
