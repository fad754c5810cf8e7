"""Where one GET /api/v1/markets/rates?code=USD&limit=10000 spends its time, in-process:
the whole request through the ASGI app (Starlette's TestClient, no network), then the steps
of the handler run one by one in this thread (the text-row query, building the item dicts,
``orjson.dumps`` of the page), and optionally a cProfile of those steps (the app itself runs
the handler in a worker thread, which cProfile would not see).

    .venv/bin/python bench/profile_rates.py [--backend sqlite|postgresql] [--cprofile N]

Loads the full history from the fake NBP server (a subprocess) into a new database first.
The API's response cache is switched off (``VIGIL_CACHE_TTL=0``): every request is served.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient

from _support import FreshDatabases, fake_nbp_process, postgres_available, warm_up
from vigil.core.api import create_app
from vigil.core.runtime import Runtime
from vigil.markets import service
from vigil.markets.api import _price_page
from vigil.markets.sources import SeriesKind

PATH = "/api/v1/markets/rates?code=USD&limit=10000"


def _timings(func: Callable[[], object], count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        func()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _line(label: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (
        f"  {label:44} median {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  ({len(ms)} calls)"
    )


def measure(runtime: Runtime, requests: int, top: int) -> None:
    client = TestClient(create_app(runtime))
    response = client.get(PATH)
    response.raise_for_status()
    rows = len(response.json()["items"])
    cache = response.headers.get("x-cache", "none")
    print(f"{PATH}: {rows} rows, {len(response.content) / 1024:.0f} KiB (X-Cache: {cache})")

    with runtime.db.session() as session:
        usd = service.get_asset(session, "USD", SeriesKind.CURRENCY).id

    def request() -> None:
        reply = client.get(PATH)
        reply.raise_for_status()
        assert reply.headers.get("x-cache") != "hit", "the response cache answered"

    def query() -> None:
        with runtime.db.session() as session:
            service.get_asset(session, "USD", SeriesKind.CURRENCY)
            service.price_items_json(session, [usd], None, None, 10_000, 0, "rate_mid")

    def count() -> None:
        with runtime.db.session() as session:
            service.price_items_json(session, [usd], None, None, 0, 0, "rate_mid")

    def handler() -> None:
        with runtime.db.session() as session:
            _price_page(session, [usd], None, None, 10_000, 0, "rate_mid")

    print(_line("whole request (ASGI app, in-process)", _timings(request, requests)))
    print(_line("handler's page (_price_page) in this thread", _timings(handler, requests)))
    print(_line("  session + get_asset + price_items_json", _timings(query, requests)))
    print(_line("  session + the count alone (limit 0)", _timings(count, requests)))
    client.close()

    if top:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(10):
            handler()
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        print(f"cProfile of 10 x the handler steps on {runtime.db.dialect}:")
        print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=30, help="timed requests (default 30)")
    parser.add_argument("--cprofile", type=int, default=25, help="top N functions (0: no)")
    args = parser.parse_args(argv)
    if args.backend == "postgresql" and (why := postgres_available()):
        print(why, file=sys.stderr)
        return 1

    os.environ["VIGIL_CACHE_TTL"] = "0"  # measure the serving path, not cache hits
    with fake_nbp_process() as url:
        warm_up(url)
        dbs = FreshDatabases(args.backend, url)
        try:
            runtime = dbs.new()
            run = runtime.runner.run("markets.backfill")
            print(f"loaded {run.rows_written} rows into {args.backend}")
            measure(runtime, args.requests, args.cprofile)
        finally:
            dbs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
