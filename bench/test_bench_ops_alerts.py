"""Vigil's Alertmanager receiver with the largest notification it takes: 1,000 alerts (each
with Alertmanager's usual shape: 6 labels, 3 annotations, a graph link), on a fresh database
of each backend.

    .venv/bin/python -m pytest bench/test_bench_ops_alerts.py -p no:cacheprovider --benchmark-only

Timed, per round: what the route does after the token check, i.e. parse and validate the JSON
body (pydantic) and upsert the alerts in one transaction (``service.receive``, INSERT ... ON
CONFLICT in chunks of 500). The first round inserts 1,000 rows; every later one is a
re-delivery (1,000 updates), which is what Alertmanager sends every ``repeat_interval``.
Not timed: HTTP and the token lookup (one indexed SELECT).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from bench._support import FreshDatabases, postgres_available
from pytest_benchmark.fixture import BenchmarkFixture

from vigil.core.ops_alerts import service
from vigil.core.ops_alerts.schemas import MAX_ALERTS, Notification
from vigil.core.runtime import Runtime

ROUNDS = 10


def body() -> bytes:
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "VigilNetworkDeviceDown", "severity": "critical",
                "namespace": "vigil", "job": "vigil-api", "device": f"sw-{i:04}",
                "site": f"site-{i % 17}",
            },
            "annotations": {
                "summary": f"sw-{i:04} is down", "description": "No ICMP answer for 5 minutes.",
                "runbook_url": "https://example.org/runbooks/device-down",
            },
            "startsAt": "2026-12-04T13:58:30.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus-0:9090/graph?g0.expr=vigil_network_device_down",
            "fingerprint": f"{i:016x}",
        }
        for i in range(MAX_ALERTS)
    ]  # fmt: skip
    payload = {
        "receiver": "vigil", "status": "firing", "alerts": alerts, "version": "4",
        "groupLabels": {"alertname": "VigilNetworkDeviceDown", "severity": "critical"},
        "commonLabels": {"alertname": "VigilNetworkDeviceDown", "severity": "critical"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager-0:9093",
        "groupKey": "{}:{alertname=\"VigilNetworkDeviceDown\"}", "truncatedAlerts": 0,
    }  # fmt: skip
    return json.dumps(payload).encode()


@pytest.fixture(params=["sqlite", "postgresql"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "postgresql" and (why := postgres_available()):
        pytest.skip(why)
    databases = FreshDatabases(request.param, "http://127.0.0.1:9/api")
    try:
        yield databases.new()
    finally:
        databases.close()


def test_receive_1000_alerts(
    benchmark: BenchmarkFixture, runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = body()
    stored: list[int] = []

    def deliver() -> None:
        notification = Notification.model_validate_json(raw)
        with runtime.db.session(write=True) as session:
            stored.append(service.receive(session, notification))

    benchmark.group = "ops alerts: receive a 1,000-alert notification"
    benchmark.pedantic(deliver, rounds=ROUNDS, iterations=1)  # type: ignore[no-untyped-call]
    assert stored == [MAX_ALERTS] * ROUNDS

    stats: Any = benchmark.stats.stats  # type: ignore[union-attr]
    seconds = np.array(stats.data, dtype=np.float64)
    parse = min(_timed(lambda: Notification.model_validate_json(raw)) for _ in range(5))
    benchmark.extra_info.update(
        backend=runtime.db.dialect,
        body_bytes=len(raw),
        first_insert_seconds=round(float(seconds[0]), 4),
        redelivery_median_seconds=round(float(np.median(seconds[1:])), 4),
        parse_seconds=round(parse, 4),
    )
    with capsys.disabled():
        print(
            f"\n[bench] ops alerts, {runtime.db.dialect}: a {len(raw) / 1e6:.2f} MB notification "
            f"of {MAX_ALERTS} alerts: first delivery (insert) {seconds[0] * 1000:.0f} ms, "
            f"re-delivery (update) median {np.median(seconds[1:]) * 1000:.0f} ms "
            f"(max {seconds[1:].max() * 1000:.0f} ms) over {ROUNDS - 1} rounds; of which "
            f"parsing and validating {parse * 1000:.0f} ms"
        )


def _timed(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
