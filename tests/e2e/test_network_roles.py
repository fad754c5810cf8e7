"""The network module in the distributed roles, as real processes: ``vigil api``,
``vigil scheduler`` and ``vigil worker`` (``-Q collect``, ``-Q analytics``) on the real
PostgreSQL and a private Redis. Devices go in through the API; the scheduler sends the ICMP
sweeps to the ``collect`` worker, which pings loopback and a test host in a network
namespace; when the host's link goes down the device goes down, the alert event crosses
Redis to the ``analytics`` worker, whose notification reaches a local webhook receiver; it
comes back when the link does. Nothing runs in the test's own process except the HTTP
calls and the namespace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Backend, StartVigil, VigilProcess, free_port, wait_for
from tests.support.netns import NsHost, ns_hosts
from tests.support.redis_server import PrivateRedis
from tests.support.webhook import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def host() -> Iterator[NsHost]:
    with ns_hosts(1) as made:
        yield made[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def sign_in_first_admin(api: VigilProcess) -> None:
    """The first account of a new installation is its Admin; its token writes devices."""
    account = {"email": "netops@example.org", "password": "a long e2e password"}
    assert api.client.post("/api/v1/auth/register", json=account).status_code == 201
    token = api.client.post(
        "/api/v1/auth/token", data={"username": account["email"], "password": account["password"]}
    )
    assert token.status_code == 200, token.text
    api.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"


def test_collect_worker_polls_devices_and_a_link_down_pages_and_recovers(
    postgres: Backend,
    private_redis: PrivateRedis,
    start_vigil: StartVigil,
    host: NsHost,
    receiver: Receiver,
) -> None:
    env = {
        "VIGIL_REDIS_URL": private_redis.url,
        "VIGIL_RUN_JOBS_ON_START": "false",  # no NBP backfill: this is about the network
        "VIGIL_NETWORK_SECRET_KEY": "e2e network key",
        "VIGIL_NETWORK_ICMP_TICK_SECONDS": "1",
        "VIGIL_NETWORK_ICMP_COUNT": "1",
        "VIGIL_NETWORK_ICMP_INTERVAL_SECONDS": "0",
        "VIGIL_NETWORK_ICMP_TIMEOUT_SECONDS": "0.5",
        "VIGIL_NETWORK_DOWN_AFTER_FAILURES": "1",
        "VIGIL_NETWORK_UP_AFTER_SUCCESSES": "1",
        "VIGIL_WEBHOOKS": json.dumps([{"url": receiver.url("/am"), "format": "alertmanager"}]),
        "VIGIL_WEBHOOK_BACKOFF_INITIAL_SECONDS": "0",
    }
    api = start_vigil(postgres, None, ("api",), env)
    api.wait_ready()
    sign_in_first_admin(api)
    ids: dict[str, int] = {}
    for name, address in (("loopback", "127.0.0.1"), ("lab-host", host.address)):
        created = api.client.post(
            "/api/v1/devices",
            json={"name": name, "address": address, "site": "e2e", "icmp_interval_seconds": 10},
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]

    # As the chart runs them: one worker per queue. The sweeps' alert events travel over
    # Redis to the analytics worker, which sends the notifications.
    worker, notifier = (
        start_vigil(postgres, None, ("worker", "-Q", q, "--metrics-port", str(free_port())), env)
        for q in ("collect", "analytics")
    )
    scheduler = start_vigil(postgres, None, ("scheduler",), env)
    processes = (api, worker, notifier, scheduler)

    def statuses() -> dict[str, str]:
        for process in processes:
            process.ensure_alive()
        items = api.get_json("/api/v1/devices", site="e2e")["items"]
        return {d["name"]: d["status"] for d in items}

    def diagnostics() -> str:
        return "\n".join(p.diagnostics() for p in (worker, notifier, scheduler))

    def when(expected: dict[str, str], what: str) -> None:
        wait_for(
            lambda: True if statuses() == expected else None,
            timeout=45,
            what=what,
            interval=0.5,
            diagnostics=lambda: f"{statuses()}\n{diagnostics()}",
        )

    when({"loopback": "up", "lab-host": "up"}, "the worker's first polls")
    host.link(False)
    try:
        when({"loopback": "up", "lab-host": "down"}, "the host to go down")
        firing = wait_for(
            lambda: receiver.on("/am") or None,
            timeout=20,
            what="the firing notification",
            diagnostics=diagnostics,
        )
    finally:
        host.link(True)
    assert firing[0]["status"] == "firing"
    assert firing[0]["alerts"][0]["labels"]["device"] == "lab-host"
    when({"loopback": "up", "lab-host": "up"}, "the host to come back")
    notices: list[Any] = wait_for(
        lambda: receiver.on("/am") if len(receiver.on("/am")) >= 2 else None,
        timeout=20,
        what="the resolved notification",
        diagnostics=diagnostics,
    )
    assert [n["status"] for n in notices] == ["firing", "resolved"]

    # The sweeps ran in the collect worker, the notifications in the analytics one.
    alerts = api.get_json("/api/v1/network/alerts")["items"]
    assert [(a["device"], a["state"]) for a in alerts] == [("lab-host", "resolved")]
    runs = postgres.job_runs("network.icmp")
    polled = [r for r in runs if r.status == "ok"]
    assert polled, [(r.status, r.message) for r in runs]
    assert {r.worker.rsplit(":", 1)[1] for r in polled} == {str(worker.pid)}
    sent = [r for r in postgres.job_runs("network.alerts.notify") if r.status == "ok"]
    assert {r.worker.rsplit(":", 1)[1] for r in sent} == {str(notifier.pid)}
    rtt = api.get_json(
        f"/api/v1/network/devices/{ids['loopback']}/samples", metric="icmp.rtt_avg_ms"
    )
    # Polled when first seen up and at least once in the 10 s slots the host took to go
    # down and come back (how many more depends on where the slots fall).
    assert len(rtt["points"]) >= 2
    assert all(0 <= p["value"] < 500 for p in rtt["points"])

    codes = [process.terminate() for process in (scheduler, worker, notifier)]
    assert codes == [0, 0, 0], diagnostics()
    api.terminate()
