"""What the Helm chart starts, run for real without containers: each Vigil container of the
rendered chart (its args and env exactly, the mounted paths mapped to temporary directories,
the listen ports to free ones, the host to loopback) against a throwaway PostgreSQL database
and a private Redis. The migrations Job brings the schema to head, then the API answers its
startup, liveness and readiness probes, each worker its probes on its metrics port, and the
scheduler keeps running; every role logs JSON lines (the chart's config) and reads its secrets
from the mounted files."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from tests.e2e.conftest import Backend, free_port, stop_process, tail, vigil_command, wait_for
from tests.support.chart import load_chart_tool, pod_spec, vigil_containers
from tests.support.redis_server import PrivateRedis
from vigil.core.migrate import current_revision, head_revision

pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
pytestmark = pytest.mark.e2e

CHART = load_chart_tool()
#: What the image sets (deploy/Dockerfile ENV), but for the host: loopback here.
IMAGE_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "VIGIL_HOST": "127.0.0.1"}
#: Test-only: nothing scheduled at start, and no real outside service ever asked.
TEST_ENV = {
    "VIGIL_RUN_JOBS_ON_START": "false",
    "VIGIL_NBP_BASE_URL": "http://127.0.0.1:9/api",
    "VIGIL_COINGECKO_BASE_URL": "http://127.0.0.1:9/api/v3",
}


class Role:
    """One container of the chart, as a local process."""

    def __init__(self, workload: dict[str, Any], container: dict[str, Any], root: Path) -> None:
        self.name = workload["metadata"]["name"]
        self.container = container
        self.dirs = root / self.name
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        self.mounts: dict[str, Path] = {}
        for mount in container["volumeMounts"]:
            local = self.dirs / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            self.mounts[mount["mountPath"]] = local
            if "secret" in volumes[mount["name"]]:
                self.secret_dir = local
        self.ports: dict[int, int] = {}  # container port → local port
        self.args = self._local_args(container["args"])
        self.stderr = self.dirs / "stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _local_args(self, args: list[str]) -> list[str]:
        local = list(args)
        for flag in ("--port", "--metrics-port"):
            if flag in local:
                i = local.index(flag) + 1
                self.ports[int(local[i])] = free_port()
                local[i] = str(self.ports[int(local[i])])
        if "--host" in local:
            local[local.index("--host") + 1] = "127.0.0.1"
        return local

    def _path(self, value: str) -> str:
        for mount_path, local in self.mounts.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                return str(local) + value[len(mount_path) :]
        return value

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env |= IMAGE_ENV
        for item in self.container["env"]:
            assert "valueFrom" not in item, item  # everything is a value or a mounted file
            env[item["name"]] = self._path(item["value"])
        return env | TEST_ENV

    def write_secrets(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            (self.secret_dir / key).write_text(value + "\n")

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*vigil_command(), *self.args],
            env=self.env(),
            cwd=self.dirs,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        with self.stderr.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [*vigil_command(), *self.args],
                env=self.env(),
                cwd=self.dirs,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def diagnostics(self) -> str:
        state = "running" if self.alive() else f"exited {self.proc and self.proc.returncode}"
        return f"{self.name} ({state}):\n{tail(self.stderr)}"

    def probe_urls(self) -> dict[str, str]:
        """Each probe of the container as a local URL."""
        urls = {}
        named = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in self.container:
                get = self.container[kind]["httpGet"]
                port = named.get(get["port"], get["port"])
                urls[kind] = f"http://127.0.0.1:{self.ports[port]}{get['path']}"
        return urls

    def wait_probes(self) -> None:
        for kind, url in self.probe_urls().items():

            def ok(url: str = url) -> bool | None:
                assert self.alive(), self.diagnostics()
                try:
                    return True if httpx.get(url, timeout=2).status_code == 200 else None
                except httpx.TransportError:
                    return None

            wait_for(ok, timeout=60, what=f"{self.name} {kind} {url}", diagnostics=self.diagnostics)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = [line for line in self.stderr.read_text().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]


def test_the_charts_roles_run_and_answer_their_probes(
    postgres: Backend, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    objects = CHART.render(CHART.CASES["external"])
    roles = [Role(w, c, tmp_path) for w, c in vigil_containers(objects)]
    by_command = {role.args[0]: role for role in roles if role.args[0] != "worker"}
    workers = [role for role in roles if role.args[0] == "worker"]
    assert set(by_command) == {"migrate", "api", "scheduler"}
    assert len(workers) == 2
    for role in roles:
        role.write_secrets(
            {
                "jwt-secret": secrets.token_urlsafe(48),
                "database-url": postgres.env_url,
                "redis-url": private_redis.url,
            }
        )

    # The migrations Job first (the hook), on an empty database.
    engine = create_engine(postgres.sqlalchemy_url)
    assert current_revision(engine) is None
    done = by_command["migrate"].run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert current_revision(engine) == head_revision()
    engine.dispose()

    running = [by_command["api"], *workers, by_command["scheduler"]]
    try:
        # The API alone first: on a 2-core machine, its uvicorn workers importing beside four
        # other starting processes miss uvicorn's 5 s child health check and are restarted.
        by_command["api"].start()
        by_command["api"].wait_probes()
        for role in running[1:]:
            role.start()
        for role in running[1:]:
            role.wait_probes()
        assert set(by_command["api"].probe_urls()) == {
            "startupProbe",
            "livenessProbe",
            "readinessProbe",
        }
        assert all(len(w.probe_urls()) == 2 for w in workers)
        assert by_command["scheduler"].alive(), by_command["scheduler"].diagnostics()
        # `vigil api --workers 2` keeps its metrics files under TMPDIR: the /tmp emptyDir.
        api_tmp = by_command["api"].mounts["/tmp"]
        assert list(api_tmp.glob("vigil-api-metrics-*")), "no metrics dir under the /tmp mount"
    finally:
        for role in running:
            if role.proc is not None:
                stop_process(role.proc)
    for role in running:
        records = role.log_lines()  # VIGIL_LOG_FORMAT=json from the chart's config
        assert records, role.name
        assert all(r["level"] in {"debug", "info", "warning"} for r in records), role.diagnostics()
