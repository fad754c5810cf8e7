"""The SNMP collector against Debian's snmpd, started by the tests on a high loopback port:
v2c and v3 (authPriv) devices added through the API with encrypted credentials, two sweeps of
the network.snmp job on the process's one SnmpTransport, interface rates checked against the
stored counters, a device with wrong credentials counted as failed (and in
vigil_network_polls_total). The engine serves sweeps from any thread; the side-by-side
GETBULK walk reads what net-snmp's snmpbulkwalk reads; scheduling: a poll cut off at its
deadline, at most N devices in flight, a sweep never started while one runs. On SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.conftest import TransactionalDatabase
from tests.support.app import api, network_api
from tests.support.netns import ns_hosts
from tests.support.snmpd import COMMUNITY, Snmpd, snmpd, snmpget
from vigil.core.locks import job_lock
from vigil.network import snmp, snmp_engine, snmp_polling
from vigil.network.credentials import Vault
from vigil.network.models import Device
from vigil.network.snmp import SnmpClient, oid
from vigil.network.snmp_polling import SnmpTarget
from vigil.network.snmp_transport import SnmpTransport
from vigil.settings import Settings


@pytest.fixture(scope="module")
def agent() -> Iterator[Snmpd]:
    with snmpd() as running:
        yield running


def _series(client: TestClient, device_id: int, metric: str) -> list[tuple[datetime, float]]:
    response = client.get(f"/api/v1/network/devices/{device_id}/samples", params={"metric": metric})
    assert response.status_code == 200, response.text
    return [(datetime.fromisoformat(p["ts"]), p["value"]) for p in response.json()["points"]]


def _polls(outcome: str) -> float:
    labels = {"collector": "snmp", "outcome": outcome}
    return REGISTRY.get_sample_value("vigil_network_polls_total", labels) or 0.0


@pytest.fixture
def engines_used(monkeypatch: pytest.MonkeyPatch) -> list[SnmpTransport]:
    """The engine each sweep of this test ran on."""
    seen: list[SnmpTransport] = []
    real = snmp_polling.poll_many

    async def spy(targets: Any, settings: Settings, engine: SnmpTransport) -> Any:
        seen.append(engine)
        return await real(targets, settings, engine)

    monkeypatch.setattr(snmp_polling, "poll_many", spy)
    return seen


def test_snmp_v2c_and_v3_polls_with_interface_rates(
    db: TransactionalDatabase, agent: Snmpd, engines_used: list[SnmpTransport]
) -> None:
    client, runtime = network_api(db)

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

    ok_before, failed_before = _polls("ok"), _polls("failed")
    first = runtime.runner.run("network.snmp", {"devices": ids})
    assert first.status == "ok", first
    assert "2 answered, 1 did not" in (first.message or "")
    assert (_polls("ok") - ok_before, _polls("failed") - failed_before) == (2, 1)
    ratio = REGISTRY.get_sample_value("vigil_network_poll_success_ratio", {"collector": "snmp"})
    assert ratio == pytest.approx(2 / 3)
    time.sleep(3.5)  # snmpd refreshes its interface table every ~3 s
    second = runtime.runner.run("network.snmp", {"devices": ids})
    assert second.status == "ok", second
    # One engine for the process: both sweeps ran on it (and it is the runtime's).
    assert len(engines_used) == 2
    assert engines_used[0] is engines_used[1] is snmp_engine.runtime().engine

    for device_id in (v2c, v3):
        assert [v for _, v in _series(client, device_id, "snmp.ok")] == [1.0, 1.0]
        (t1, up1), (t2, up2) = _series(client, device_id, "snmp.uptime_s")
        assert 0 < up2 - up1 < (t2 - t1).total_seconds() + 1
        memory = [v for _, v in _series(client, device_id, "snmp.mem_pct")]
        assert len(memory) == 2
        assert all(0 < v < 100 for v in memory)  # the RAM row of hrStorage, by one GET
        (_, oper), *_ = _series(client, device_id, "if.lo.oper")
        assert oper == 1.0  # up
        assert [v for _, v in _series(client, device_id, "if.lo.admin")] == [1.0, 1.0]
        assert _series(client, device_id, "if.lo.octets_bits") == []  # 64-bit counters
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


def _settings(**changes: Any) -> Settings:
    base = {"network_snmp_timeout_seconds": 0.5, "network_snmp_retries": 0}
    return Settings(**{**base, **changes})


def test_one_engine_serves_sweeps_from_any_thread(agent: Snmpd) -> None:
    """Jobs run on the scheduler's thread or a worker pool's threads, each synchronously:
    sweeps from several threads at once all run on the process's one engine (one UDP
    socket), v2c and v3 alike."""
    targets = [
        SnmpTarget(1, "127.0.0.1", agent.port, agent.v2c),
        SnmpTarget(2, "127.0.0.1", agent.port, agent.v3),
    ]
    settings = _settings()
    engine = snmp_engine.runtime().engine
    snmp_polling.poll(targets, settings)
    sockets = engine.sockets()
    with ThreadPoolExecutor(3) as pool:
        sweeps = list(pool.map(lambda _: snmp_polling.poll(targets, settings), range(6)))
    for results in sweeps:
        assert [r.error for r in results] == [None, None]
        assert [r.poll.uptime_s > 0 for r in results if r.poll] == [True, True]
    assert snmp_engine.runtime().engine is engine
    assert list(sockets) == [socket.AF_INET]
    assert engine.sockets() == sockets  # one socket, kept


def _snmpbulkwalk(port: int, column: str) -> dict[str, str]:
    done = subprocess.run(
        # numeric names and enums, "name value" lines
        ["snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-On", "-Oq", "-Oe", f"127.0.0.1:{port}", column],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    out = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" ")
        out[name.lstrip(".")[len(column) + 1 :]] = value.strip().strip('"')
    return out


def test_the_side_by_side_walk_reads_what_snmpbulkwalk_reads(agent: Snmpd) -> None:
    columns = {
        "ifName": "1.3.6.1.2.1.31.1.1.1.1",
        "ifOperStatus": "1.3.6.1.2.1.2.2.1.8",
        "hrStorageType": "1.3.6.1.2.1.25.2.3.1.2",
        "hrStorageDescr": "1.3.6.1.2.1.25.2.3.1.3",
    }

    async def walk(max_varbinds: int) -> tuple[list[dict[str, Any]], int]:
        client = SnmpClient(snmp_engine.runtime().engine, timeout=1.0, retries=1)
        client.max_varbinds = max_varbinds
        target = await client.target("127.0.0.1", agent.port, agent.v2c)
        rows = await client.walk(target, [oid(c) for c in columns.values()])
        return rows, client.requests

    expected = [_snmpbulkwalk(agent.port, c) for c in columns.values()]
    assert len(expected[2]) > len(expected[0]) > 0  # tables of different lengths

    def check(got: list[dict[str, Any]]) -> None:
        names, opers, types, descrs = got
        assert {i: snmp.text(v) for i, v in names.items()} == expected[0]
        assert {i: str(v) for i, v in opers.items()} == expected[1]
        assert {i: "." + ".".join(map(str, v)) for i, v in types.items()} == expected[2]
        assert {i: snmp.text(v) for i, v in descrs.items()} == expected[3]

    # First walks (no rows known): one row per request, a few, the collector's default.
    for max_varbinds, fewest_requests in ((1, len(expected[2]) + 1), (5, 4), (60, 1)):
        snmp._rows_seen.clear()
        got, requests = snmp_engine.runtime().run(walk(max_varbinds))
        check(got)
        assert requests >= fewest_requests
    # Again, with the rows of the last walk known: one request reads it all.
    got, requests = snmp_engine.runtime().run(walk(1))
    check(got)
    assert requests == 1


@pytest.fixture
def silent_agent() -> Iterator[int]:
    """A UDP port on loopback that takes requests and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_poll_is_cut_off_at_its_deadline(agent: Snmpd, silent_agent: int) -> None:
    """Each request would wait 30 s; the poll's deadline (0.5 s) ends it, alone: the
    answering agent of the same sweep is polled as usual."""
    settings = _settings(network_snmp_timeout_seconds=30, network_snmp_deadline_seconds=0.5)
    targets = [
        SnmpTarget(1, "127.0.0.1", silent_agent, agent.v2c),
        SnmpTarget(2, "127.0.0.1", agent.port, agent.v2c),
    ]
    silent, answering = snmp_polling.poll(targets, settings)
    assert (silent.poll, silent.error) == (None, "no complete answer within 0.5 s")
    assert answering.error is None
    assert answering.poll is not None


