"""Prometheus metrics of the devices' state, for the alert rules "device down for 5 min" and
the network dashboard (deploy/helm/vigil/files/alerts.yml, dashboards/golden-signals.json).

``vigil_network_polls_total{collector,outcome}`` (polling.py) counts the polls; this module
adds what a counter cannot say: how many devices are in each status, which ones are down, and
the round-trip times. The ICMP sweep (``polling.store_results``) calls :func:`record_sweep`
once with every enabled device's new state (the collect worker; in multiprocess mode the most recent
value of any process wins).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import Gauge, Histogram

#: The statuses a device's state takes (models.DeviceState.status); each is exported, 0 too.
STATUSES = ("up", "down", "unreachable", "unknown")

DEVICES = Gauge(
    "vigil_network_devices",
    "Devices by status after the last sweep (unreachable: behind a parent that is down).",
    ["status"],
    multiprocess_mode="mostrecent",
)
DEVICE_DOWN = Gauge(
    "vigil_network_device_down",
    "1 while the device is down (its own failure, not suppressed), else 0.",
    ["device"],
    multiprocess_mode="mostrecent",
)
RTT = Histogram(
    "vigil_network_rtt_seconds",
    "Round-trip time of the polls that were answered, by collector.",
    ["collector"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


@dataclass(frozen=True)
class DeviceSample:
    device: str  # the device's name (its label)
    status: str  # up | down | unreachable | unknown
    rtt_ms: float | None = None  # of this poll, when it was answered


def record_sweep(samples: Iterable[DeviceSample], collector: str = "icmp") -> None:
    """Sets the status gauges from every device's state after a sweep, and observes the RTTs.
    Devices are named by their label; one that left the inventory stops being exported."""
    samples = list(samples)
    tally = Tally(s.status for s in samples)
    for status in STATUSES:
        DEVICES.labels(status).set(tally.get(status, 0))
    DEVICE_DOWN.clear()
    for sample in samples:
        DEVICE_DOWN.labels(sample.device).set(1 if sample.status == "down" else 0)
        if sample.rtt_ms is not None:
            RTT.labels(collector).observe(sample.rtt_ms / 1000)
