"""Echo requests over one raw socket per address family, shared by every target of a sweep.

icmplib's ``async_ping`` opens a raw socket per target, and the kernel hands every raw ICMP
socket a copy of every ICMP packet: with 50 targets in flight each reply is read and thrown
away ~50 times (1,000 targets x 3 requests took 4-5 s on loopback). Here one socket per family
sends every request (icmplib builds the packets) and one reader task hands each echo reply to
the request that waits for it, matched by (identifier, sequence) and the replying address.
Only for raw sockets: datagram ("unprivileged") sockets are demultiplexed by the kernel, which
also rewrites their identifier, so icmplib's per-target sockets are right there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import random
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from icmplib import ICMPRequest, ICMPv4Socket, ICMPv6Socket

ECHO_REPLY = {4: 0, 6: 129}
ECHO_REQUEST = {4: 8, 6: 128}


@dataclass
class Reply:
    at: float  # when it was read (time.time(), as icmplib stamps requests)
    ok: bool  # an echo reply (not an error such as "destination unreachable")


@dataclass
class _Family:
    version: int
    icmp: ICMPv4Socket | ICMPv6Socket
    waiting: dict[tuple[int, int], tuple[str, asyncio.Future[Reply]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None


def _parse(version: int, packet: bytes) -> tuple[int, int, int] | None:
    """(type, identifier, sequence) of an ICMP packet read from a raw socket (IPv4 packets
    come with their IP header, IPv6 ones without). Errors quote the request they answer:
    its identifier and sequence are read from the quote."""
    if version == 4:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8:
        return None
    kind = packet[0]
    if kind in (ECHO_REPLY[version], ECHO_REQUEST[version]):
        ident, seq = struct.unpack("!HH", packet[4:8])
        return kind, ident, seq
    quoted = packet[8:]  # the original datagram: IP header, then the echo request
    if version == 4:
        if len(quoted) < 20:
            return None
        quoted = quoted[(quoted[0] & 0x0F) * 4 :]
    else:
        quoted = quoted[40:]
    if len(quoted) < 8:
        return None
    ident, seq = struct.unpack("!HH", quoted[4:8])
    return kind, ident, seq


class RawPinger:
    """Use inside one event loop: ``async with RawPinger() as pinger: await pinger.ping(…)``."""

    def __init__(self) -> None:
        self._families: dict[int, _Family] = {}
        start = random.randrange(1, 0xFFFF)
        self._ids: Iterator[int] = (
            (start + n) % 0xFFFF + 1 for n in itertools.count()
        )  # one identifier per poll; random start, so two processes rarely share one

    async def __aenter__(self) -> RawPinger:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for family in self._families.values():
            if family.reader is not None:
                family.reader.cancel()
            family.icmp.close()
        self._families.clear()

    def _family(self, version: int) -> _Family:
        family = self._families.get(version)
        if family is None:
            icmp = ICMPv4Socket(privileged=True) if version == 4 else ICMPv6Socket(privileged=True)
            icmp.blocking = False
            _grow_receive_buffer(icmp.sock)
            family = _Family(version, icmp)
            family.reader = asyncio.get_running_loop().create_task(self._read(family))
            self._families[version] = family
        return family

    async def _read(self, family: _Family) -> None:
        loop = asyncio.get_running_loop()
        sock: socket.socket = family.icmp.sock
        while True:
            packet, source = await loop.sock_recvfrom(sock, 2048)
            at = time.time()
            parsed = _parse(family.version, packet)
            if parsed is None:
                continue
            kind, ident, seq = parsed
            if kind == ECHO_REQUEST[family.version]:
                continue  # our own requests, seen on loopback
            waiter = family.waiting.get((ident, seq))
            if waiter is None:
                continue  # another program's ping, or a reply that came too late
            address, future = waiter
            echo = kind == ECHO_REPLY[family.version]
            if echo and _same(source[0], address) is False:
                continue
            if not future.done():
                future.set_result(Reply(at, echo))

    @contextmanager
    def _waiting(
        self, family: _Family, key: tuple[int, int], address: str
    ) -> Iterator[asyncio.Future[Reply]]:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        family.waiting[key] = (address, future)
        try:
            yield future
        finally:
            family.waiting.pop(key, None)

    async def ping(
        self, address: str, count: int, interval: float, timeout: float
    ) -> tuple[int, list[float], str | None]:
        """(requests sent, RTTs in ms of the replies, the last error) for an IP address."""
        family = self._family(ipaddress.ip_address(address).version)
        ident = next(self._ids)
        sent, rtts, error = 0, [], None
        for seq in range(count):
            if seq and interval:
                await asyncio.sleep(interval)
            request = ICMPRequest(address, ident, seq)
            with self._waiting(family, (ident, seq), address) as future:
                try:
                    family.icmp.send(request)
                except OSError as exc:  # icmplib's ICMPSocketError is one too
                    error = f"{type(exc).__name__}: {exc}"
                    continue
                finally:
                    sent += 1
                try:
                    reply = await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    continue
            if reply.ok:
                rtts.append((reply.at - request.time) * 1000)
            else:
                error = "an ICMP error answered (unreachable)"
        return sent, rtts, error


RECEIVE_BUFFER = 4 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def _grow_receive_buffer(sock: socket.socket) -> None:
    """Room for a burst of replies (the default ~200 KB holds ~300 packets): a full buffer
    drops replies, which would count as loss. Past net.core.rmem_max needs CAP_NET_ADMIN,
    which a raw socket's owner usually has; otherwise the kernel's cap applies."""
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
            return
        except OSError:
            continue


def _same(source: str, address: str) -> bool | None:
    try:
        return ipaddress.ip_address(source.split("%", 1)[0]) == ipaddress.ip_address(address)
    except ValueError:
        return None
