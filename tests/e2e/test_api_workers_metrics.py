"""``vigil api --workers 2`` as a real process: one scrape of /metrics reports the requests of
both worker processes (Prometheus multiprocess mode), and the private directory the workers
write their samples to is gone once the API stops."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Backend, FakeNbpProcess, StartVigil, VigilProcess, wait_for

pytestmark = pytest.mark.e2e

ROUTES = ("/health", "/api/v1/markets/sources")
ROUND = 10  # requests per route per round
MAX_ROUNDS = 20  # until both workers have served some (each round is a few hundred ms)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Backend]:
    path = (tmp_path / "db" / "vigil.db").as_posix()
    backend = Backend("sqlite", env_url=f"sqlite:///{path}", sqlalchemy_url=f"sqlite:///{path}")
    try:
        yield backend
    finally:
        backend.dispose()


def fresh_get(api: VigilProcess, path: str) -> httpx.Response:
    """One request on a connection of its own (a new client, ``Connection: close``), so the
    kernel hands each one to whichever worker accepts it."""
    with httpx.Client(base_url=api.base_url, timeout=10.0) as client:
        return client.get(path, headers={"Connection": "close"})


def requests_counted(text: str) -> dict[str, float]:
    """``vigil_http_requests_total`` of GET ... 200 for each of ROUTES, from one scrape."""
    counts = dict.fromkeys(ROUTES, 0.0)
    for family in text_string_to_metric_families(text):
        if family.name != "vigil_http_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "vigil_http_requests_total"
                and labels.get("route") in counts
                and labels.get("method") == "GET"
                and labels.get("status") == "200"
            ):
                counts[labels["route"]] += sample.value
    return counts


def counter_pids(metrics_dir: Path) -> set[str]:
    """The processes that have counted something: each writes ``counter_<pid>.db``."""
    return {f.stem.removeprefix("counter_") for f in metrics_dir.glob("counter_*.db")}


def test_one_scrape_sums_the_requests_of_every_worker(
    tmp_path: Path,
    sqlite: Backend,
    start_fake_nbp: Callable[..., FakeNbpProcess],
    start_vigil: StartVigil,
) -> None:
    nbp = start_fake_nbp(0)
    temp = tmp_path / "tmp"  # the API's TMPDIR: where its private metrics directory goes
    temp.mkdir()
    api = start_vigil(
        sqlite,
        nbp,
        ("api", "--workers", "2"),
        {"TMPDIR": str(temp), "VIGIL_RATE_LIMIT": ""},
    )
    api.wait_ready()

    dirs = list(temp.glob("vigil-api-metrics-*"))
    assert len(dirs) == 1, f"expected one multiprocess directory in {temp}, found {dirs}"
    metrics_dir = dirs[0]

    sent = dict.fromkeys(ROUTES, 0)
    for _ in range(MAX_ROUNDS):
        for _ in range(ROUND):
            for route in ROUTES:
                response = fresh_get(api, route)
                assert response.status_code == 200, f"GET {route}: {response.status_code}"
                sent[route] += 1
        if len(counter_pids(metrics_dir)) >= 2:
            break
    # Otherwise one worker's share would be all of it and the test would prove nothing.
    assert len(counter_pids(metrics_dir)) == 2, (
        f"after {sent} requests on new connections, only {counter_pids(metrics_dir)} served"
        f"\n{api.diagnostics()}"
    )

    # Every scrape, whichever worker answers it, reports the total over both processes.
    for _ in range(6):
        response = fresh_get(api, "/metrics")
        assert response.status_code == 200
        assert requests_counted(response.text) == {route: float(n) for route, n in sent.items()}

    assert api.terminate() == 0, api.diagnostics()
    wait_for(
        lambda: True if not metrics_dir.exists() else None,
        timeout=5.0,
        what=f"{metrics_dir} to be removed after SIGTERM",
        diagnostics=api.diagnostics,
    )
    assert list(temp.iterdir()) == []
