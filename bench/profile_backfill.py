"""Where a full backfill spends its time: a wall-clock breakdown (fetch vs. store, and inside
the store its steps) and optionally a cProfile of one run.

    .venv/bin/python bench/profile_backfill.py [--backend sqlite|postgresql] [--runs N]
                                               [--cprofile N] [--with-fk]

Each run loads the full history from the fake NBP server (a subprocess on 127.0.0.1) into a
new, migrated database that is dropped afterwards. The breakdown wraps a few functions with
timers (by patching module attributes in this process only); the job itself is unchanged.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import FreshDatabases, fake_nbp_process, postgres_available, warm_up
from vigil.core import bulk
from vigil.core.runtime import Runtime
from vigil.markets import miner, service
from vigil.markets.sources import nbp


@contextmanager
def timed(targets: list[tuple[Any, str, str]]) -> Iterator[dict[str, float]]:
    """Wraps ``owner.attribute`` with a wall-clock accumulator under ``label``."""
    totals: dict[str, float] = defaultdict(float)
    saved: list[tuple[Any, str, Any, bool]] = []

    def wrap(label: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - t0

        return timed_call

    for owner, attribute, label in targets:
        original = getattr(owner, attribute)
        saved.append((owner, attribute, original, attribute in vars(owner)))
        setattr(owner, attribute, wrap(label, original))
    try:
        yield totals
    finally:
        for owner, attribute, original, own in reversed(saved):
            if own:
                setattr(owner, attribute, original)
            else:  # inherited (e.g. SourceClient.fetch): drop the override again
                delattr(owner, attribute)


TARGETS: list[tuple[Any, str, str]] = [
    (nbp.NBPClient, "fetch", "fetch (HTTP + JSON + Quote objects)"),
    (nbp.NBPClient, "_get_once", "  fetch: HTTP GET + json.loads"),
    (nbp, "parse_tables", "  fetch: parse_tables"),
    (nbp, "parse_gold", "  fetch: parse_gold"),
    (miner, "_store_chunk", "store chunk (session, upsert, commit, events)"),
    (service, "ensure_assets", "  store: ensure_assets"),
    (service, "bulk_upsert", "  store: bulk_upsert"),
    (bulk, "_copy_payload", "    bulk_upsert: COPY text (PostgreSQL)"),
    (bulk, "_sqlite_rows", "    bulk_upsert: bound rows (SQLite)"),
]


def _statement_label(query: Any) -> str:
    text = query if isinstance(query, str) else str(getattr(query, "as_string", lambda: query)())
    words = re.sub(r"\s+", " ", text).strip().split(" ")
    head = " ".join(words[:3]).upper()
    known = {"prices", "assets", "jobs_log", "_bulk_prices", "signals"}
    tables = sorted({w for w in words if w in known})
    return f"{head[:28]:28} [{','.join(tables)}]"


@contextmanager
def timed_sql() -> Iterator[tuple[dict[str, float], dict[str, int]]]:
    """Wall time of every psycopg ``execute`` (by statement) and ``commit``: on PostgreSQL
    this is mostly the server working while the client waits."""
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    execute, commit = psycopg.Cursor.execute, psycopg.Connection.commit

    def timed_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        label = _statement_label(query)
        t0 = time.perf_counter()
        try:
            return execute(self, query, *args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - t0
            counts[label] += 1

    def timed_commit(self: Any) -> None:
        t0 = time.perf_counter()
        try:
            commit(self)
        finally:
            totals["COMMIT"] += time.perf_counter() - t0
            counts["COMMIT"] += 1

    psycopg.Cursor.execute = timed_execute  # type: ignore[method-assign]
    psycopg.Connection.commit = timed_commit  # type: ignore[method-assign]
    try:
        yield totals, counts
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Connection.commit = commit  # type: ignore[method-assign]


def _add_foreign_key(runtime: Runtime) -> None:
    """The foreign key the schema leaves out on purpose (see docs/BENCHMARKS.md)."""
    if runtime.db.dialect != "postgresql":
        raise SystemExit("--with-fk is for PostgreSQL (SQLite cannot add a constraint)")
    with runtime.db.session() as session:
        session.execute(
            text(
                "ALTER TABLE prices ADD CONSTRAINT fk_prices_asset_id_assets "
                "FOREIGN KEY (asset_id) REFERENCES assets (id)"
            )
        )
    print("(with a foreign key prices.asset_id -> assets.id)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--runs", type=int, default=2, help="breakdown runs (default 2)")
    parser.add_argument("--cprofile", type=int, default=30, help="top N functions (0: no)")
    parser.add_argument(
        "--with-fk",
        action="store_true",
        help="add a prices.asset_id -> assets.id foreign key first (what it would cost)",
    )
    args = parser.parse_args(argv)
    if args.backend == "postgresql" and (why := postgres_available()):
        print(why, file=sys.stderr)
        return 1

    with fake_nbp_process() as url:
        warm_up(url)
        dbs = FreshDatabases(args.backend, url)
        try:
            for i in range(args.runs):
                runtime = dbs.new()
                if args.with_fk:
                    _add_foreign_key(runtime)
                with timed(TARGETS) as totals, timed_sql() as (sql, counts):
                    t0 = time.perf_counter()
                    run = runtime.runner.run("markets.backfill")
                    total = time.perf_counter() - t0
                print(f"run {i + 1} on {args.backend}: {run.status}, {run.rows_written} rows")
                print(f"  {'total (runner.run)':48} {total:7.3f}s")
                for _owner, _attribute, label in TARGETS:
                    print(f"  {label:48} {totals.get(label, 0.0):7.3f}s")
                if sql:
                    print("  psycopg round trips (server time + network), slowest first:")
                    for label, seconds in sorted(sql.items(), key=lambda kv: -kv[1])[:10]:
                        print(f"    {label:44} {counts[label]:5}x {seconds:7.3f}s")
            if args.cprofile:
                runtime = dbs.new()
                profiler = cProfile.Profile()
                profiler.enable()
                run = runtime.runner.run("markets.backfill")
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).strip_dirs()
                stats.sort_stats("tottime").print_stats(args.cprofile)
                stats.sort_stats("cumulative").print_stats(args.cprofile)
                print(f"cProfile of one run on {args.backend}: {run.status}, {run.rows_written}")
                print(out.getvalue())
        finally:
            dbs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
