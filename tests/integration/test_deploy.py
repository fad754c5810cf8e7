"""The deploy files describe processes this code really runs: every compose service's command
and the image's default command are valid `vigil` invocations, and Prometheus scrapes the
ports those services serve. (No container engine here: the files themselves are linted by
`make check-deploy`; end-to-end tests run the same commands as real processes.)"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
VIGIL_SERVICES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if service.get("image") == "vigil:latest"
}


def vigil_help(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_runs_every_role_of_the_one_image() -> None:
    commands = {name: s["command"][0] for name, s in VIGIL_SERVICES.items()}
    assert commands == {
        "migrate": "migrate",
        "api": "api",
        "worker": "worker",
        "scheduler": "scheduler",
    }


@pytest.mark.parametrize("name", sorted(VIGIL_SERVICES))
def test_each_service_command_is_a_valid_vigil_invocation(name: str) -> None:
    done = vigil_help(VIGIL_SERVICES[name]["command"])
    assert done.returncode == 0, done.stderr


def test_the_image_default_command_is_valid() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    entry = re.search(r'^ENTRYPOINT \["vigil"\]$', dockerfile, re.MULTILINE)
    cmd = re.search(r"^CMD \[(.*)\]$", dockerfile, re.MULTILINE)
    assert entry is not None
    assert cmd is not None
    args = [a.strip().strip('"') for a in cmd.group(1).split(",")]
    assert vigil_help(args).returncode == 0


def test_prometheus_scrapes_the_ports_the_services_serve() -> None:
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    assert targets == {"vigil-api": "api:8000", "vigil-worker": "worker:8001"}
    worker = VIGIL_SERVICES["worker"]["command"]
    assert worker[worker.index("--metrics-port") + 1] == "8001"
    assert "8000:8000" in VIGIL_SERVICES["api"]["ports"]


def test_databases_stay_inside_the_compose_network() -> None:
    for name in ("postgres", "redis"):
        assert "ports" not in COMPOSE["services"][name], f"{name} is published"
        assert "healthcheck" in COMPOSE["services"][name]


def test_the_image_builds_the_web_assets_from_the_lockfile() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY package.json package-lock.json ./" in dockerfile
    assert "npm ci" in dockerfile
    assert "src/vigil/core/web/assets.py /tmp/node_modules" in dockerfile
    makefile = (DEPLOY.parent / "Makefile").read_text()
    assert "npm ci" in makefile  # the same two steps as `make install`
    assert "-m vigil.core.web.assets node_modules" in makefile


def test_the_package_ships_every_template_and_static_file() -> None:
    # A wheel (the image installs one) holds only what package-data names: a page whose
    # template or script is missing would fail only in the container.
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["vigil"]
    package = DEPLOY.parent / "src" / "vigil"
    files = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file()
        and ("templates" in p.parts or "static" in p.parts)
        and not p.name.startswith(".")
    ]
    assert any("/vendor/" in f for f in files), "run `make install` first"
    unshipped = [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)]
    assert unshipped == []