def test_at_most_the_configured_number_of_devices_are_polled_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_flight = most = 0

    async def slow_poll(self: SnmpClient, address: str, port: int, secret: Any) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        raise RuntimeError("not a real agent")

    monkeypatch.setattr(SnmpClient, "poll", slow_poll)
    targets = [
        SnmpTarget(i, "127.0.0.1", 9, {"version": "2c", "community": "x"}) for i in range(20)
    ]
    results = snmp_polling.poll(targets, _settings(network_snmp_concurrency=3))
    assert most == 3
    assert [r.error for r in results] == ["RuntimeError: not a real agent"] * 20


def test_a_sweep_is_not_started_while_another_one_runs(
    db: TransactionalDatabase, agent: Snmpd
) -> None:
    client, runtime = api(db, as_role="operator", cache_ttl=0, rate_limit="")
    added = client.post(
        "/api/v1/devices",
        json={
            "name": "agent",
            "address": "127.0.0.1",
            "snmp_port": agent.port,
            "snmp_interval_seconds": 60,
            "credentials": agent.v2c,
        },
    )
    device_id = added.json()["id"]
    with job_lock(db.engine, "job:network.snmp") as held:  # as if another worker's sweep ran
        assert held
        run = runtime.runner.run("network.snmp", {"devices": [device_id]})
    assert (run.status, run.message) == ("skipped", "already running elsewhere; not started")
    assert _series(client, device_id, "snmp.ok") == []  # the device was not polled twice
    again = runtime.runner.run("network.snmp", {"devices": [device_id]})
    assert again.status == "ok", again
    assert [v for _, v in _series(client, device_id, "snmp.ok")] == [1.0]


