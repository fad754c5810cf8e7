"""The collector's SNMP engine (vigil.network.snmp_transport) against Debian's snmpd: every
security level and protocol pair, refusals that say why, the v3 clock resynchronised,
retries counted on the wire, forged answers dropped, one discovery per agent."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.snmpd import AUTH_KEY, PRIV_KEY, V3_USERS, Snmpd, snmpd, snmpget
from vigil.network import snmp_ber as ber
from vigil.network import snmp_transport
from vigil.network.snmp_transport import SnmpError, SnmpTransport, Target, _Pending

SYS_UPTIME, SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 3, 0), (1, 3, 6, 1, 2, 1, 1, 5, 0)


@pytest.fixture(scope="module")
def agent() -> Iterator[Snmpd]:
    with snmpd() as running:
        yield running


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _spy(owner: Any, method: str) -> list[tuple[Any, ...]]:
    """Replaces the coroutine method ``owner.<method>`` by one that records each call's
    positional arguments, then runs the real one; returns the record."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(owner, method)

    async def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await real(*args, **kwargs)

    setattr(owner, method, recorded)
    return calls


async def _get(secret: dict[str, Any], port: int, **options: Any) -> tuple[Target, ber.Pdu]:
    transport = SnmpTransport()
    try:
        target = await transport.target("127.0.0.1", port, secret)
        return target, await transport.request(target, ber.GET, [SYS_UPTIME, SYS_NAME], **options)
    finally:
        transport.close()


def _sys_name(port: int) -> bytes:
    return snmpget(port, ".1.3.6.1.2.1.1.5.0").strip('"').encode()


@pytest.mark.parametrize("user", ["v2c", "v3", *V3_USERS])
def test_every_security_level_and_protocol_pair_reads_what_snmpget_reads(
    agent: Snmpd, user: str
) -> None:
    secret = {"v2c": agent.v2c, "v3": agent.v3}.get(user) or agent.v3_user(user)
    target, answer = _run(_get(secret, agent.port))
    values = dict(answer.varbinds)
    assert values[SYS_NAME] == _sys_name(agent.port)
    assert isinstance(values[SYS_UPTIME], int)
    assert values[SYS_UPTIME] > 0
    if user != "v2c":
        assert target.engine_id.startswith(b"\x80")  # discovered (RFC 3411 format)
        assert target.boots >= 1


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"auth_key": "not-the-auth-key"}, "wrong digest"),
        ({"user": "nobody-here"}, "unknown user name"),
        ({"priv_protocol": None, "priv_key": None}, "authorizationError .* security level"),
    ],
)
def test_refusals_say_what_is_wrong(agent: Snmpd, change: dict[str, Any], says: str) -> None:
    with pytest.raises(SnmpError, match=says):
        _run(_get({**agent.v3, **change}, agent.port, timeout=0.5, retries=0))


def test_a_wrong_privacy_key_fails_without_a_value(agent: Snmpd) -> None:
    """The agent cannot decrypt the request: it reports a decryption error (or, some
    agents, says nothing); either way the request fails and says so, never with values."""
    with pytest.raises(SnmpError, match=r"decryption error|no answer"):
        _run(_get({**agent.v3, "priv_key": "not-the-priv-key"}, agent.port, timeout=0.5))


def test_a_wrong_community_times_out_after_every_try(agent: Snmpd) -> None:
    with pytest.raises(SnmpError, match=r"no answer .* within 0.3 s \(2 tries\)"):
        _run(_get({**agent.v2c, "community": "wrong"}, agent.port, timeout=0.3, retries=1))


