"""SNMP requests over UDP on an asyncio loop: v2c (community) and v3 (USM: engine
discovery, time synchronisation, authentication and privacy), retries and timeouts, answers
matched to requests by their id. One :class:`SnmpTransport` per process
(:mod:`vigil.network.snmp_engine`): one socket per address family, and per agent and
credentials a :class:`Target` that keeps what v3 learnt of the agent (engine id, boots and
time, the localised keys) across polls.

Messages are encoded and decoded by :mod:`vigil.network.snmp_ber`; see its docstring for
why this is not pysnmp (the tests check both against each other).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.network import snmp_ber as ber
from vigil.network.snmp_ber import Oid, Pdu
from vigil.network.snmp_usm import (
    NOT_IN_TIME_WINDOW,
    UNKNOWN_ENGINE_ID,
    USM_REPORTS,
    LocalKeys,
    User,
)

V2C, V3 = 1, 3  # msgVersion on the wire
MAX_MESSAGE = 65507  # the largest UDP payload: what v3 tells the agent it accepts
#: The socket's receive buffer asked for. Fifty polls in flight can have ~50 walks of a few
#: kB each answered at once, while the loop is busy with other answers: the kernel's
#: default (~208 KiB) overflowed at 64 in flight and the answers were lost (timeouts).
#: The kernel caps it at net.core.rmem_max (docs/network.md).
RECEIVE_BUFFER = 4 * 1024 * 1024
_SCOPED_CONTEXT = ber.octets(b"")  # the default context name
#: A DNS name's address is looked up again after this many seconds (an IP address never).
RESOLVE_SECONDS = 300.0


class SnmpError(Exception):
    """The agent did not answer, refused the credentials or answered with an error."""


@dataclass(eq=False)
class Target:
    """One agent with one set of credentials."""

    key: str  # "address:port/credentials" (no secrets), for per-target caches
    sockaddr: tuple[Any, ...]
    family: socket.AddressFamily
    version: int
    community: bytes = b""
    user: User | None = None
    # What v3 knows of the agent: its engine id and clock, and the keys localised to it.
    engine_id: bytes = b""
    boots: int = 0
    engine_time: int = 0
    clock_at: float = 0.0  # time.monotonic() when engine_time was read
    keys: LocalKeys | None = None
    discovery: asyncio.Task[None] | None = field(default=None, repr=False)
    resolved_at: float | None = None  # time.monotonic() of a DNS name's lookup; None: an IP

    def clock(self) -> tuple[int, int]:
        """(boots, time) of the agent's clock now, as far as we know it."""
        return self.boots, self.engine_time + int(time.monotonic() - self.clock_at)

    def set_clock(self, boots: int, engine_time: int) -> None:
        self.boots, self.engine_time, self.clock_at = boots, engine_time, time.monotonic()

    def forget(self) -> None:
        """Drops what v3 knew of the agent: the next request discovers it again."""
        self.engine_id, self.keys = b"", None
        self.set_clock(0, 0)


@dataclass(eq=False)
class _Pending:
    target: Target
    future: asyncio.Future[Pdu]
    tries_left: int
    timer: asyncio.TimerHandle | None = None


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, owner: SnmpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.owner.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable and the like: the request times out and says so