def test_a_poll_takes_three_requests_once_the_ram_row_is_known(agent: Snmpd) -> None:
    """The RAM row's size and use ride in the system GET when the row is known from the
    last poll; a row that moved (here: a wrong one planted) costs one GET more and still
    gives the right figure."""

    async def poll() -> tuple[float | None, int]:
        client = SnmpClient(snmp_engine.runtime().engine, timeout=1.0, retries=1)
        result = await client.poll("127.0.0.1", agent.port, agent.v3)
        return result.mem_pct, client.requests

    target = snmp_engine.runtime().run(
        SnmpClient(snmp_engine.runtime().engine).target("127.0.0.1", agent.port, agent.v3)
    )
    snmp._ram_rows[target.key] = (999,)  # not a row of this agent
    moved_memory, moved_requests = snmp_engine.runtime().run(poll())
    known_memory, known_requests = snmp_engine.runtime().run(poll())
    assert (moved_requests, known_requests) == (4, 3)
    for memory in (moved_memory, known_memory):
        assert memory is not None
        assert 0 < memory < 100


def test_snmp_polls_are_spread_over_the_interval(db: TransactionalDatabase) -> None:
    """200 devices added at once, SNMP every 60 s: each is first due at its own phase, so a
    quarter of a minute later about a quarter of them are due, half a minute later about
    half, and all of them after a minute."""
    _client, runtime = api(db, network_secret_key="k")
    vault = Vault.from_settings(runtime.settings)
    added = datetime(2026, 1, 5, 12, 0, 0, 123000, tzinfo=UTC)
    with runtime.db.session(write=True) as session:
        session.add_all(
            Device(
                name=f"spread-{i}",
                address="127.0.0.1",
                type="server",
                tags="",
                enabled=True,
                icmp_interval_seconds=60,
                snmp_interval_seconds=60,
                snmp_port=161,
                credentials=vault.seal({"version": "2c", "community": "x"}),
                maintenance=[],
                created_at=added,
                updated_at=added,
            )
            for i in range(200)
        )
    with runtime.db.session() as session:

        def due(seconds: float) -> int:
            now = added + timedelta(seconds=seconds)
            return len(snmp_polling.due_targets(session, now, vault))

        counts = [due(s) for s in (0, 15, 30, 45, 60)]
    assert counts[0] == 0
    for share, count in zip((0.25, 0.5, 0.75), counts[1:4], strict=True):
        assert abs(count - 200 * share) <= 20, counts  # no thundering herd
    assert counts == sorted(counts)
    assert counts[4] == 200


