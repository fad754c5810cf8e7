"""Where the network devices pages' server time goes: fills a fresh database as
``test_bench_network_pages.py`` does (500 devices, an hour of ICMP samples each, a week of
one device's samples, rolled up), times whole requests through FastAPI's TestClient, then
the steps of the page one by one in this thread (SQL time counted by cursor events),
prints a cProfile of those steps and the query plans (EXPLAIN ANALYZE on PostgreSQL,
EXPLAIN QUERY PLAN on SQLite) of the page's sample queries.

    .venv/bin/python bench/profile_network_pages.py --backend sqlite --page table
    .venv/bin/python bench/profile_network_pages.py --backend postgresql --page device
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from _support import PG_ADMIN_DSN, empty_database_url
from test_bench_network_pages import ADMIN, _fill
from vigil.core.api import create_app
from vigil.core.runtime import Runtime
from vigil.network import device_charts, device_pages, device_queries, service
from vigil.settings import Settings


class SqlClock:
    """Counts the statements and the time spent in the driver (execute + fetch is not
    split: SQLAlchemy fetches after the event, so this is the execute part only)."""

    def __init__(self, engine: Engine) -> None:
        self.count, self.seconds, self.log = 0, 0.0, False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        conn.info["vigil_started"] = time.perf_counter()
        if self.log:
            self.statements.append((statement, params))

    def _after(self, conn: Any, *_: Any) -> None:
        self.count += 1
        self.seconds += time.perf_counter() - conn.info.pop("vigil_started")


def _steps(
    runtime: Runtime, templates: Any, page: str, busy: int, kept: dict[str, Any], choice: str
) -> dict[str, Callable[[], Any]]:
    now = datetime.now(UTC)

    def table_data() -> None:
        with runtime.db.session() as session:
            kept["ctx"] = device_pages.devices_panel(session, device_pages.Filters(size=200), now)

    def device_data() -> None:
        with runtime.db.session() as session:
            kept["ctx"] = device_pages.device_panel(session, busy, choice, now)

    def template() -> None:
        name = "network/_devices_panel.html" if page == "table" else "network/_device_panel.html"
        ctx = {**kept["ctx"], "refresh_seconds": 60, "can": lambda *_: True}
        kept["html"] = templates.env.get_template(name).render(**ctx)

    def compress() -> None:
        kept["gzip"] = gzip.compress(kept["html"].encode(), compresslevel=1)

    def devices() -> None:  # the table's first statement (one page and the total)
        with runtime.db.session() as session:
            kept["devices"], _ = device_queries.table_rows(session, service.DeviceFilter(), 200, 0)

    def sparkline_data(held: device_queries.RttWindows | None) -> None:
        with runtime.db.session() as session:
            kept["sparks"] = device_queries.rtt_sparklines(
                session,
                kept["devices"],
                now - device_pages.SPARK_WINDOW,
                now,
                held or device_queries.RttWindows(),
            )

    refreshed = device_queries.RttWindows()

    def sparkline_svg() -> None:
        draw = device_charts.sparkline.__wrapped__  # not the kept ones
        kept["points"] = [draw(tuple(v), "") for v in kept["sparks"].values()]

    if page == "device":
        return {
            "data (queries + values)": device_data,
            "panel template": template,
            "gzip": compress,
        }
    return {
        "  table_rows": devices,
        "  rtt_sparklines, cold (the hour)": lambda: sparkline_data(None),
        "  rtt_sparklines, refresh (held)": lambda: sparkline_data(refreshed),
        "  device_charts.sparkline": sparkline_svg,
        "data (all of devices_panel)": table_data,
        "panel template": template,
        "gzip": compress,
    }


@contextmanager
def _site(backend: str) -> Iterator[tuple[Runtime, int]]:
    tmp = Path(tempfile.mkdtemp(prefix="vigil_netprof_"))
    url, pg_name = empty_database_url(backend, tmp, "network_pages.db")
    settings = Settings(
        database_url=url, data_dir=tmp, rate_limit="", cache_ttl=0, argon2_time_cost=1,
        argon2_memory_kib=8, argon2_parallelism=1,
        jwt_secret="benchmark-signing-key-that-is-at-least-32-bytes",
        network_secret_key="benchmark network key", run_jobs_on_start=False,
    )  # fmt: skip
    runtime = Runtime.create(settings)
    try:
        runtime.migrate()
        yield runtime, _fill(runtime, settings)
    finally:
        runtime.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_name:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _plans(runtime: Runtime, statements: list[tuple[str, Any]]) -> None:
    """The plan of each statement the page ran that reads samples or rollups."""
    with runtime.db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for statement, params in statements:
            if "network_samples" not in statement and "network_rollups" not in statement:
                continue
            if runtime.db.dialect == "postgresql":
                prefix = "EXPLAIN (ANALYZE, BUFFERS) "
            else:
                prefix = "EXPLAIN QUERY PLAN "
            cursor = raw.cursor()
            started = time.perf_counter()
            for _ in range(10):
                cursor.execute(statement, params)
                rows = len(cursor.fetchall())
            ms = (time.perf_counter() - started) / 10 * 1000
            print(f"\n{ms:.2f} ms, {rows} rows (execute + fetch, driver only): ", end="")
            print(" ".join(statement.split())[:400])
            cursor.execute(prefix + statement, params)
            for row in cursor.fetchall():
                print("   ", row[0] if len(row) == 1 else row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--page", choices=["table", "device"], default="table")
    parser.add_argument("--range", default="7d", choices=list(device_pages.RANGES))
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    with _site(args.backend) as (runtime, busy):
        path = (
            "/network?size=200"
            if args.page == "table"
            else f"/network/devices/{busy}?range={args.range}"
        )
        headers = {"accept": "text/html", "accept-encoding": "gzip", "HX-Request": "true"}
        with TestClient(create_app(runtime)) as client:
            client.post("/api/v1/auth/register", json=ADMIN)
            token = client.post(
                "/api/v1/auth/token",
                data={"username": ADMIN["email"], "password": ADMIN["password"]},
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            for _ in range(3):
                assert client.get(path, headers=headers).status_code == 200
            started = time.perf_counter()
            for _ in range(args.count):
                client.get(path, headers=headers)
            whole = (time.perf_counter() - started) / args.count * 1000
            print(f"{path} (partial, {args.backend}): {whole:.1f} ms per request (TestClient)")
            templates = client.app.state.templates  # type: ignore[attr-defined]
            clock = SqlClock(runtime.db.engine)
            kept: dict[str, Any] = {}
            steps = _steps(runtime, templates, args.page, busy, kept, args.range)
            times = dict.fromkeys(steps, 0.0)
            for _ in range(args.count):
                for name, step in steps.items():
                    started = time.perf_counter()
                    step()
                    times[name] += time.perf_counter() - started
            for name, total in times.items():
                print(f"  {name:<28} {total / args.count * 1000:7.2f} ms")
            print(
                f"  of which SQL execute: {clock.seconds / args.count * 1000:.2f} ms in "
                f"{clock.count / args.count:.0f} statements"
            )
            print(f"  HTML {len(kept['html']):,} bytes, {len(kept['gzip']):,} gzipped")
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.count):
                for step in steps.values():
                    step()
            profile.disable()
            clock.log = True
            next(iter(steps.values()))()
            clock.log = False
        pstats.Stats(profile).strip_dirs().sort_stats("cumulative").print_stats(args.top)
        pstats.Stats(profile).strip_dirs().sort_stats("tottime").print_stats(20)
        _plans(runtime, clock.statements)


if __name__ == "__main__":
    main()
