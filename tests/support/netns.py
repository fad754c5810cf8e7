"""Test hosts in network namespaces: ``ip netns add`` and a veth pair per host, on a private
/30 each. Traffic goes only to these namespaces. Needs root (or CAP_NET_ADMIN) and iproute2;
everything made is removed when the block ends, also when the test failed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from tests.conftest import service_unavailable
from vigil.network import icmp


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@dataclass(frozen=True)
class NsHost:
    namespace: str
    address: str  # the host's address inside its namespace
    inside: str  # its interface in the namespace

    def link(self, up: bool) -> None:
        """Takes the host's link down (it stops answering) or brings it back; back, it
        returns once the host answers a ping again (carrier, neighbour discovery), so the
        next poll of a test sees it up."""
        _ip(
            "netns",
            "exec",
            self.namespace,
            "ip",
            "link",
            "set",
            self.inside,
            "up" if up else "down",
        )
        if not up:
            return
        settings = icmp.PingSettings(count=1, interval=0.0, timeout=0.2)
        deadline = time.monotonic() + 5
        while not icmp.poll([(0, self.address)], settings)[0].ok:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.address} in {self.namespace} does not answer again")


def available() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


@contextmanager
def ns_host(subnet: int) -> Iterator[NsHost]:
    """A host at 10.254.<subnet>.2 in a namespace of its own, reached from here through a veth
    pair (this side 10.254.<subnet>.1/30)."""
    tag = uuid.uuid4().hex[:6]
    namespace, outside, inside = f"vigil-t{tag}", f"vgo{tag}", f"vgi{tag}"
    address = f"10.254.{subnet}.2"
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"10.254.{subnet}.1/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("netns", "exec", namespace, "ip", "addr", "add", f"{address}/30", "dev", inside)
        _ip("netns", "exec", namespace, "ip", "link", "set", inside, "up")
        _ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        yield NsHost(namespace, address, inside)
    finally:
        subprocess.run(["ip", "link", "del", outside], check=False, capture_output=True, timeout=10)
        subprocess.run(
            ["ip", "netns", "del", namespace], check=False, capture_output=True, timeout=10
        )


@contextmanager
def ns_hosts(count: int) -> Iterator[list[NsHost]]:
    reason = available()
    if reason:
        service_unavailable(f"test hosts in network namespaces: {reason}")
    base = int(uuid.uuid4().int % 200)
    with ExitStack() as stack:
        yield [stack.enter_context(ns_host(base + i)) for i in range(count)]


@contextmanager
def namespace_allowing_unprivileged_ping() -> Iterator[str]:
    """A namespace with only its loopback, where ``net.ipv4.ping_group_range`` (a per
    namespace setting) admits every group: the datagram ICMP path can be tested even where
    the machine's own setting refuses it."""
    if why := available():
        service_unavailable(why)
    name = f"vigil-ping-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        _ip("netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")
        yield name
    finally:
        _ip("netns", "del", name)
