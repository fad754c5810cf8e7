"""A real Prometheus (Debian's package) scrapes a real `vigil api` and a real `vigil worker`:
both targets are up, and their counters grow as requests are served and jobs run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import service_unavailable
from tests.e2e.conftest import (
    Backend,
    FakeNbpProcess,
    StartVigil,
    free_port,
    stop_process,
    tail,
    wait_for,
)
from tests.support.redis_server import PrivateRedis
from vigil.core.runtime import Runtime
from vigil.settings import Settings

pytestmark = pytest.mark.e2e


class Prometheus:
    def __init__(self, tmp: Path, targets: dict[str, str]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            service_unavailable("prometheus is not installed (Debian package prometheus)")
        jobs = "".join(
            f"  - job_name: {name}\n    static_configs:\n      - targets: ['{target}']\n"
            for name, target in targets.items()
        )
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" + jobs
        )
        self.port = free_port()
        self.log = tmp / "prometheus.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    def get(self, path: str, **params: Any) -> Any:
        try:
            response = self.http.get(path, params=params)
        except httpx.TransportError:
            return None
        return response.json()["data"] if response.status_code == 200 else None

    def targets_up(self) -> dict[str, str]:
        data = self.get("/api/v1/targets") or {"activeTargets": []}
        return {t["labels"]["job"]: t["health"] for t in data["activeTargets"]}

    def value(self, query: str) -> float | None:
        data = self.get("/api/v1/query", query=query)
        if not data or not data["result"]:
            return None
        return float(data["result"][0]["value"][1])

    def close(self) -> None:
        self.http.close()
        stop_process(self.proc)


def test_prometheus_scrapes_the_api_and_the_worker(
    private_redis: PrivateRedis,
    start_fake_nbp: Any,
    start_vigil: StartVigil,
    tmp_path: Path,
) -> None:
    path = (tmp_path / "db" / "vigil.db").as_posix()
    backend = Backend("sqlite", env_url=f"sqlite:///{path}", sqlalchemy_url=f"sqlite:///{path}")
    nbp: FakeNbpProcess = start_fake_nbp(delay=0.0)
    worker_port = free_port()
    env = {
        "VIGIL_REDIS_URL": private_redis.url,
        "VIGIL_NBP_CURRENCY_START": "2026-10-01",
        "VIGIL_NBP_GOLD_START": "2026-10-01",
    }
    api = start_vigil(backend, nbp, ("api",), env)
    api.wait_ready()
    worker = start_vigil(backend, nbp, ("worker", "--metrics-port", str(worker_port)), env)
    api_target = api.base_url.removeprefix("http://")
    prometheus = Prometheus(
        tmp_path, {"vigil-api": api_target, "vigil-worker": f"127.0.0.1:{worker_port}"}
    )
    try:
        wait_for(
            lambda: (
                True
                if prometheus.targets_up() == {"vigil-api": "up", "vigil-worker": "up"}
                else None
            ),
            timeout=60,
            what="Prometheus to see both targets up",
            diagnostics=lambda: (
                f"{prometheus.targets_up()}\n{tail(prometheus.log)}\n" + worker.diagnostics()
            ),
        )

        # The API's request counter grows as it serves.
        query = 'sum(vigil_http_requests_total{route="/api/v1/markets/sources"})'
        for _ in range(5):
            assert api.client.get("/api/v1/markets/sources").status_code == 200
        first = wait_for(
            lambda: prometheus.value(query), timeout=30, what="the API counter in Prometheus"
        )
        for _ in range(7):
            api.client.get("/api/v1/markets/sources")
        wait_for(
            lambda: True if (prometheus.value(query) or 0) >= first + 7 else None,
            timeout=30,
            what="the API counter to grow by 7",
        )

        # The worker's job counter and the source's last success appear once it runs a job.
        sender = Runtime.create(
            Settings(database_url=backend.env_url, redis_url=private_redis.url), role="api"
        )
        sender.dispatch.enqueue("markets.backfill", {})
        sender.close()
        runs = 'vigil_jobs_runs_total{job_type="markets.backfill",status="ok"}'
        wait_for(
            lambda: True if (prometheus.value(runs) or 0) >= 1 else None,
            timeout=60,
            what="the worker's backfill run in Prometheus",
            diagnostics=worker.diagnostics,
        )
        last_ok = prometheus.value(
            'vigil_markets_source_last_success_timestamp_seconds{source="nbp"}'
        )
        assert last_ok is not None
        assert last_ok > 0
    finally:
        prometheus.close()