IF_X_TABLE = "1.3.6.1.2.1.31.1.1"  # ifName, ifHCInOctets, …: what an old agent lacks


def test_an_agent_without_ifxtable_is_read_with_ifdescr_and_32_bit_counters(
    db: TransactionalDatabase,
) -> None:
    """snmpd with a view that leaves out ifXTable (no ifName, no ifHCInOctets): the
    interfaces are named by ifDescr, their octets are the 32-bit ifInOctets/ifOutOctets
    (``octets_bits`` 32) and the rates come from them; v2c and v3 alike. It costs one walk
    more a poll; an agent with ifXTable none (the three-request test above)."""
    with snmpd(exclude=(IF_X_TABLE,)) as old:
        assert snmpget(old.port, f"{IF_X_TABLE}.1.1.1").startswith("No Such Object")
        client, runtime = api(
            db, as_role="operator", cache_ttl=0, rate_limit="", network_secret_key="k"
        )
        ids = []
        for name, credentials in (("old-v2c", old.v2c), ("old-v3", old.v3)):
            body = {
                "name": name,
                "address": "127.0.0.1",
                "snmp_port": old.port,
                "snmp_interval_seconds": 60,
                "credentials": credentials,
            }
            response = client.post("/api/v1/devices", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        first = runtime.runner.run("network.snmp", {"devices": ids})
        assert first.status == "ok", first
        assert "2 answered, 0 did not" in (first.message or "")
        time.sleep(3.5)  # snmpd refreshes its interface table every ~3 s
        assert runtime.runner.run("network.snmp", {"devices": ids}).status == "ok"
        lo_32 = int(snmpget(old.port, "1.3.6.1.2.1.2.2.1.10.1"))  # ifInOctets of lo

        async def poll() -> tuple[snmp.SnmpPoll, int]:
            snmp_client = SnmpClient(snmp_engine.runtime().engine, timeout=1.0, retries=1)
            result = await snmp_client.poll("127.0.0.1", old.port, old.v2c)
            return result, snmp_client.requests

        direct, requests = snmp_engine.runtime().run(poll())
    assert requests == 4  # system GET, host walk, IF-MIB walk, ifTable fallback walk
    assert direct.interfaces["lo"]["octets_bits"] == 32.0
    assert direct.interfaces["lo"]["in_octets"] >= lo_32  # what snmpget reads, a bit later
    assert direct.interfaces["lo"]["in_octets"] < 2**32
    for device_id in ids:
        assert [v for _, v in _series(client, device_id, "if.lo.octets_bits")] == [32.0, 32.0]
        assert [v for _, v in _series(client, device_id, "if.lo.admin")] == [1.0, 1.0]
        (a_ts, a), (b_ts, b) = _series(client, device_id, "if.lo.in_octets")
        assert 0 < a < b < 2**32  # the requests themselves went through lo
        [(_, rate)] = _series(client, device_id, "if.lo.in_bps")
        assert rate == pytest.approx((b - a) * 8 / (b_ts - a_ts).total_seconds(), abs=0.001)


def _in_namespace(namespace: str, *args: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", namespace, "ip", *args], check=True, capture_output=True, timeout=10
    )


def test_interface_down_fires_for_admin_up_interfaces_only_and_keeps_its_state_without_snmp(
    db: TransactionalDatabase,
) -> None:
    """snmpd in a network namespace with a veth pair of its own: ``vlink`` is up but its
    peer ``vpeer`` was shut down (admin up, oper down: an alarm), ``vpeer`` is admin down (an
    operator's doing: no alarm). Then the agent stops while the host still answers pings:
    the SNMP polls fail (``snmp.ok`` 0, the sweep's message says why) and the open
    interface alert stays firing (no data is not a recovery); back, with vpeer up, it
    resolves."""
    with ns_hosts(1) as [host]:
        ns = host.namespace
        _in_namespace(ns, "link", "add", "vlink", "type", "veth", "peer", "name", "vpeer")
        _in_namespace(ns, "link", "set", "vlink", "up")  # vpeer stays down
        client, runtime = network_api(db)
        with snmpd((host.address,), namespace=ns) as agent:
            body = {
                "name": "ns-switch",
                "address": host.address,
                "snmp_port": agent.port,
                "snmp_interval_seconds": 60,
                "icmp_interval_seconds": 60,
                # v2c: the restarted agent below has a new v3 engine id, and the process's
                # engine does not discover it again (see the report in docs/network.md)
                "credentials": agent.v2c,
            }
            response = client.post("/api/v1/devices", json=body)
            assert response.status_code == 201, response.text
            device = response.json()["id"]
            rule = {"name": "links", "kind": "interface_down", "device_id": device}
            response = client.post("/api/v1/network/rules", json={**rule, "recover_after": 1})
            assert response.status_code == 201, response.text
            run = runtime.runner.run("network.snmp", {"devices": [device]})
            assert run.status == "ok", run
            assert "1 answered" in (run.message or "")

        def latest(metric: str) -> float:
            return _series(client, device, metric)[-1][1]

        def open_alerts() -> list[tuple[str, str, str]]:
            response = client.get("/api/v1/network/alerts", params={"state": "open"})
            assert response.status_code == 200, response.text
            return [(a["rule"], a["subject"], a["state"]) for a in response.json()["items"]]

        assert (latest("if.vlink.admin"), latest("if.vlink.oper")) == (1.0, 2.0)
        assert (latest("if.vpeer.admin"), latest("if.vpeer.oper")) == (2.0, 2.0)
        assert latest(f"if.{host.inside}.oper") == 1.0
        assert open_alerts() == [("interface_down", "vlink", "firing")]

        # The agent is gone, the host is not: ICMP up, SNMP failing, the alert kept.
        assert runtime.runner.run("network.icmp", {"devices": [device]}).status == "ok"
        assert client.get(f"/api/v1/devices/{device}").json()["status"] == "up"
        failed = runtime.runner.run("network.snmp", {"devices": [device]})
        assert failed.status == "ok", failed
        assert f"1 did not ({host.address}: " in (failed.message or "")
        assert [v for _, v in _series(client, device, "snmp.ok")] == [1.0, 0.0]
        assert runtime.runner.run("network.alerts.evaluate").status == "ok"
        assert open_alerts() == [("interface_down", "vlink", "firing")]

        _in_namespace(ns, "link", "set", "vpeer", "up")
        with snmpd((host.address,), port=agent.port, namespace=ns):
            back = runtime.runner.run("network.snmp", {"devices": [device]})
            assert "1 answered" in (back.message or ""), back
        assert latest("if.vlink.oper") == 1.0
        assert open_alerts() == []
        [resolved] = client.get("/api/v1/network/alerts", params={"state": "resolved"}).json()[
            "items"
        ]
        assert resolved["subject"] == "vlink"
