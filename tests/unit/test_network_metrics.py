"""vigil.network.metrics: the status gauges follow each sweep (devices that left stop being
exported), and the RTTs land in the histogram in seconds."""

from __future__ import annotations

from prometheus_client import REGISTRY

from vigil.network.metrics import DeviceSample, record_sweep


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_sweep_sets_the_status_gauges_and_the_down_devices() -> None:
    record_sweep(
        [
            DeviceSample("core-sw1", "down"),
            DeviceSample("edge-r1", "up", rtt_ms=2.0),
            DeviceSample("ap-3", "unreachable"),
            DeviceSample("ap-4", "up", rtt_ms=40.0),
        ]
    )
    assert value("vigil_network_devices", status="up") == 2
    assert value("vigil_network_devices", status="down") == 1
    assert value("vigil_network_devices", status="unreachable") == 1
    assert value("vigil_network_devices", status="unknown") == 0
    assert value("vigil_network_device_down", device="core-sw1") == 1
    assert value("vigil_network_device_down", device="edge-r1") == 0
    assert value("vigil_network_device_down", device="ap-3") == 0  # suppressed, not down

    before = value("vigil_network_rtt_seconds_count", collector="icmp") or 0
    below_5ms = value("vigil_network_rtt_seconds_bucket", collector="icmp", le="0.005") or 0
    record_sweep([DeviceSample("edge-r1", "up", rtt_ms=3.0)])
    assert value("vigil_network_rtt_seconds_count", collector="icmp") == before + 1
    assert value("vigil_network_rtt_seconds_bucket", collector="icmp", le="0.005") == below_5ms + 1
    # core-sw1 left the inventory: no longer exported; the counts follow.
    assert value("vigil_network_device_down", device="core-sw1") is None
    assert value("vigil_network_devices", status="down") == 0
    assert value("vigil_network_devices", status="up") == 1
