"""deploy/k3d/up.sh and down.sh (`make k3d-up` / `make k3d-down`) cannot run here (no Docker,
k3d or cluster): shellcheck lints them, and they are run against stand-in commands that log
their arguments, so the order of the steps, the image, the values file and the overlay they
use are checked; a missing tool stops them with a clear message before anything is done."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.chart import REPO, load_chart_tool, require_tool

K3D = REPO / "deploy" / "k3d"
TOOLS = ("docker", "k3d", "kubectl", "helm")


def stand_ins(tmp: Path, tools: tuple[str, ...], *, cluster_exists: bool = False) -> Path:
    """A bin directory of fake commands that append their argv to tmp/calls.log."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for tool in tools:
        script = bin_dir / tool
        fail_get = tool == "k3d" and not cluster_exists
        script.write_text(
            "#!/bin/sh\n"
            f'echo "{tool} $*" >> "{tmp}/calls.log"\n'
            # `k3d cluster get` answers whether the cluster exists.
            + ('[ "$1 $2" = "cluster get" ] && exit 1\n' if fail_get else "")
            + "exit 0\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def run(script: str, tmp: Path, bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # Only the stand-ins and the basic utilities the script needs (no real docker/kubectl).
    base = tmp / "base"
    base.mkdir(exist_ok=True)
    for name in ("bash", "sh", "dirname", "cat", "env"):
        target = base / name
        if not target.exists():
            target.symlink_to(require_tool(name, "coreutils"))
    return subprocess.run(
        [str(K3D / script)],
        env={"PATH": f"{bin_dir}:{base}", "HOME": str(tmp), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(tmp: Path) -> list[str]:
    log = tmp / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_the_scripts_pass_shellcheck() -> None:
    shellcheck = require_tool("shellcheck", "Debian package shellcheck")
    done = subprocess.run(
        [shellcheck, "-x", *map(str, sorted(K3D.glob("*.sh")))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for script in K3D.glob("*.sh"):
        assert os.access(script, os.X_OK), script


def test_up_with_helm_creates_builds_imports_installs_and_waits(tmp_path: Path) -> None:
    done = run("up.sh", tmp_path, stand_ins(tmp_path, TOOLS))
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [" ".join(c.split()[:3]) for c in calls(tmp_path)]
    assert steps == [
        "k3d cluster get",
        "k3d cluster create",
        "kubectl config use-context",
        "docker build -f",
        "k3d image import",
        "helm upgrade --install",
        "kubectl -n vigil-dev",
    ]
    log = calls(tmp_path)
    assert "-p 8080:80@loadbalancer" in log[1]
    assert "-t vigil:dev ." in log[3]
    helm = log[5].split()
    assert helm[helm.index("-n") + 1] == "vigil-dev"
    values = helm[helm.index("-f") + 1]
    assert values == "deploy/k3d/values-dev.yaml"
    assert (REPO / values).exists()
    assert "--wait" not in helm  # the API is ready only after the post-install migrations
    assert log[6].endswith("rollout status deployment/vigil-api --timeout=300s")
    assert "http://vigil.localhost:8080/" in done.stdout


def test_up_without_helm_applies_the_dev_overlay(tmp_path: Path) -> None:
    bin_dir = stand_ins(tmp_path, ("docker", "k3d", "kubectl"), cluster_exists=True)
    done = run("up.sh", tmp_path, bin_dir, K3D_HTTP_PORT="9090", K3D_CLUSTER="mine")
    assert done.returncode == 0, done.stdout + done.stderr
    log = calls(tmp_path)
    assert not [c for c in log if c.startswith("k3d cluster create")]  # reused
    assert "kubectl config use-context k3d-mine" in log
    assert "k3d image import vigil:dev -c mine" in log
    assert "kubectl apply -k deploy/kustomize/overlays/dev" in log
    assert (REPO / "deploy/kustomize/overlays/dev/kustomization.yaml").exists()
    assert any("wait --for=condition=complete job/vigil-migrate" in c for c in log)
    assert "http://vigil.localhost:9090/" in done.stdout


@pytest.mark.parametrize("missing", ["docker", "k3d", "kubectl"])
def test_a_missing_tool_stops_before_anything_is_done(tmp_path: Path, missing: str) -> None:
    bin_dir = stand_ins(tmp_path, tuple(t for t in TOOLS if t != missing))
    done = run("up.sh", tmp_path, bin_dir)
    assert done.returncode == 1
    assert f"'{missing}' is not installed" in done.stderr
    assert calls(tmp_path) == []


def test_helm_asked_for_but_missing_and_a_bad_mode(tmp_path: Path) -> None:
    bin_dir = stand_ins(tmp_path, ("docker", "k3d", "kubectl"))
    done = run("up.sh", tmp_path, bin_dir, VIGIL_K3D_INSTALL="helm")
    assert done.returncode == 1
    assert "'helm' is not installed" in done.stderr
    done = run("up.sh", tmp_path, bin_dir, VIGIL_K3D_INSTALL="argo")
    assert done.returncode == 2
    assert calls(tmp_path) == []


def test_down_deletes_the_cluster(tmp_path: Path) -> None:
    done = run("down.sh", tmp_path, stand_ins(tmp_path, ("k3d",)), K3D_CLUSTER="mine")
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == ["k3d cluster delete mine"]


def test_the_dev_values_render_what_the_dev_overlay_runs() -> None:
    pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
    chart = load_chart_tool()
    objects = chart.render(chart.CASES["k3d-dev"])
    kinds = {o["kind"] for o in objects}
    assert "HorizontalPodAutoscaler" not in kinds
    assert "PodDisruptionBudget" not in kinds
    (ingress,) = [o for o in objects if o["kind"] == "Ingress"]
    assert ingress["spec"]["rules"][0]["host"] == "vigil.localhost"
    images = {
        c["image"]
        for o in objects
        if o["kind"] in {"Deployment", "Job"}
        and o["metadata"]["labels"].get("vigil.io/role") != "datastore"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"vigil:dev"}
    # The same credentials as the dev overlay's Secret, so both paths reach the same stores.
    overlay = (REPO / "deploy/kustomize/overlays/dev/kustomization.yaml").read_text()
    assert "postgresql://vigil:dev-password@vigil-postgresql:5432/vigil" in overlay
    assert chart.CASES["k3d-dev"]["postgresql"]["auth"]["password"] == "dev-password"