@pytest.mark.parametrize("skew", ["our clock ahead", "agent rebooted"])
def test_a_clock_out_of_the_time_window_is_resynchronised_once(agent: Snmpd, skew: str) -> None:
    """RFC 3414 3.2.7: a request outside the agent's 150 s window gets a notInTimeWindow
    report carrying the agent's clock; the engine takes it and sends the request again."""

    async def scenario() -> tuple[int, tuple[int, int], ber.Pdu, tuple[int, int]]:
        transport = SnmpTransport()
        target = await transport.target("127.0.0.1", agent.port, agent.v3)
        await transport.request(target, ber.GET, [SYS_UPTIME])
        true_clock = (target.boots, target.engine_time)
        if skew == "our clock ahead":  # an agent that lost its boots count on a restart
            target.set_clock(target.boots, target.engine_time + 10_000)
        else:  # what we knew is from before the agent's last restart
            target.set_clock(target.boots - 1, target.engine_time + 10_000)
        sent = _spy(transport, "_exchange")
        answer = await transport.request(target, ber.GET, [SYS_UPTIME])
        transport.close()
        return len(sent), (target.boots, target.engine_time), answer, true_clock

    sent, (boots, engine_time), answer, (true_boots, true_time) = _run(scenario())
    assert sent == 2
    assert boots == true_boots
    assert true_time <= engine_time < true_time + 60  # the agent's clock, not ours
    assert answer.tag == ber.RESPONSE
    assert answer.varbinds[0][0] == SYS_UPTIME


@pytest.fixture
def silent_port() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        yield sock


def test_retries_are_sent_on_the_wire_then_the_request_fails(silent_port: socket.socket) -> None:
    port = silent_port.getsockname()[1]
    with pytest.raises(SnmpError, match=r"no answer from 127.0.0.1:\d+/v2c within 0.1 s \(3"):
        _run(_get({"version": "2c", "community": "c"}, port, timeout=0.1, retries=2))
    datagrams = []
    while True:
        try:
            datagrams.append(silent_port.recv(65535))
        except BlockingIOError:
            break
    assert len(datagrams) == 3
    assert len(set(datagrams)) == 1  # the same request, sent again


def test_a_forged_answer_is_refused(agent: Snmpd) -> None:
    """One octet of the agent's authenticated answer changed on the way: the digest does
    not match, the request fails rather than hand over what the answer says."""

    async def scenario() -> None:
        transport = SnmpTransport()
        target = await transport.target("127.0.0.1", agent.port, agent.v3)
        await transport.request(target, ber.GET, [SYS_UPTIME])  # discovery done
        received = transport.received

        def tamper(data: bytes, addr: tuple[Any, ...]) -> None:
            received(data[:-3] + bytes((data[-3] ^ 0x01,)) + data[-2:], addr)

        transport.received = tamper  # type: ignore[method-assign]
        try:
            await transport.request(target, ber.GET, [SYS_UPTIME], timeout=0.5, retries=0)
        finally:
            transport.close()

    with pytest.raises(SnmpError, match="wrong digest"):
        _run(scenario())


def test_requests_of_a_new_agent_share_one_discovery(agent: Snmpd) -> None:
    async def scenario() -> tuple[int, list[ber.Pdu]]:
        transport = SnmpTransport()
        target = await transport.target("127.0.0.1", agent.port, agent.v3_user("shaaes"))
        discoveries = _spy(transport, "_discovery")
        answers = await asyncio.gather(
            *(transport.request(target, ber.GET, [SYS_UPTIME]) for _ in range(20))
        )
        transport.close()
        return len(discoveries), list(answers)

    discoveries, answers = _run(scenario())
    assert discoveries == 1
    assert all(a.tag == ber.RESPONSE for a in answers)


