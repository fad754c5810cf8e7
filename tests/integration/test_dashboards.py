"""Grafana dashboards (deploy/helm/vigil/dashboards/*.json): well-formed (unique uids and
panel ids, every panel on the 24-column grid and bound to the datasource variable), every
query valid PromQL (promtool checks each as a recording rule) over metrics Vigil exports,
and shipped by the chart as ConfigMaps for Grafana's sidecar."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.chart import REPO, load_chart_tool, require_tool

DASHBOARDS = sorted((REPO / "deploy/helm/vigil/dashboards").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def exported_metrics() -> set[str]:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    import vigil.core.backlog  # noqa: PLC0415  (the jobs backlog)
    import vigil.core.metrics  # noqa: PLC0415  (the HTTP metrics, also when run alone)
    import vigil.core.ratelimit  # noqa: PLC0415
    import vigil.markets.jobs  # noqa: PLC0415  (registers the markets metrics)
    import vigil.network.metrics  # noqa: PLC0415  (and the network's)
    import vigil.network.polling  # noqa: F401, PLC0415

    return {
        name
        for metric in REGISTRY.collect()
        for name in (metric.name, f"{metric.name}_total", f"{metric.name}_bucket")
    }


def promtool_check(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Each expression as a recording rule, Grafana's $__rate_interval as 5m."""
    rules = [
        {"record": f"vigil:dashboard_query_{i}", "expr": e.replace("$__rate_interval", "5m")}
        for i, e in enumerate(exprs)
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool = require_tool("promtool", "Debian package prometheus")
    return subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_there_is_a_golden_signals_dashboard() -> None:
    assert [p.name for p in DASHBOARDS] == ["golden-signals.json"]
    titles = {p["title"] for p in load(DASHBOARDS[0])["panels"]}
    assert {"Traffic (requests/s)", "Errors (5xx share)", "Latency p50 / p95 / p99"} <= titles
    # Network: polling success, devices down, RTT (issue #10).
    network = " ".join(e for e in queries(load(DASHBOARDS[0])) if "vigil_network_" in e)
    for metric in ("polls_total", "device_down", "rtt_seconds_bucket"):
        assert f"vigil_network_{metric}" in network
    # Jobs: runs, failures, durations, backlog; markets: freshness, signals, alerts.
    everything = " ".join(queries(load(DASHBOARDS[0])))
    for metric in (
        "vigil_jobs_runs_total",
        "vigil_jobs_duration_seconds_bucket",
        "vigil_jobs_backlog",
        "vigil_markets_source_last_success_timestamp_seconds",
        "vigil_markets_source_newest_data_timestamp_seconds",
        "vigil_markets_signal",
        "alerts_total",
    ):
        assert metric in everything, metric


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = load(path)
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert "datasource" in variables
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_is_valid_promql_over_exported_metrics(path: Path, tmp_path: Path) -> None:
    exprs = queries(load(path))
    done = promtool_check(exprs, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = promtool_check(["sum(rate(vigil_http_requests_total[5m])"], tmp_path)
    assert broken.returncode != 0  # the check can fail
    used = {m for e in exprs for m in re.findall(r"\bvigil_[a-z_]+\b", e)}
    assert used
    assert used <= exported_metrics(), used - exported_metrics()


def test_the_chart_ships_each_dashboard_as_a_configmap() -> None:
    pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
    chart = load_chart_tool()
    objects = chart.render(chart.CASES["full"])
    maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    for path in DASHBOARDS:
        config_map = maps[f"vigil-dashboard-{path.stem}"]
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(config_map["data"][path.name]) == load(path)
    assert not [o for o in chart.render(chart.CASES["external"]) if o["kind"] == "ConfigMap"]
