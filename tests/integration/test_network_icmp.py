"""The ICMP collector against real peers: loopback addresses and test hosts in network
namespaces these tests create. A host whose link is taken down goes down after the pending
polls, its child is suppressed, and it comes back after the recovery polls; the webhooks
(Alertmanager JSON, Slack, Discord) on a local receiver get one firing and one resolved
notice. On SQLite and PostgreSQL, through the API and the job runner."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.netns import NsHost, namespace_allowing_unprivileged_ping, ns_hosts
from tests.support.webhook import Receiver
from vigil.cli import app as cli_app
from vigil.core.locks import job_lock
from vigil.core.models import JobLog
from vigil.core.runtime import Runtime
from vigil.network import icmp

FAST = {
    "network_icmp_count": 1,
    "network_icmp_interval_seconds": 0.0,
    "network_icmp_timeout_seconds": 0.3,
}


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[NsHost]]:
    with ns_hosts(2) as made:
        yield made


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_loopback_polls_measure_rtt_and_loss() -> None:
    settings = icmp.PingSettings(count=3, interval=0.01, timeout=0.5, concurrency=2)
    targets = [(1, "127.0.0.1"), (2, "::1"), (3, "127.0.0.2"), (4, "localhost")]
    results = icmp.poll(targets, settings)
    assert [r.key for r in results] == [1, 2, 3, 4]
    for r in results:
        assert r.ok, r
        assert (r.sent, r.received, r.loss_pct) == (3, 3, 0.0)
        assert r.rtt_min_ms is not None
        assert r.rtt_max_ms is not None
        assert 0 < r.rtt_min_ms <= (r.rtt_avg_ms or 0) <= r.rtt_max_ms < 100
        assert set(r.samples()) == set(icmp.METRICS)


SWEEP = """
import json, sys
from vigil.network import icmp
raw = sys.argv[1] == "raw"
targets = [(i, f"127.2.{i // 250}.{i % 250 + 1}") for i in range(300)]
settings = icmp.PingSettings(count=2, interval=0.0, timeout=1.0, concurrency=100, raw=raw)
results = icmp.poll(targets, settings)
print(json.dumps({"allowed": icmp.unprivileged_allowed(),
                  "addresses": [r.address for r in results],
                  "replies": [[r.sent, r.received] for r in results]}))
