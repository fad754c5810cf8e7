"""The Helm chart (deploy/helm/vigil), rendered offline by the real Helm SDK for each values
combination `make check-deploy` validates: what it starts is a valid `vigil` invocation,
probes point at real endpoints, the migrations hook runs `vigil migrate` first, every
container is non-root with a read-only root filesystem, and the schema rejects bad values.
(tests/e2e/test_chart_roles.py runs the rendered roles as real processes.)"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from tests.support.chart import (
    REPO,
    by_component,
    load_chart_tool,
    pod_spec,
    require_tool,
    vigil_containers,
    workloads,
)
from vigil import cli as vigil_cli
from vigil.core.api import create_app
from vigil.core.runtime import Runtime, job_queues
from vigil.settings import Settings

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
CHART = load_chart_tool()
CASES: dict[str, dict[str, Any]] = CHART.CASES


@cache
def rendered(case: str, upgrade: bool = False) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = CHART.render(CASES[case], upgrade=upgrade)
    return objects


def vigil_help(args: list[str]) -> Result:
    """`vigil <args> --help` in this process: the arguments parse (Typer rejects unknown
    commands and options, out-of-range numbers), without starting the role."""
    return CliRunner().invoke(vigil_cli.app, [*args, "--help"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_case_renders_and_lints_clean(case: str) -> None:
    assert CHART.lint(CASES[case]) == []
    kinds = {o["kind"] for o in rendered(case)}
    assert {"Deployment", "Service", "Job", "ServiceAccount"} <= kinds


def test_the_roles_of_the_one_image() -> None:
    objects = rendered("full")
    commands = {w["metadata"]["name"]: c["args"][0] for w, c in vigil_containers(objects)}
    assert commands == {
        "vigil-api": "api",
        "vigil-migrate": "migrate",
        "vigil-scheduler": "scheduler",
        "vigil-worker-analytics": "worker",
        "vigil-worker-collect": "worker",
        "vigil-worker-ingest": "worker",
    }
    images = {c["image"] for _, c in vigil_containers(objects)}
    assert images == {"registry.example.com/vigil@sha256:" + "ab" * 32}
    default = {c["image"] for _, c in vigil_containers(rendered("external"))}
    assert default == {"vigil:0.1.0"}  # the chart's appVersion


def test_every_command_is_a_valid_vigil_invocation() -> None:
    commands = {
        tuple(container["args"])
        for case in CASES
        for _, container in vigil_containers(rendered(case))
    }
    assert len(commands) >= 6
    for args in sorted(commands):
        done = vigil_help(list(args))
        assert done.exit_code == 0, f"vigil {' '.join(args)}: {done.output}"
    assert vigil_help(["wrker"]).exit_code != 0  # the check can fail: unknown command
    assert vigil_help(["worker", "--queue", "x"]).exit_code != 0  # unknown option


def test_each_default_worker_serves_a_queue_vigil_knows() -> None:
    known = job_queues(Runtime.create(Settings(database_url="sqlite://")).registry)
    queues = {
        c["args"][c["args"].index("-Q") + 1]
        for w, c in vigil_containers(rendered("external"))
        if c["args"][0] == "worker"
    }
    assert {"ingest", "analytics"} <= queues <= known
    # Every queue a module serves has its worker in the chart (off until its module ships).
    values = yaml.safe_load((REPO / "deploy/helm/vigil/values.yaml").read_text())
    assert known <= set(values["workers"])


def _probes(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: container[name]
        for name in ("startupProbe", "livenessProbe", "readinessProbe")
        if name in container
    }


def _port(container: dict[str, Any], name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name_or_number]
    return int(port)


def test_api_probes_answer_on_a_real_app(tmp_path: Path) -> None:
    _, api = next(
        (w, c) for w, c in vigil_containers(rendered("external")) if c["args"][0] == "api"
    )
    probes = _probes(api)
    assert {p["httpGet"]["path"] for p in probes.values()} == {"/health", "/health/ready"}
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    args = api["args"]
    for probe in probes.values():
        assert _port(api, probe["httpGet"]["port"]) == int(args[args.index("--port") + 1])
    runtime = Runtime.create(Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}"), role="api")
    client = TestClient(create_app(runtime))
    assert client.get("/health/ready").status_code == 503  # not migrated: not ready
    runtime.migrate()
    for probe in probes.values():
        assert client.get(probe["httpGet"]["path"]).status_code == 200
    runtime.close()


def test_worker_probes_and_metrics_port_match_its_command() -> None:
    objects = rendered("full")
    for _, container in vigil_containers(objects):
        if container["args"][0] != "worker":
            continue
        args = container["args"]
        port = int(args[args.index("--metrics-port") + 1])
        for probe in _probes(container).values():
            assert probe["httpGet"]["path"] == "/metrics"
            assert _port(container, probe["httpGet"]["port"]) == port
    service = by_component(objects, "Service", "worker-metrics")
    assert service["spec"]["ports"][0]["port"] == 8001


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_container_is_non_root_read_only_unprivileged(case: str) -> None:
    for workload in workloads(rendered(case)):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        mounts_ok = {v["name"] for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["limits"].keys() == {"cpu", "memory"}, name
            assert container["resources"]["requests"].keys() == {"cpu", "memory"}, name
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in mounts_ok | {"data"}, name
    for _, container in vigil_containers(rendered(case)):
        assert container["securityContext"]["runAsUser"] == 10001  # deploy/Dockerfile's user


def test_vigil_writes_only_to_its_empty_dirs_and_reads_secrets_from_files() -> None:
    for workload, container in vigil_containers(rendered("external")):
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        writable = {path for path, m in mounts.items() if not m.get("readOnly")}
        assert writable == {"/data", "/tmp"}
        for path in writable:
            assert "emptyDir" in volumes[mounts[path]["name"]]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["VIGIL_DATA_DIR"] == "/data"
        assert env["TMPDIR"] == "/tmp"
        secrets_dir = next(p for p, m in mounts.items() if m["name"] == "secrets")
        for name in ("JWT_SECRET", "DATABASE_URL", "REDIS_URL"):
            assert f"VIGIL_{name}" not in env  # never a secret in the environment
            assert env[f"VIGIL_{name}_FILE"].startswith(secrets_dir + "/")
        assert not any("valueFrom" in e for e in container["env"])


def test_settings_read_connection_urls_from_files(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("postgresql://u:p@db/v\n")
    (tmp_path / "redis").write_text("redis://r:6379/0\n")
    settings = Settings(database_url_file=tmp_path / "db", redis_url_file=tmp_path / "redis")
    assert settings.database_url == "postgresql://u:p@db/v"
    assert settings.effective_broker_url == "redis://r:6379/0"
    with pytest.raises(ValueError, match="not both"):
        Settings(database_url="sqlite://", database_url_file=tmp_path / "db")
    with pytest.raises(ValueError, match="cannot read"):
        Settings(redis_url_file=tmp_path / "missing")


@pytest.mark.parametrize(
    ("case", "helm_hook", "argo_hook"),
    [
        ("external", "pre-install,pre-upgrade", "PreSync"),
        ("bundled", "post-install,pre-upgrade", "Sync"),
    ],
)
def test_migrations_run_as_a_hook_job(case: str, helm_hook: str, argo_hook: str) -> None:
    objects = rendered(case)
    job = by_component(objects, "Job", "migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == helm_hook
    assert annotations["argocd.argoproj.io/hook"] == argo_hook
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    # The Secret the Job reads exists before it: a hook with a lower weight.
    (secret,) = [o for o in objects if o["kind"] == "Secret" and "jwt-secret" in o["data"]]
    weights = (secret["metadata"]["annotations"], annotations)
    assert "pre-install" in weights[0]["helm.sh/hook"]
    assert int(weights[0]["helm.sh/hook-weight"]) < int(weights[1]["helm.sh/hook-weight"])


def test_a_generated_jwt_secret_is_long_and_an_existing_secret_is_used_as_is() -> None:
    (secret,) = [o for o in rendered("external") if o["kind"] == "Secret"]
    assert {"jwt-secret", "database-url", "redis-url"} == set(secret["data"])
    assert not [o for o in rendered("full") if o["kind"] == "Secret"]
    volumes = [v for w in workloads(rendered("full")) for v in pod_spec(w)["volumes"]]
    assert {v["secret"]["secretName"] for v in volumes if "secret" in v} == {"vigil-secrets"}


def test_api_scales_and_survives_disruptions() -> None:
    objects = rendered("external")
    hpa = by_component(objects, "HorizontalPodAutoscaler", "api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "vigil-api"
    assert "replicas" not in by_component(objects, "Deployment", "api")["spec"]
    assert by_component(objects, "PodDisruptionBudget", "api")["spec"]["minAvailable"] == 1
    scheduler = by_component(objects, "Deployment", "scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"


def test_network_policies_let_in_only_what_the_pods_serve() -> None:
    objects = rendered("external")
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    deny = policies["vigil-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    api_ports = {p["port"] for p in policies["vigil-api"]["ingress"][0]["ports"]}
    _, api = next((w, c) for w, c in vigil_containers(objects) if c["args"][0] == "api")
    assert api_ports == {p["containerPort"] for p in api["ports"]}
    worker_ports = {p["port"] for p in policies["vigil-worker-metrics"]["ingress"][0]["ports"]}
    assert worker_ports == {8001}


def test_monitoring_objects_carry_the_rules_file() -> None:
    objects = rendered("full")
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    rules_file = yaml.safe_load((REPO / "deploy/helm/vigil/files/alerts.yml").read_text())
    assert rule["spec"] == rules_file
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"http", "metrics"}
    assert not [
        o for o in rendered("external") if o["kind"] in {"PrometheusRule", "ServiceMonitor"}
    ]


BAD_VALUES: dict[str, dict[str, Any]] = {
    "no database": {"externalRedis": {"url": "redis://r:6379/0"}},
    "no redis": {"externalDatabase": {"url": "postgresql://d/v"}},
    "database url of another scheme": {"externalDatabase": {"url": "mysql://d/v"}},
    "unknown key": {"replicaCount": 3},
    "unknown queue": {"workers": {"mining": {"enabled": True}}},
    "replicas as text": {"api": {"replicas": "two"}},
    "pull policy": {"image": {"pullPolicy": "Sometimes"}},
    "digest": {"image": {"digest": "sha256:xyz"}},
    "root user": {"securityContext": {"runAsUser": 0}},
    "secret in config": {"config": {"VIGIL_JWT_SECRET": "x" * 40}},
    "config not VIGIL_": {"config": {"LOG_LEVEL": "DEBUG"}},
    "config not a string": {"config": {"VIGIL_API_WORKERS": 4}},
    "short jwt secret": {"secrets": {"jwtSecret": "short"}},
    "bundled postgresql without password": {"postgresql": {"enabled": True}},
    "metrics port of the api": {"workerMetricsPort": 8000},
    "resources without limits": {"scheduler": {"resources": {"limits": None}}},
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_the_schema_rejects_bad_values(name: str) -> None:
    values = BAD_VALUES[name]
    if name not in {"no database", "no redis", "database url of another scheme"}:
        values = CHART.CASES["external"] | values
    with pytest.raises(helm.HelmValuesError):
        CHART.render(values)


def test_autoscaler_bounds_are_checked_when_rendering() -> None:
    values = CASES["external"] | {"api": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}
    with pytest.raises(helm.HelmError, match="minReplicas must not exceed"):
        CHART.render(values)


def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = require_tool("promtool", "Debian package prometheus")
    rules = REPO / "deploy/helm/vigil/files/alerts.yml"
    tests = sorted((REPO / "deploy/prometheus/tests").glob("*.test.yml"))
    for args in (["check", "rules", str(rules)], ["test", "rules", *map(str, tests)]):
        done = subprocess.run(
            [promtool, *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_rule_has_a_unit_test() -> None:
    rules = yaml.safe_load((REPO / "deploy/helm/vigil/files/alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tested = {
        case["alertname"]
        for path in (REPO / "deploy/prometheus/tests").glob("*.test.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")  # a case where it fires
    }
    assert {"VigilNetworkDeviceDown", "VigilNetworkPollingDegraded"} <= alerts
    assert alerts <= tested, alerts - tested


def test_alert_rules_use_only_metrics_vigil_exports() -> None:
    import re  # noqa: PLC0415

    from prometheus_client import REGISTRY  # noqa: PLC0415

    import vigil.core.metrics  # noqa: PLC0415  (the HTTP metrics, also when run alone)
    import vigil.core.ratelimit  # noqa: PLC0415
    import vigil.markets.jobs  # noqa: PLC0415  (registers the markets metrics)
    import vigil.network.metrics  # noqa: PLC0415  (and the network's)
    import vigil.network.polling  # noqa: F401, PLC0415

    exported = {
        sample_name
        for metric in REGISTRY.collect()
        for sample_name in [metric.name, f"{metric.name}_total", f"{metric.name}_bucket"]
    }
    text = (REPO / "deploy/helm/vigil/files/alerts.yml").read_text()
    used = set(re.findall(r"\bvigil_[a-z_]+\b", text))
    assert used
    assert used <= exported, used - exported
