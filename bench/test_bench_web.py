"""Server time of the web UI's pages, full and as HTMX partials (``HX-Request: true``, what
the pickers and the auto-refresh ask for), with the full NBP history loaded, on SQLite and
PostgreSQL. Budgets (issue #6): a full page < 100 ms, a partial < 30 ms.

    .venv/bin/python -m pytest bench/test_bench_web.py -p no:cacheprovider --benchmark-only

Per backend, one database is filled once (untimed) by ``markets.backfill`` from the fake
NBP server (a subprocess; the pages compute MACD and bands themselves), then two crypto
assets are added through the API from a local fake CoinGecko with a day of five-minute
prices. Each request goes through FastAPI's TestClient in this process: the time is the app's whole
handling of the request (routing, middleware, the page's queries, analytics, template and
chart JSON), without a socket. Pages that do not exist yet (404) are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pytest_benchmark.fixture import BenchmarkFixture
from tests.fakes.coingecko_server import FakeCoinGecko

from _support import (
    PG_ADMIN_DSN,
    empty_database_url,
    fake_nbp_process,
    postgres_available,
    warm_up,
)
from vigil.core.api import create_app
from vigil.core.runtime import Runtime
from vigil.settings import Settings

BACKENDS = ["sqlite", "postgresql"]
ROUNDS = 15
PAGE_BUDGET_MS = 100.0
PARTIAL_BUDGET_MS = 30.0
PAGES = {
    "dashboard 1y": "/markets/dashboard?code=USD&range=1y",
    "dashboard all": "/markets/dashboard?code=USD&range=all",
    "gold 1y": "/markets/gold?range=1y",
    "miner": "/markets/miner",
    "crypto": "/markets/crypto",
}
ADMIN = {"email": "bench@example.org", "password": "benchmark admin password"}


@pytest.fixture(scope="module")
def nbp_url() -> Iterator[str]:
    with fake_nbp_process() as url:
        warm_up(url)
        yield url


@pytest.fixture(scope="module")
def coingecko() -> Iterator[FakeCoinGecko]:
    now = int(time.time())
    start = now - 24 * 3600
    chart = [((start + 300 * i) * 1000, f"{64000 + (i % 48) * 25}.5") for i in range(288)]
    eth = [((start + 300 * i) * 1000, f"{3100 + (i % 24) * 3}.25") for i in range(288)]
    with FakeCoinGecko(
        {"bitcoin": {"usd": "64000.5"}, "ethereum": {"usd": "3100.25"}},
        last_updated_at=now - 30,
        charts={"bitcoin": chart, "ethereum": eth},
    ) as fake:
        yield fake


@dataclass(frozen=True)
class Site:
    backend: str
    client: TestClient


@pytest.fixture(scope="module", params=BACKENDS)
def site(
    request: pytest.FixtureRequest,
    nbp_url: str,
    coingecko: FakeCoinGecko,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    backend: str = request.param
    if backend == "postgresql" and (why := postgres_available()):
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp(f"web_{backend}")
    url, pg_name = empty_database_url(backend, tmp, "web.db")
    settings = Settings(
        database_url=url,
        data_dir=tmp,
        nbp_base_url=nbp_url,
        coingecko_base_url=coingecko.base_url,
        rate_limit="",
        cache_ttl=0,
        argon2_time_cost=1,
        argon2_memory_kib=8,
        argon2_parallelism=1,
        jwt_secret="benchmark-signing-key-that-is-at-least-32-bytes",
    )
    runtime = Runtime.create(settings)
    try:
        runtime.migrate()
        run = runtime.runner.run("markets.backfill")
        assert run.status == "ok", f"backfill: {run.status} {run.error or run.message}"
        with TestClient(create_app(runtime)) as test_client:
            _add_crypto_assets(test_client)
            test_client.headers.pop("Authorization", None)  # the pages are read anonymously
            yield Site(backend, test_client)
    finally:
        runtime.close()
        if pg_name:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _add_crypto_assets(client: TestClient) -> None:
    client.post("/api/v1/auth/register", json=ADMIN)
    token = client.post(
        "/api/v1/auth/token", data={"username": ADMIN["email"], "password": ADMIN["password"]}
    )
    if token.status_code == 200:
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    for symbol, ref in (("BTC", "bitcoin"), ("ETH", "ethereum")):
        body = {"symbol": symbol, "source": "coingecko", "source_ref": ref, "quote": "usd"}
        answer = client.post("/api/v1/markets/assets", json=body)
        assert answer.status_code == 201, f"adding {symbol}: {answer.status_code} {answer.text}"


@pytest.mark.parametrize("partial", [False, True], ids=["page", "partial"])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_server_time(
    benchmark: BenchmarkFixture,
    site: Site,
    name: str,
    partial: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = PAGES[name]
    headers = {"accept": "text/html"} | ({"HX-Request": "true"} if partial else {})
    client = site.client
    first = client.get(path, headers=headers)
    if first.status_code == 404:
        pytest.skip(f"{path} does not exist yet")
    assert first.status_code == 200, f"{path}: {first.status_code} {first.text[:300]}"
    if partial:
        assert "<html" not in first.text, f"{path} answered a whole page to HTMX"
    size = len(first.content)

    def get() -> Any:
        return client.get(path, headers=headers)

    backend = site.backend
    kind = "partial" if partial else "page"
    budget = PARTIAL_BUDGET_MS if partial else PAGE_BUDGET_MS
    benchmark.group = f"web {kind}s, {backend}"
    benchmark.pedantic(get, rounds=ROUNDS, iterations=1, warmup_rounds=2)  # type: ignore[no-untyped-call]
    stats: Any = benchmark.stats.stats  # type: ignore[union-attr]
    mean_ms, low_ms, high_ms = stats.mean * 1000, stats.min * 1000, stats.max * 1000
    median_ms = stats.median * 1000
    verdict = "met" if median_ms < budget else "MISSED"
    benchmark.extra_info.update(bytes=size, budget_ms=budget, budget_met=median_ms < budget)
    with capsys.disabled():
        print(
            f"\n[bench] {kind} {name} {backend}: median {median_ms:.1f} ms (mean {mean_ms:.1f},"
            f" min {low_ms:.1f}, max {high_ms:.1f}, {stats.rounds} rounds), {size:,} bytes;"
            f" budget < {budget:g} ms {verdict}"
        )