class SnmpTransport:
    """Requests of one process; used on its event loop only."""

    def __init__(self) -> None:
        self._endpoints: dict[socket.AddressFamily, asyncio.DatagramTransport] = {}
        self._pending: dict[int, _Pending] = {}
        self._targets: dict[tuple[Any, ...], Target] = {}
        self._users: dict[tuple[Any, ...], User] = {}
        self._ids = itertools.count(int.from_bytes(os.urandom(3), "big") + 1)

    # -- targets ------------------------------------------------------------------------

    async def target(self, address: str, port: int, secret: Mapping[str, Any]) -> Target:
        """The target of (address, port, credentials), made (and the name resolved) once."""
        v2c = secret.get("version") == "2c"
        creds: tuple[Any, ...] = (
            ("2c", secret["community"])
            if v2c
            else (
                "3",
                secret["user"],
                secret.get("auth_protocol"),
                secret.get("auth_key"),
                secret.get("priv_protocol"),
                secret.get("priv_key"),
            )
        )
        cache_key = (address, port, creds)
        found = self._targets.get(cache_key)
        if found is not None:
            if found.resolved_at is not None and time.monotonic() - found.resolved_at > (
                RESOLVE_SECONDS
            ):
                await self._resolve(found, address, port)
            return found
        family, sockaddr = await _lookup(address, port)
        user = None
        if not v2c:
            user = self._users.get(creds)
            if user is None:  # hashing each passphrase's megabyte: once per credentials
                try:
                    user = self._users[creds] = User.from_secret(secret)
                except (KeyError, ValueError) as exc:
                    raise SnmpError(f"bad SNMPv3 credentials: {exc}") from None
        label = f"{address}:{port}/" + ("v2c" if v2c else f"v3:{secret['user']}")
        target = Target(
            key=f"{label}#{len(self._targets)}",
            sockaddr=sockaddr,
            family=family,
            version=V2C if v2c else V3,
            community=str(secret.get("community", "")).encode(),
            user=user,
            resolved_at=None if _is_ip(address) else time.monotonic(),
        )
        self._targets[cache_key] = target
        return target

    async def _resolve(self, target: Target, address: str, port: int) -> None:
        """A DNS name looked up again; when it moved, a v3 agent is discovered again (the
        address may now be another device). A failed lookup keeps the last address."""
        try:
            family, sockaddr = await _lookup(address, port)
        except SnmpError:
            return
        finally:
            target.resolved_at = time.monotonic()
        if sockaddr[:2] != target.sockaddr[:2]:
            target.family, target.sockaddr = family, sockaddr
            target.forget()

    # -- requests -----------------------------------------------------------------------

    async def request(
        self,
        target: Target,
        tag: int,
        oids: Sequence[Oid],
        a: int = 0,
        b: int = 0,
        *,
        timeout: float = 1.0,
        retries: int = 1,
    ) -> Pdu:
        """One request PDU (``tag``: GET, GETNEXT or GETBULK) and its answer."""
        if target.version == V2C:
            request_id = self._next_id()
            message = ber.tlv(
                ber.SEQUENCE,
                ber.integer(V2C)
                + ber.octets(target.community)
                + ber.pdu(tag, request_id, oids, a, b),
            )
            return self._checked(
                await self._exchange(target, request_id, message, timeout, retries)
            )
        for _again in range(2):
            await self._discover(target, timeout, retries)
            request_id = self._next_id()
            message = self._v3_message(target, request_id, ber.pdu(tag, request_id, oids, a, b))
            answer = await self._exchange(target, request_id, message, timeout, retries)
            report = _report_oid(answer) if answer.tag == ber.REPORT else None
            if report == NOT_IN_TIME_WINDOW:
                continue  # the report carried the agent's clock (received() set it)
            if report == UNKNOWN_ENGINE_ID:  # restarted without its state, or replaced
                target.forget()
                continue
            return self._checked(answer)
        raise SnmpError(
            f"{target.key}: the agent keeps refusing our view of it: "
            + USM_REPORTS.get(report or (), "a report")
        )

    def _checked(self, answer: Pdu) -> Pdu:
        if answer.tag == ber.REPORT:
            oid = _report_oid(answer)
            meaning = USM_REPORTS.get(oid, ".".join(map(str, oid)))
            raise SnmpError(f"the agent refused the request: {meaning}")
        if answer.tag != ber.RESPONSE:
            raise SnmpError(f"unexpected PDU type {answer.tag:#04x} in the answer")
        if answer.error_status:
            raise SnmpError(
                f"{_ERROR_STATUS.get(answer.error_status, answer.error_status)} "
                f"at varbind {answer.error_index}"
            )
        return answer

    def _next_id(self) -> int:
        request_id = next(self._ids)
        if request_id >= 0x7FFF_FFFF:  # INTEGER (0..2147483647) for msgID and request-id
            self._ids = itertools.count(1)
            request_id = next(self._ids)
        return request_id

    async def _exchange(
        self, target: Target, request_id: int, message: bytes, timeout: float, retries: int
    ) -> Pdu:
        loop = asyncio.get_running_loop()
        endpoint = self._endpoints.get(target.family) or await self._open(target.family)
        pending = _Pending(target, loop.create_future(), retries)
        self._pending[request_id] = pending

        def expire() -> None:
            if pending.future.done():
                return
            if pending.tries_left > 0:
                pending.tries_left -= 1
                endpoint.sendto(message, target.sockaddr)
                pending.timer = loop.call_later(timeout, expire)
            else:
                pending.future.set_exception(
                    SnmpError(
                        f"no answer from {target.key.split('#')[0]} within {timeout:g} s "
                        f"({retries + 1} tries)"
                    )
                )

        try:
            endpoint.sendto(message, target.sockaddr)
            pending.timer = loop.call_later(timeout, expire)
            return await pending.future
        finally:
            if pending.timer is not None:
                pending.timer.cancel()
            self._pending.pop(request_id, None)

    async def _open(self, family: socket.AddressFamily) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        local = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self), local_addr=local, family=family
        )
        transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER
        )
        if family in self._endpoints:  # another coroutine opened one meanwhile
            transport.close()
        else:
            self._endpoints[family] = transport
        return self._endpoints[family]

    def sockets(self) -> dict[socket.AddressFamily, asyncio.DatagramTransport]:
        """The open socket of each address family (opened by the first request)."""
        return dict(self._endpoints)

    def close(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(SnmpError("the SNMP transport was closed"))

    # -- v3 -----------------------------------------------------------------------------

    async def _discover(self, target: Target, timeout: float, retries: int) -> None:
        """The agent's engine id and clock, once per target: the requests that need them
        meanwhile wait for the one discovery, which a waiter's cancellation (a poll's
        deadline) does not cancel; a failed one is tried again by the next request."""
        if target.keys is not None:
            return
        if target.discovery is None:
            task = asyncio.ensure_future(self._discovery(target, timeout, retries))

            def done(finished: asyncio.Task[None]) -> None:
                target.discovery = None
                if not finished.cancelled():
                    finished.exception()  # retrieved here too: no waiter may be left

            task.add_done_callback(done)
            target.discovery = task
        await asyncio.shield(target.discovery)

    async def _discovery(self, target: Target, timeout: float, retries: int) -> None:
        """RFC 3414 4: a GET without user or varbinds, answered by a report carrying the
        agent's engine id and clock; then the user's keys are localised to that id."""
        request_id = self._next_id()
        message = self._v3_message(
            target, request_id, ber.pdu(ber.GET, request_id, ()), discovery=True
        )
        answer = await self._exchange(target, request_id, message, timeout, retries)
        if not target.engine_id:
            raise SnmpError(f"{target.key}: no engine id in the discovery answer")
        if answer.tag == ber.REPORT and _report_oid(answer) != UNKNOWN_ENGINE_ID:
            self._checked(answer)
        assert target.user is not None
        target.keys = LocalKeys(target.user, target.engine_id)

    def _v3_message(
        self, target: Target, msg_id: int, pdu: bytes, *, discovery: bool = False
    ) -> bytes:
        user = target.user
        assert user is not None
        keys = None if discovery else target.keys
        scoped = ber.tlv(
            ber.SEQUENCE, ber.octets(target.engine_id if keys else b"") + _SCOPED_CONTEXT + pdu
        )
        boots, engine_time = target.clock() if keys else (0, 0)
        flags = 0x04 | (user.flags if keys else 0)  # reportable
        salt = b""
        data = scoped
        if keys is not None and user.priv:
            encrypted, salt = keys.encrypt(scoped, boots, engine_time)
            data = ber.octets(encrypted)
        auth_len = keys.auth_len if keys is not None else 0
        before_auth = (
            ber.octets(target.engine_id if keys else b"")
            + ber.integer(boots)
            + ber.integer(engine_time)
            + ber.octets(user.name if keys else b"")
        )
        auth_tlv = ber.octets(bytes(auth_len))
        fields = before_auth + auth_tlv + ber.octets(salt)
        security = ber.tlv(ber.SEQUENCE, fields)
        head = ber.integer(V3) + ber.tlv(
            ber.SEQUENCE,
            ber.integer(msg_id)
            + ber.integer(MAX_MESSAGE)
            + ber.octets(bytes((flags,)))
            + ber.integer(3),  # msgSecurityModel: USM
        )
        wrapped_security = ber.octets(security)
        body = head + wrapped_security + data
        message = ber.tlv(ber.SEQUENCE, body)
        if not auth_len:
            return message
        assert keys is not None
        # Where the zeroed authentication parameter sits: after the outer header, the
        # version and header data, the security parameters' two headers and the fields
        # before it, and its own tag and length.
        at = (
            (len(message) - len(body))
            + len(head)
            + (len(wrapped_security) - len(security))
            + (len(security) - len(fields))
            + len(before_auth)
            + (len(auth_tlv) - auth_len)
        )
        return message[:at] + keys.digest(message) + message[at + auth_len :]

    # -- answers ------------------------------------------------------------------------

    def received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            _tag, i, _end = ber.header(data, 0)
            version, i = ber.read_int(data, i)
            if version == V2C:
                self._received_v2c(data, i, addr)
            elif version == V3:
                self._received_v3(data, i, addr)
        except (ber.BerError, ValueError, IndexError):
            return  # not a message of ours: dropped, as agents drop garbage

    def _received_v2c(self, data: bytes, i: int, addr: tuple[Any, ...]) -> None:
        community, i = ber.read_octets(data, i)
        answer = ber.read_pdu(data, i)
        pending = self._pending.get(answer.request_id)
        if pending is None or pending.target.version != V2C:
            return
        if community != pending.target.community or addr[:2] != pending.target.sockaddr[:2]:
            return
        if not pending.future.done():
            pending.future.set_result(answer)

    def _received_v3(self, data: bytes, i: int, addr: tuple[Any, ...]) -> None:
        i, _ = ber.expect(data, i, ber.SEQUENCE)  # msgGlobalData
        msg_id, i = ber.read_int(data, i)
        _max_size, i = ber.read_int(data, i)
        flags_octets, i = ber.read_octets(data, i)
        _model, i = ber.read_int(data, i)
        pending = self._pending.get(msg_id)
        if pending is None or pending.future.done() or pending.target.version != V3:
            return
        target = pending.target
        if addr[:2] != target.sockaddr[:2]:
            return
        try:
            pending.future.set_result(self._open_v3(target, data, i, flags_octets[0]))
        except (ber.BerError, ValueError, IndexError) as exc:
            pending.future.set_exception(SnmpError(f"{target.key}: a bad answer: {exc}"))

    def _open_v3(self, target: Target, data: bytes, i: int, flags: int) -> Pdu:
        start, i = ber.expect(data, i, ber.OCTET_STRING)  # the security parameters
        j, _ = ber.expect(data, start, ber.SEQUENCE)
        engine_id, j = ber.read_octets(data, j)
        boots, j = ber.read_int(data, j)
        engine_time, j = ber.read_int(data, j)
        _user, j = ber.read_octets(data, j)
        auth_at, auth_end = ber.expect(data, j, ber.OCTET_STRING)
        salt, j = ber.read_octets(data, auth_end)
        keys = target.keys
        if flags & 0x01:  # authenticated: checked before anything in it is believed
            if keys is None or auth_end - auth_at != keys.auth_len:
                raise ValueError("an authenticated answer before the keys are known")
            zeroed = data[:auth_at] + bytes(keys.auth_len) + data[auth_end:]
            if keys.digest(zeroed) != data[auth_at:auth_end]:
                raise ValueError("wrong digest (a forged or corrupted answer)")
        elif keys is None:  # the discovery's report: the agent's engine id and clock
            target.engine_id = engine_id
            target.set_clock(boots, engine_time)
        if flags & 0x02:
            if keys is None:
                raise ValueError("an encrypted answer before the keys are known")
            encrypted, _ = ber.read_octets(data, i)
            scoped = keys.decrypt(encrypted, salt, boots, engine_time)
            i = 0
        else:
            scoped = data
        i, _ = ber.expect(scoped, i, ber.SEQUENCE)
        _context_engine, i = ber.read_octets(scoped, i)
        _context_name, i = ber.read_octets(scoped, i)
        answer = ber.read_pdu(scoped, i)
        if flags & 0x01:
            # RFC 3414 3.2.7: a later clock is taken. So is any clock of an authenticated
            # notInTimeWindow report: an agent that lost its boots count on a restart
            # (some do) would otherwise be out of the window for good.
            later = (boots, engine_time) > (target.boots, target.engine_time)
            if later or (answer.tag == ber.REPORT and _report_oid(answer) == NOT_IN_TIME_WINDOW):
                target.set_clock(boots, engine_time)
        elif answer.tag != ber.REPORT and target.user and target.user.auth:
            raise ValueError("an unauthenticated answer to an authenticated request")
        return answer


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


async def _lookup(address: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(address, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise SnmpError(f"cannot resolve {address}: {exc}") from None
    family, _type, _proto, _name, sockaddr = infos[0]
    return family, sockaddr


def _report_oid(answer: Pdu) -> Oid:
    return answer.varbinds[0][0] if answer.varbinds else ()


_ERROR_STATUS = {
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    16: "authorizationError (the agent's access rules refuse this user or security level)",
}
