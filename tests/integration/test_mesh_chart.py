"""The chart's service mesh (mesh.provider), rendered by the real Helm SDK: Istio's mTLS STRICT
covers every long-running Vigil pod, the canary takes 10 % through subsets that select
exactly the stable and the canary pods behind the one Service, Jobs stay out of the mesh, the
NetworkPolicies let the canary serve and the sidecars reach the control plane; Linkerd's
annotations; the schema refuses inconsistent values; the Istio objects pass their CRD
schemas (kubernetes-models, as make check-deploy runs it) and a broken one does not."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.chart import REPO, load_chart_tool, pod_spec, require_tool, workloads

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
CHART = load_chart_tool()
CASES: dict[str, dict[str, Any]] = CHART.CASES
ISTIO_KINDS = {"PeerAuthentication", "DestinationRule", "VirtualService"}


@cache
def rendered(case: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = CHART.render(CASES[case])
    return objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    template = (
        workload["spec"].get("template") or workload["spec"]["jobTemplate"]["spec"]["template"]
    )
    labels: dict[str, str] = template["metadata"]["labels"]
    return labels


def pod_annotations(workload: dict[str, Any]) -> dict[str, str]:
    template = (
        workload["spec"].get("template") or workload["spec"]["jobTemplate"]["spec"]["template"]
    )
    annotations: dict[str, str] = template["metadata"].get("annotations", {})
    return annotations


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def long_running(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        w
        for w in workloads(objects)
        if w["kind"] == "Deployment" and w["metadata"]["labels"].get("vigil.io/role") != "datastore"
    ]


def test_without_a_mesh_nothing_of_it_is_rendered() -> None:
    objects = rendered("external")
    assert not [o for o in objects if o["kind"] in ISTIO_KINDS]
    for workload in workloads(objects):
        assert "sidecar.istio.io/inject" not in pod_labels(workload)
        assert not [a for a in pod_annotations(workload) if a.startswith("linkerd.io")]
        assert "version" not in pod_labels(workload)
    service = by_kind(objects, "Service")["vigil-api"]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api"
    assert "vigil-mesh" not in by_kind(objects, "NetworkPolicy")


def test_istio_mtls_is_strict_for_every_vigil_pod() -> None:
    objects = rendered("mesh-istio")
    auth = by_kind(objects, "PeerAuthentication")
    strict = auth["vigil"]
    assert strict["spec"]["mtls"]["mode"] == "STRICT"
    apps = long_running(objects)
    assert {w["metadata"]["name"] for w in apps} >= {
        "vigil-api",
        "vigil-api-canary",
        "vigil-scheduler",
        "vigil-worker-collect",
    }
    for workload in apps:
        labels = pod_labels(workload)
        assert selects(strict["spec"]["selector"]["matchLabels"], labels)
        assert labels["sidecar.istio.io/inject"] == "true"
    # The workers' metrics port only is PERMISSIVE (Prometheus outside the mesh), and it is the
    # port the workers serve /metrics on; still STRICT otherwise.
    metrics = auth["vigil-worker-metrics"]
    assert metrics["spec"]["mtls"]["mode"] == "STRICT"
    (port,) = metrics["spec"]["portLevelMtls"]
    assert metrics["spec"]["portLevelMtls"][port]["mode"] == "PERMISSIVE"
    for workload in apps:
        covered = selects(metrics["spec"]["selector"]["matchLabels"], pod_labels(workload))
        assert covered == workload["metadata"]["name"].startswith("vigil-worker-")
        if covered:
            (container,) = pod_spec(workload)["containers"]
            assert [p["containerPort"] for p in container["ports"]] == [int(port)]
    # Jobs stay out (a sidecar would keep them running).
    (migrate,) = [w for w in workloads(objects) if w["kind"] == "Job"]
    assert pod_labels(migrate)["sidecar.istio.io/inject"] == "false"


def test_the_canary_takes_ten_percent_of_the_api_behind_one_service() -> None:
    objects = rendered("mesh-istio")
    (virtual,) = by_kind(objects, "VirtualService").values()
    (rule,) = by_kind(objects, "DestinationRule").values()
    service = by_kind(objects, "Service")["vigil-api"]
    host = f"vigil-api.{CHART.NAMESPACE}.svc.cluster.local"
    assert rule["spec"]["host"] == host
    assert rule["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
    (route,) = virtual["spec"]["http"]
    weights = {d["destination"]["subset"]: d["weight"] for d in route["route"]}
    assert weights == {"stable": 90, "canary": 10}
    assert {d["destination"]["host"] for d in route["route"]} == {host}
    assert {d["destination"]["port"]["number"] for d in route["route"]} == {
        p["port"] for p in service["spec"]["ports"]
    }
    assert virtual["spec"]["gateways"] == ["mesh", "istio-ingress/vigil"]
    assert "vigil.example.com" in virtual["spec"]["hosts"]
    subsets = {s["name"]: s["labels"] for s in rule["spec"]["subsets"]}
    assert set(subsets) == set(weights)
    deployments = by_kind(objects, "Deployment")
    stable, canary = deployments["vigil-api"], deployments["vigil-api-canary"]
    # Each subset selects its own Deployment's pods only; the Service reaches both.
    for name, mine, other in (("stable", stable, canary), ("canary", canary, stable)):
        assert selects(subsets[name], pod_labels(mine))
        assert not selects(subsets[name], pod_labels(other))
        assert selects(service["spec"]["selector"], pod_labels(mine))
        # Deployments never claim each other's pods (nor the HPA/PDB count them).
        assert not selects(other["spec"]["selector"]["matchLabels"], pod_labels(mine))
    # The canary is the API of another image tag, otherwise the same container.
    (stable_c,) = pod_spec(stable)["containers"]
    (canary_c,) = pod_spec(canary)["containers"]
    assert canary_c["image"] == "vigil:1.1.0-rc.1"
    assert stable_c["image"] == "vigil:0.1.0"
    assert {k: v for k, v in canary_c.items() if k != "image"} == {
        k: v for k, v in stable_c.items() if k != "image"
    }
    assert canary["spec"]["replicas"] == 1
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["vigil-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "vigil-api"


def test_network_policies_let_the_canary_serve_and_sidecars_reach_istiod() -> None:
    objects = rendered("mesh-istio")
    policies = by_kind(objects, "NetworkPolicy")
    api_policy = policies["vigil-api"]["spec"]["podSelector"]["matchLabels"]
    deployments = by_kind(objects, "Deployment")
    for name in ("vigil-api", "vigil-api-canary"):
        assert selects(api_policy, pod_labels(deployments[name]))
    mesh = policies["vigil-mesh"]["spec"]
    (egress,) = mesh["egress"]
    assert egress["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "istio-system"
    }
    assert [p["port"] for p in egress["ports"]] == [15012]
    for workload in long_running(objects):
        assert selects(mesh["podSelector"]["matchLabels"], pod_labels(workload))


def test_linkerd_annotations() -> None:
    objects = rendered("mesh-linkerd")
    assert not [o for o in objects if o["kind"] in ISTIO_KINDS]
    for workload in workloads(objects):
        annotations = pod_annotations(workload)
        if workload["kind"] == "Job":
            assert annotations["linkerd.io/inject"] == "disabled"
            assert "config.linkerd.io/default-inbound-policy" not in annotations
        else:
            assert annotations["linkerd.io/inject"] == "enabled"
            assert annotations["config.linkerd.io/default-inbound-policy"] == "all-authenticated"
        assert "sidecar.istio.io/inject" not in pod_labels(workload)
    (egress,) = by_kind(objects, "NetworkPolicy")["vigil-mesh"]["spec"]["egress"]
    assert egress["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "linkerd"
    }
    assert sorted(p["port"] for p in egress["ports"]) == [8080, 8086, 8090]


def test_a_backup_job_stays_out_of_the_mesh() -> None:
    values = CASES["backup-vault"] | {"mesh": {"provider": "linkerd"}}
    (cron,) = [w for w in CHART.render(values) if w["kind"] == "CronJob"]
    assert pod_annotations(cron)["linkerd.io/inject"] == "disabled"
    values = CASES["backup-vault"] | {"mesh": {"provider": "istio"}}
    (cron,) = [w for w in CHART.render(values) if w["kind"] == "CronJob"]
    assert pod_labels(cron)["sidecar.istio.io/inject"] == "false"


BAD_MESH: dict[str, dict[str, Any]] = {
    "unknown provider": {"provider": "consul"},
    "canary without a tag": {"provider": "istio", "istio": {"canary": {"enabled": True}}},
    "canary with linkerd": {
        "provider": "linkerd",
        "istio": {"canary": {"enabled": True, "tag": "1.2.0"}},
    },
    "canary weight 100": {
        "provider": "istio",
        "istio": {"canary": {"enabled": True, "tag": "1.2.0", "weight": 100}},
    },
    "unknown linkerd policy": {"provider": "linkerd", "linkerd": {"defaultInboundPolicy": "open"}},
}


@pytest.mark.parametrize("name", sorted(BAD_MESH))
def test_the_schema_rejects_inconsistent_mesh_values(name: str) -> None:
    with pytest.raises(helm.HelmValuesError):
        CHART.render(CASES["external"] | {"mesh": BAD_MESH[name]})


def test_istio_objects_pass_their_crd_schemas(tmp_path: Path) -> None:
    node = require_tool("node", "Debian/NodeSource nodejs")
    validator = REPO / "deploy/tools/crds/validate.mjs"
    if not (REPO / "deploy/tools/crds/node_modules/@kubernetes-models/istio").exists():
        pytest.fail("run `make install` (npm ci in deploy/tools/crds)")
    objects = [o for o in rendered("mesh-istio") if o["kind"] in ISTIO_KINDS]
    good = tmp_path / "good.yaml"
    good.write_text(CHART.dump(objects))
    done = subprocess.run(
        [node, str(validator), str(good)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(objects)} valid, 0 invalid" in done.stdout
    broken = [dict(o) for o in objects if o["kind"] == "VirtualService"]
    broken[0] = broken[0] | {
        "spec": broken[0]["spec"] | {"http": [{"route": [{"destination": {}, "weight": "10"}]}]}
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text(CHART.dump(broken))
    done = subprocess.run(
        [node, str(validator), str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "VirtualService" in done.stderr