"""


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "unprivileged"])
def test_a_sweep_of_many_targets_matches_every_reply_to_its_request(raw: bool) -> None:
    command = [sys.executable, "-c", SWEEP, "raw" if raw else "unprivileged"]
    with ExitStack() as stack:
        if not raw and not icmp.unprivileged_allowed():
            # Datagram ICMP is refused in this namespace: sweep from one that admits it
            # (ping_group_range is per network namespace).
            name = stack.enter_context(namespace_allowing_unprivileged_ping())
            command = ["ip", "netns", "exec", name, *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    if not raw:
        assert answer["allowed"], "the sweep did not run where datagram ICMP is allowed"
    targets = [f"127.2.{i // 250}.{i % 250 + 1}" for i in range(300)]
    assert answer["addresses"] == targets
    assert all(r == [2, 2] for r in answer["replies"]), answer["replies"]


def test_a_host_whose_link_is_down_does_not_answer(hosts: list[NsHost]) -> None:
    host = hosts[0]
    settings = icmp.PingSettings(count=2, interval=0.0, timeout=0.3)
    [up] = icmp.poll([(1, host.address)], settings)
    assert up.ok
    host.link(False)
    try:
        [down] = icmp.poll([(1, host.address)], settings)
    finally:
        host.link(True)
    assert not down.ok
    assert (down.received, down.loss_pct) == (0, 100.0)
    assert down.samples() == {"icmp.sent": 2.0, "icmp.received": 0.0, "icmp.loss_pct": 100.0}


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def _sweep(runtime: Runtime, ids: list[int]) -> Any:
    run = runtime.runner.run("network.icmp", {"devices": ids})
    assert run.status == "ok", run
    runtime.queue.drain()  # the notifications the sweep triggered
    return run


def test_device_down_and_back_through_the_job_with_notifications(  # noqa: PLR0915
    db: TransactionalDatabase, hosts: list[NsHost], receiver: Receiver
) -> None:
    client, runtime = api(
        db,
        as_role="operator",
        cache_ttl=0,
        rate_limit="",
        network_secret_key="k",
        network_down_after_failures=2,
        network_up_after_successes=2,
        webhooks=[
            {"url": receiver.url("/am"), "format": "alertmanager"},
            {"url": receiver.url("/slack"), "format": "slack"},
            {"url": receiver.url("/discord"), "format": "discord"},
        ],
        webhook_max_attempts=1,
        **FAST,
    )
    router, behind = hosts

    def add(name: str, address: str, parent: int | None = None) -> int:
        body = {"name": name, "address": address, "parent_id": parent, "site": "lab"}
        response = client.post("/api/v1/devices", json=body)
        assert response.status_code == 201, response.text
        device_id: int = response.json()["id"]
        return device_id

    lo, v6 = add("lo", "127.0.0.1"), add("lo6", "::1")
    r = add("router", router.address)
    h = add("host", behind.address, parent=r)
    ids = [lo, v6, r, h]

    def status() -> dict[int, str]:
        items = client.get("/api/v1/devices", params={"site": "lab"}).json()["items"]
        return {d["id"]: d["status"] for d in items}

    _sweep(runtime, ids)
    assert status() == dict.fromkeys(ids, "up")
    router.link(False)
    behind.link(False)
    try:
        _sweep(runtime, ids)  # one failure: pending, still up
        assert status() == {lo: "up", v6: "up", r: "up", h: "up"}
        assert (
            client.get("/api/v1/network/alerts", params={"state": "pending"}).json()["total"] == 2
        )
        _sweep(runtime, ids)  # two: the router fires, the host behind it is unreachable
        assert status() == {lo: "up", v6: "up", r: "down", h: "unreachable"}
        firing = client.get("/api/v1/network/alerts", params={"state": "open"}).json()
        by_device = {a["device"]: a for a in firing["items"]}
        assert by_device["router"]["state"] == "firing"
        assert by_device["host"]["state"] == "pending"
        assert by_device["host"]["suppressed_by"] == "parent"
        # What the "device down for 5 min" rule and the dashboard read.
        assert gauge("vigil_network_device_down", device="router") == 1
        assert gauge("vigil_network_device_down", device="host") == 0  # suppressed
        assert gauge("vigil_network_devices", status="down") == 1
        assert gauge("vigil_network_devices", status="unreachable") == 1
        assert gauge("vigil_network_devices", status="up") == 2
        assert len(receiver.on("/am")) == 1
    finally:
        router.link(True)
        behind.link(True)
    _sweep(runtime, ids)  # one good poll: still down (hysteresis)
    assert status()[r] == "down"
    _sweep(runtime, ids)
    assert status() == dict.fromkeys(ids, "up")
    assert gauge("vigil_network_device_down", device="router") == 0
    assert gauge("vigil_network_devices", status="up") == 4
    alerts = client.get("/api/v1/network/alerts").json()["items"]
    assert sorted((a["device"], a["state"]) for a in alerts) == [
        ("host", "resolved"),
        ("router", "resolved"),
    ]

    am = receiver.on("/am")
    assert [b["status"] for b in am] == ["firing", "resolved"]  # nothing for the host
    assert am[0]["alerts"][0]["labels"]["device"] == "router"
    assert am[0]["alerts"][0]["fingerprint"] == am[1]["alerts"][0]["fingerprint"]
    assert [b["text"].split(":")[0] for b in receiver.on("/slack")] == [
        "Device down",
        "[RESOLVED] Device down",
    ]
    assert len(receiver.on("/discord")) == 2

    rtt = client.get(
        f"/api/v1/network/devices/{lo}/samples", params={"metric": "icmp.rtt_avg_ms"}
    ).json()
    assert len(rtt["points"]) == 5
    loss = client.get(
        f"/api/v1/network/devices/{r}/samples", params={"metric": "icmp.loss_pct"}
    ).json()
    assert [p["value"] for p in loss["points"]] == [0.0, 100.0, 100.0, 0.0, 0.0]
    with db.session() as session:
        runs = session.scalars(select(JobLog).where(JobLog.job_type.startswith("network."))).all()
        assert {(j.job_type, j.status) for j in runs} == {
            ("network.icmp", "ok"),
            ("network.alerts.notify", "ok"),
        }


def test_maintenance_silences_a_device(
    db: TransactionalDatabase, hosts: list[NsHost], receiver: Receiver
) -> None:
    client, runtime = api(
        db,
        as_role="operator",
        cache_ttl=0,
        rate_limit="",
        network_down_after_failures=1,
        webhooks=[{"url": receiver.url("/am"), "format": "alertmanager"}],
        **FAST,
    )
    window = {"start": "2000-01-01T00:00:00Z", "end": "2999-01-01T00:00:00Z", "reason": "swap"}
    body = {"name": "in-maintenance", "address": hosts[0].address, "maintenance": [window]}
    device = client.post("/api/v1/devices", json=body).json()
    hosts[0].link(False)
    try:
        _sweep(runtime, [device["id"]])
        _sweep(runtime, [device["id"]])
    finally:
        hosts[0].link(True)
    [alert] = client.get("/api/v1/network/alerts").json()["items"]
    assert (alert["state"], alert["suppressed_by"]) == ("pending", "maintenance")
    assert receiver.on("/am") == []


def test_only_due_devices_are_polled(db: TransactionalDatabase) -> None:
    client, runtime = api(db, as_role="operator", cache_ttl=0, rate_limit="", **FAST)
    # A day-long interval: the first slot starts within the next day, so the chance that it
    # starts in the milliseconds between adding and polling is ~1e-6 (60 s: ~1e-3, a flake).
    added = client.post(
        "/api/v1/devices",
        json={"name": "new", "address": "127.0.0.1", "icmp_interval_seconds": 86_400},
    )
    assert added.status_code == 201, added.text
    run = runtime.runner.run("network.icmp")  # just added: its first slot is still ahead
    assert (run.status, run.message) == ("skipped", "no device due a poll")


def test_the_ping_command() -> None:
    result = CliRunner().invoke(cli_app, ["network", "ping", "127.0.0.1", "::1", "--count", "2"])
    assert result.exit_code == 0, result.output
    assert "127.0.0.1" in result.output
    assert "2/2 replies" in result.output


def test_the_ping_command_fails_for_a_silent_host(hosts: list[NsHost]) -> None:
    hosts[1].link(False)
    try:
        result = CliRunner().invoke(
            cli_app, ["network", "ping", hosts[1].address, "--count", "1", "--timeout", "0.3"]
        )
    finally:
        hosts[1].link(True)
    assert result.exit_code == 1
    assert "no reply" in result.output


def test_at_most_the_configured_number_of_targets_are_pinged_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_flight = most = 0

    async def slow_ping(pinger: Any, address: str, settings: Any) -> tuple[int, list[float], None]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return 1, [0.1], None

    monkeypatch.setattr(icmp, "_raw_ping", slow_ping)
    settings = icmp.PingSettings(count=1, interval=0.0, timeout=0.5, concurrency=4, raw=True)
    results = icmp.poll([(i, f"127.0.0.{i}") for i in range(1, 21)], settings)
    assert most == 4
    assert all(r.ok for r in results)


def _icmp_polls(outcome: str) -> float:
    labels = {"collector": "icmp", "outcome": outcome}
    return REGISTRY.get_sample_value("vigil_network_polls_total", labels) or 0.0


def test_polls_are_counted_and_a_running_sweep_is_not_overlapped(
    db: TransactionalDatabase,
) -> None:
    client, runtime = api(db, as_role="operator", cache_ttl=0, rate_limit="", **FAST)
    added = client.post("/api/v1/devices", json={"name": "lo", "address": "127.0.0.1"})
    device_id = added.json()["id"]
    with job_lock(db.engine, "job:network.icmp") as held:  # as if another worker's sweep ran
        assert held
        skipped = runtime.runner.run("network.icmp", {"devices": [device_id]})
    assert (skipped.status, skipped.message) == (
        "skipped",
        "already running elsewhere; not started",
    )
    before = _icmp_polls("ok")
    run = runtime.runner.run("network.icmp", {"devices": [device_id]})
    assert run.status == "ok", run
    assert _icmp_polls("ok") - before == 1
    ratio = REGISTRY.get_sample_value("vigil_network_poll_success_ratio", {"collector": "icmp"})
    assert ratio == 1.0
