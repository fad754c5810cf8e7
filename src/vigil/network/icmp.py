"""The ICMP collector: echo requests to many devices at once (icmplib, asyncio).

Targets are polled under a semaphore that bounds how many are in flight, each with its own
deadline and its own error, so one bad name or a slow host never takes a batch down with it.
On datagram sockets each target is one ``icmplib.async_ping`` (what ``async_multiping`` runs
per address); on raw sockets all targets share one socket per address family
(:mod:`vigil.network.rawping`: per-target raw sockets each read every ICMP packet). A poll
is ``count`` echo requests ``interval`` apart, each waited for ``timeout`` seconds; it
succeeds when any reply came back.

Sockets: datagram ("unprivileged") ICMP sockets when ``net.ipv4.ping_group_range`` admits the
process's group, raw sockets (root or CAP_NET_RAW) otherwise; ``VIGIL_NETWORK_ICMP_PRIVILEGED``
forces either (docs/network.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from icmplib import (
    ICMPLibError,
    NameLookupError,
    SocketPermissionError,
    async_ping,
    async_resolve,
)

from vigil.network.rawping import RawPinger

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
Privileged = Literal["auto", "raw", "unprivileged"]

#: Per-poll metrics, as stored in network_samples.
METRICS = (
    "icmp.sent",
    "icmp.received",
    "icmp.loss_pct",
    "icmp.rtt_min_ms",
    "icmp.rtt_avg_ms",
    "icmp.rtt_max_ms",
    "icmp.jitter_ms",
)


def unprivileged_allowed(gid: int | None = None, path: Path = PING_GROUP_RANGE) -> bool:
    """Whether the kernel lets this process's group open datagram ICMP sockets."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return False
    gid = os.getgid() if gid is None else gid
    return low <= gid <= high


def use_raw_sockets(mode: Privileged) -> bool:
    if mode == "raw":
        return True
    if mode == "unprivileged":
        return False
    return not unprivileged_allowed()


@dataclass(frozen=True)
class PingSettings:
    count: int = 3
    interval: float = 0.05
    timeout: float = 1.0
    concurrency: int = 50
    raw: bool = True

    @property
    def deadline(self) -> float:
        """The most one poll may take: every request, its wait for a reply, and a margin."""
        return self.count * (self.interval + self.timeout) + 1.0


@dataclass(frozen=True)
class PollResult:
    key: int  # the caller's id for the target (a device id)
    address: str
    at: datetime
    sent: int
    received: int
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    jitter_ms: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.received > 0

    @property
    def loss_pct(self) -> float:
        return 100.0 if self.sent == 0 else round(100.0 * (1 - self.received / self.sent), 3)

    def samples(self) -> dict[str, float]:
        """The metrics of this poll (the RTTs only when a reply came)."""
        values: dict[str, float | None] = {
            "icmp.sent": float(self.sent),
            "icmp.received": float(self.received),
            "icmp.loss_pct": self.loss_pct,
            "icmp.rtt_min_ms": self.rtt_min_ms,
            "icmp.rtt_avg_ms": self.rtt_avg_ms,
            "icmp.rtt_max_ms": self.rtt_max_ms,
            "icmp.jitter_ms": self.jitter_ms,
        }
        return {k: v for k, v in values.items() if v is not None}


def _stats(
    key: int, address: str, at: datetime, sent: int, rtts: list[float], error: str | None
) -> PollResult:
    if not rtts:
        return PollResult(key, address, at, sent, 0, error=error or "no reply")
    diffs = [abs(b - a) for a, b in itertools.pairwise(rtts)]
    return PollResult(
        key,
        address,
        at,
        sent,
        len(rtts),
        round(min(rtts), 3),
        round(sum(rtts) / len(rtts), 3),
        round(max(rtts), 3),
        round(sum(diffs) / len(diffs), 3) if diffs else 0.0,
    )


async def _raw_ping(
    pinger: RawPinger, address: str, settings: PingSettings
) -> tuple[int, list[float], str | None]:
    try:
        ipaddress.ip_address(address)
        target = address
    except ValueError:
        target = (await async_resolve(address))[0]
    return await pinger.ping(target, settings.count, settings.interval, settings.timeout)


async def ping_one(
    key: int,
    address: str,
    settings: PingSettings,
    semaphore: asyncio.Semaphore | None = None,
    pinger: RawPinger | None = None,
) -> PollResult:
    at = datetime.now(UTC)

    def failed(error: str, sent: int = 0) -> PollResult:
        return PollResult(key, address, at, sent, 0, error=error)

    async def ping() -> PollResult:
        try:
            if pinger is not None:
                sent, rtts, error = await asyncio.wait_for(
                    _raw_ping(pinger, address, settings), settings.deadline
                )
                return _stats(key, address, at, sent, rtts, error)
            host = await asyncio.wait_for(
                async_ping(
                    address,
                    count=settings.count,
                    interval=settings.interval,
                    timeout=settings.timeout,
                    privileged=settings.raw,
                ),
                settings.deadline,
            )
        except TimeoutError:
            return failed(f"no answer within {settings.deadline:g} s", settings.count)
        except NameLookupError:
            return failed(f"cannot resolve {address!r}")
        except SocketPermissionError:
            return failed(
                "no permission to open an ICMP socket: run as root (raw sockets) or widen "
                "net.ipv4.ping_group_range (VIGIL_NETWORK_ICMP_PRIVILEGED=unprivileged)"
            )
        except (ICMPLibError, OSError) as exc:
            return failed(f"{type(exc).__name__}: {exc}")
        if host.packets_received == 0:
            return failed("no reply", host.packets_sent)
        return PollResult(
            key,
            address,
            at,
            host.packets_sent,
            host.packets_received,
            round(host.min_rtt, 3),
            round(host.avg_rtt, 3),
            round(host.max_rtt, 3),
            round(host.jitter, 3),
        )

    if semaphore is None:
        return await ping()
    async with semaphore:
        at = datetime.now(UTC)
        return await ping()


async def poll_many(targets: Sequence[tuple[int, str]], settings: PingSettings) -> list[PollResult]:
    """Polls every (key, address) with at most ``settings.concurrency`` in flight; one
    result per target, in order."""
    semaphore = asyncio.Semaphore(settings.concurrency)
    if not settings.raw:
        return list(
            await asyncio.gather(*(ping_one(k, a, settings, semaphore) for k, a in targets))
        )
    async with RawPinger() as pinger:
        return list(
            await asyncio.gather(*(ping_one(k, a, settings, semaphore, pinger) for k, a in targets))
        )


def poll(targets: Sequence[tuple[int, str]], settings: PingSettings) -> list[PollResult]:
    """:func:`poll_many` from synchronous code (a job, the CLI)."""
    return asyncio.run(poll_many(targets, settings))