def test_a_poll_cut_off_during_discovery_leaves_it_to_the_next(agent: Snmpd) -> None:
    """The first request's deadline cancels it while the discovery is in flight; the
    discovery finishes anyway and the next request uses it."""

    async def scenario() -> ber.Pdu:
        transport = SnmpTransport()
        target = await transport.target("127.0.0.1", agent.port, agent.v3_user("md5des"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(transport.request(target, ber.GET, [SYS_UPTIME]), 0.0001)
        answer = await transport.request(target, ber.GET, [SYS_UPTIME])
        transport.close()
        return answer

    assert _run(scenario()).tag == ber.RESPONSE


def test_passphrases_never_appear_on_the_wire(agent: Snmpd) -> None:
    async def scenario() -> list[bytes]:
        transport = SnmpTransport()
        target = await transport.target("127.0.0.1", agent.port, agent.v3)
        exchanges = _spy(transport, "_exchange")  # (target, request id, message, …)
        await transport.request(target, ber.GET, [SYS_NAME])
        transport.close()
        return [message for _target, _id, message, *_rest in exchanges]

    messages = _run(scenario())
    assert len(messages) == 2  # the discovery and the request
    for message in messages:
        assert AUTH_KEY.encode() not in message
        assert PRIV_KEY.encode() not in message
    assert b"vigilv3" in messages[1]  # the user name is not secret; the PDU is encrypted
    assert bytes(SYS_NAME[:4]) not in messages[1][-40:]


def test_an_agent_restarted_with_a_new_engine_id_is_discovered_again() -> None:
    """net-snmp without its saved state (or a replacement device at the same address) has
    a new engine id: the old one gets an unknownEngineID report, the engine discovers the
    agent again and the poll goes on, without a restart of ours."""

    async def get(transport: SnmpTransport, port: int, secret: dict[str, Any]) -> bytes:
        target = await transport.target("127.0.0.1", port, secret)
        answer = await transport.request(target, ber.GET, [SYS_UPTIME], timeout=1.0)
        assert answer.tag == ber.RESPONSE
        return target.engine_id

    loop = asyncio.new_event_loop()
    transport = SnmpTransport()
    try:
        with snmpd() as first:
            port, secret = first.port, first.v3
            before = loop.run_until_complete(get(transport, port, secret))
        with snmpd(port=port) as second:
            assert second.port == port
            after = loop.run_until_complete(get(transport, port, secret))
    finally:
        transport.close()
        loop.close()
    assert before != after


def _burst_responder(sock: socket.socket, count: int, size: int) -> None:
    """A v2c peer that takes ``count`` GETs, then answers them all at once, each with an
    OCTET STRING of ``size`` octets (a big walk's answer)."""
    requests = []
    while len(requests) < count:
        data, addr = sock.recvfrom(65535)
        _tag, i, _end = ber.header(data, 0)
        _version, i = ber.read_int(data, i)
        community, i = ber.read_octets(data, i)
        request = ber.read_pdu(data, i)
        requests.append((addr, community, request.request_id))
    for addr, community, request_id in requests:
        body = (
            ber.integer(request_id)
            + ber.integer(0)
            + ber.integer(0)
            + ber.tlv(
                ber.SEQUENCE,
                ber.tlv(ber.SEQUENCE, ber.object_id(SYS_NAME) + ber.octets(b"x" * size)),
            )
        )
        answer = ber.tlv(
            ber.SEQUENCE, ber.integer(1) + ber.octets(community) + ber.tlv(ber.RESPONSE, body)
        )
        sock.sendto(answer, addr)


def test_a_burst_of_big_answers_is_not_lost_while_the_loop_is_busy() -> None:
    """300 answers of 4 kB (1.2 MB) arrive while the event loop is blocked: the socket's
    receive buffer holds them all (the kernel's default of ~208 KiB lost most: timeouts)."""
    count, size = 300, 4000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        port = peer.getsockname()[1]
        responder = threading.Thread(target=_burst_responder, args=(peer, count, size))
        responder.start()

        async def scenario() -> tuple[list[ber.Pdu], int]:
            transport = SnmpTransport()
            target = await transport.target("127.0.0.1", port, {"version": "2c", "community": "c"})
            requests = [
                asyncio.ensure_future(
                    transport.request(target, ber.GET, [SYS_NAME], timeout=5, retries=0)
                )
                for _ in range(count)
            ]
            while len(transport._pending) < count:  # every request sent
                await asyncio.sleep(0.001)
            responder.join(10)  # the loop is blocked until all answers were sent
            buffer = (
                transport.sockets()[socket.AF_INET]
                .get_extra_info("socket")
                .getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            )
            answers = await asyncio.gather(*requests)
            transport.close()
            return list(answers), buffer

        answers, buffer = _run(scenario())
    assert buffer >= 2 * 1024 * 1024, "raise net.core.rmem_max (docs/network.md)"
    assert len(answers) == count
    assert {len(a.varbinds[0][1]) for a in answers} == {size}


@pytest.mark.parametrize("version", ["v2c", "v3"])
def test_mangled_answers_never_raise_and_never_pass_for_v3_answers(
    agent: Snmpd, version: str
) -> None:
    """A real answer, mangled 3,000 ways (octets flipped, cut, doubled): the engine never
    raises out of its datagram handler; a v3 authPriv answer that was changed never
    resolves a request with values (the digest covers every octet)."""
    rng = random.Random(9)

    async def scenario() -> list[str]:
        transport = SnmpTransport()
        secret = agent.v2c if version == "v2c" else agent.v3
        target = await transport.target("127.0.0.1", agent.port, secret)
        seen: list[tuple[bytes, tuple[Any, ...]]] = []
        received = transport.received

        def record(data: bytes, addr: tuple[Any, ...]) -> None:
            seen.append((data, addr))
            received(data, addr)

        transport.received = record  # type: ignore[method-assign]
        answer = await transport.request(target, ber.GET, [SYS_UPTIME, SYS_NAME])
        original, addr = seen[-1]
        outcomes = []
        loop = asyncio.get_running_loop()
        for n in range(3000):
            data = bytearray(original)
            if n % 3 == 0:
                for _ in range(rng.randint(1, 3)):
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif n % 3 == 1:
                del data[rng.randrange(1, len(data)) :]
            else:
                at = rng.randrange(len(data))
                data[at:at] = data[at : at + rng.randint(1, 8)]
            mangled = bytes(data)
            future: asyncio.Future[ber.Pdu] = loop.create_future()
            transport._pending[answer.request_id] = _Pending(target, future, 0)
            received(mangled, addr)  # raises nothing, whatever the octets
            del transport._pending[answer.request_id]  # not left for close() to fail
            if not future.done():
                outcomes.append("dropped")
            elif future.exception() is not None:
                outcomes.append("refused")
            else:
                outcomes.append("same" if mangled == original else "changed")
        transport.close()
        return outcomes

    outcomes = _run(scenario())
    assert len(outcomes) == 3000
    if version == "v3":
        assert "changed" not in outcomes
        assert outcomes.count("refused") > 1000  # most reach the digest check
    else:
        assert outcomes.count("changed") > 0  # v2c has no integrity: a flipped value passes


@pytest.mark.parametrize("version", ["v2c", "v3"])
def test_ipv6_and_dns_names_reach_the_agent(version: str) -> None:
    """An agent on ::1 by its address and by a name that resolves to it ("localhost" does,
    to ::1 or 127.0.0.1: the agent listens on both): the engine opens an IPv6 socket when
    the address is one."""
    with snmpd(("127.0.0.1", "::1")) as both:
        secret = both.v2c if version == "v2c" else both.v3

        async def scenario() -> tuple[list[Any], list[socket.AddressFamily]]:
            transport = SnmpTransport()
            got = []
            for address in ("::1", "localhost"):
                target = await transport.target(address, both.port, secret)
                answer = await transport.request(target, ber.GET, [SYS_NAME])
                got.append(answer.varbinds[0][1])
            families = list(transport.sockets())
            transport.close()
            return got, families

        names, families = _run(scenario())
        assert names == [_sys_name(both.port)] * 2
        assert socket.AF_INET6 in families


def test_a_dns_name_is_looked_up_again_after_its_time_and_a_move_rediscovers() -> None:
    """A name's address is kept for RESOLVE_SECONDS, then looked up again; when it now
    points elsewhere (here: it was 127.0.0.2 before), requests go to the new address and a
    v3 agent is discovered anew. The agent listens where "localhost" resolves."""
    with snmpd(("127.0.0.1", "::1")) as both:

        async def scenario() -> tuple[int, str, int]:
            lookups = _spy(asyncio.get_running_loop(), "getaddrinfo")  # the loop dies with it
            transport = SnmpTransport()
            discoveries = _spy(transport, "_discovery")
            target = await transport.target("localhost", both.port, both.v3)
            await transport.request(target, ber.GET, [SYS_UPTIME])
            assert await transport.target("localhost", both.port, both.v3) is target
            assert len(lookups) == 1  # within its time: not looked up again
            assert target.resolved_at is not None
            target.resolved_at -= snmp_transport.RESOLVE_SECONDS + 1
            target.sockaddr = ("127.0.0.2", both.port)  # where the name pointed before
            await transport.target("localhost", both.port, both.v3)
            moved_to = target.sockaddr[0]
            answer = await transport.request(target, ber.GET, [SYS_UPTIME])
            transport.close()
            assert answer.tag == ber.RESPONSE
            return len(lookups), moved_to, len(discoveries)

        lookups, moved_to, discoveries = _run(scenario())
    assert lookups == 2
    assert moved_to in ("127.0.0.1", "::1")
    assert discoveries == 2
