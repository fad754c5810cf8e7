"""Where a price dashboard's server time goes: loads the full NBP history (fake NBP
subprocess, ``markets.backfill``) into a fresh database, times whole requests through
FastAPI's TestClient (``--path``, ``--partial``), then the steps of the Dashboard page one by
one in this thread (read the series, the whole board with its analytics, chart JSON,
template, gzip), and prints a cProfile
of those steps (the TestClient runs the app in another thread, out of cProfile's sight).

    .venv/bin/python bench/profile_web.py --backend sqlite --code USD --range 1y [--partial]
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import pstats
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from _support import FreshDatabases, fake_nbp_process, warm_up
from vigil.core.api import create_app
from vigil.core.runtime import Runtime
from vigil.markets import dashboards, service
from vigil.markets.brain import BrainSettings
from vigil.markets.price_charts import candle_chart, price_chart
from vigil.markets.sources import SeriesKind


def _steps(
    runtime: Runtime, templates: Any, code: str, choice: str
) -> dict[str, Callable[[], Any]]:
    """The Dashboard page's work, step by step (each step keeps its result for the next)."""
    params = BrainSettings.from_settings(runtime.settings).params
    kept: dict[str, Any] = {}

    def read_series() -> None:
        with runtime.db.session() as session:
            asset = service.get_asset(session, code, SeriesKind.CURRENCY)
            kept["series"] = service.daily_values(session, asset.id)

    def whole_board() -> None:
        with runtime.db.session() as session:
            kept["board"] = dashboards.price_dashboard(
                session, code, SeriesKind.CURRENCY, choice, None, None, params
            )

    def charts() -> None:
        kept["price"] = price_chart(kept["board"])
        kept["candles"] = candle_chart(kept["board"])

    def template() -> None:
        env = templates.env
        panel = env.get_template("markets/_price_panel.html")
        kept["html"] = panel.render(
            board=kept["board"], price_chart=kept["price"], candle_chart=kept["candles"],
            kind="currency", path="/markets/dashboard", now=datetime.now(UTC),
        )  # fmt: skip

    def compress() -> None:
        kept["gzip"] = gzip.compress(kept["html"].encode(), compresslevel=1)

    return {
        "read series (daily_values)": read_series,
        "series + analytics (board)": whole_board,
        "chart JSON (2 charts)": charts,
        "panel template": template,
        "gzip, level 1": compress,
    }


def _time_steps(steps: dict[str, Callable[[], Any]], count: int) -> dict[str, float]:
    times = dict.fromkeys(steps, 0.0)
    for _ in range(count):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            times[name] += time.perf_counter() - started
    return {name: total / count * 1000 for name, total in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--code", default="USD")
    parser.add_argument("--range", default="1y", choices=["3m", "6m", "1y", "5y", "all"])
    parser.add_argument("--partial", action="store_true", help="send HX-Request: true")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with fake_nbp_process() as url:
        warm_up(url)
        dbs = FreshDatabases(args.backend, url)
        try:
            loaded = dbs.new()
            run = loaded.runner.run("markets.backfill")
            print(f"backfill: {run.status}, {run.rows_written} rows")
            settings = loaded.settings.model_copy(update={"rate_limit": "", "cache_ttl": 0})
            runtime = Runtime.create(settings)
            headers = {"accept": "text/html"} | ({"HX-Request": "true"} if args.partial else {})
            path = f"/markets/dashboard?code={args.code}&range={args.range}"
            with TestClient(create_app(runtime)) as client:
                for _ in range(3):
                    assert client.get(path, headers=headers).status_code == 200
                started = time.perf_counter()
                for _ in range(args.count):
                    client.get(path, headers=headers)
                whole = (time.perf_counter() - started) / args.count * 1000
                print(f"{path} ({'partial' if args.partial else 'page'}, {args.backend}):")
                print(f"  {whole:.1f} ms per request (TestClient)")
                templates = client.app.state.templates  # type: ignore[attr-defined]
                steps = _steps(runtime, templates, args.code, args.range)
                for name, ms in _time_steps(steps, args.count).items():
                    print(f"  {name:<28} {ms:7.2f} ms")
                profile = cProfile.Profile()
                profile.enable()
                for _ in range(args.count):
                    for step in steps.values():
                        step()
                profile.disable()
            runtime.close()
            stats = pstats.Stats(profile).strip_dirs().sort_stats("cumulative")
            stats.print_stats(args.top)
        finally:
            dbs.close()


if __name__ == "__main__":
    main()
