"""Issue #5's ingest target: "One ingest tick for 250 assets (parse + upsert): target
< 200 ms", on SQLite and PostgreSQL.

    .venv/bin/python -m pytest bench/test_bench_crypto_tick.py -p no:cacheprovider --benchmark-only

Setup (untimed): a new migrated database with 250 crypto assets. Timed, one round per tick:
parse a ``/simple/price`` answer for the 250 ids (the JSON text as CoinGecko sends it,
``json.loads`` with Decimal prices, :func:`parse_simple_price`), turn it into price rows
(:func:`fetch_tick`'s mapping) and upsert them in one write transaction
(:func:`store_tick`). Every round has a new ``last_updated_at``, so every round inserts 250
new rows into a growing table. The HTTP request itself is not timed (on loopback it is the
fake server's time, not ours).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from _support import FreshDatabases, postgres_available
from vigil.core.runtime import Runtime
from vigil.markets import crypto
from vigil.markets.models import Asset
from vigil.markets.sources.coingecko import parse_simple_price

ASSETS = 250
ROUNDS = 30
TARGET_SECONDS = 0.200


@pytest.fixture(params=["sqlite", "postgresql"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "postgresql" and (why := postgres_available()):
        pytest.skip(why)
    dbs = FreshDatabases(request.param, "http://127.0.0.1:9/api")
    try:
        runtime = dbs.new()
        with runtime.db.session(write=True) as session:
            for i in range(ASSETS):
                session.add(
                    Asset(
                        code=f"C{i:03d}",
                        name=f"coin-{i}",
                        kind="crypto",
                        source="coingecko",
                        quote="USD",
                        source_ref=f"coin-{i}",
                    )
                )
        yield runtime
    finally:
        dbs.close()


STAMPS = range(1_764_000_000, 1_764_000_000 + 60 * (ROUNDS + 5), 60)  # one a minute


def answer(stamp: int) -> str:
    """A /simple/price body for every coin, as CoinGecko writes it (prices as JSON numbers)."""
    coins = {}
    for i in range(ASSETS):
        price = round(1000 + i * 1.37 + stamp % 97 / 100, 2)
        coins[f"coin-{i}"] = {"usd": price, "last_updated_at": stamp}
    return json.dumps(coins)


def test_crypto_tick_250_assets(benchmark: BenchmarkFixture, runtime: Runtime) -> None:
    with runtime.db.session() as session:
        tracked = crypto.tracked_assets(session)
    refs = [a.ref for a in tracked]
    rounds = iter([answer(stamp) for stamp in STAMPS])

    def tick() -> int:
        payload = json.loads(next(rounds), parse_float=Decimal)
        spots = parse_simple_price(payload, refs, "usd")
        rows = crypto.tick_of(spots, tracked, datetime.now(UTC))
        with runtime.db.session(write=True) as session:
            return crypto.store_tick(session, rows)

    stored = benchmark.pedantic(tick, rounds=ROUNDS, iterations=1, warmup_rounds=2)
    assert stored == ASSETS
    stats = benchmark.stats.stats
    p95 = sorted(benchmark.stats.stats.data)[int(0.95 * (len(stats.data) - 1))]
    verdict = "met" if p95 < TARGET_SECONDS else "MISSED"
    print(
        f"\n[bench] crypto tick, {ASSETS} assets ({runtime.db.dialect}): mean "
        f"{stats.mean * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {stats.max * 1000:.1f} ms; "
        f"target < {TARGET_SECONDS * 1000:.0f} ms {verdict}"
    )
