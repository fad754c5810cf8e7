"""Shared helpers of the benchmarks: the fake NBP server as a subprocess and throwaway
databases (a SQLite file or a PostgreSQL database) built with the migrations.

Not a test module: pytest collects only ``test_bench_*.py`` here, and only when asked
(``python -m pytest bench --benchmark-only``; the main suite's testpaths is ``tests``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from vigil.core.runtime import Runtime
from vigil.markets.sources.nbp import NBPClient, warsaw_today
from vigil.settings import Settings

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("VIGIL_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
READY_TIMEOUT_SECONDS = 60.0


def empty_database_url(backend: str, tmp: Path, file_name: str) -> tuple[str, str | None]:
    """A new, empty database: a SQLite file ``file_name`` in ``tmp``, or a PostgreSQL database
    of its own; returns its URL and the PostgreSQL database's name (None for SQLite), which
    the caller drops when done."""
    if backend == "sqlite":
        return f"sqlite:///{(tmp / file_name).as_posix()}", None
    name = f"vigil_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}", name


@contextmanager
def fake_nbp_process(today: str | None = None) -> Iterator[str]:
    """Runs ``python -m tests.fakes.nbp_server`` in its own process (so serving does not share
    the GIL with the code under test) and yields its base URL (``http://127.0.0.1:N/api``).

    ``today`` defaults to today in Warsaw: the NBP client clamps every range to that date and
    the fake refuses ranges that end after its own ``today``, so the two must agree.
    """
    day = today or warsaw_today().isoformat()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.nbp_server", "--port", "0", "--today", day],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake NBP server did not start (first line: {line!r})")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def warm_up(base_url: str) -> int:
    """Requests the whole history once, as the backfill will, so the fake server renders and
    caches every reply before anything is timed. Returns the number of quotes served."""
    with NBPClient(base_url) as client:
        return sum(
            len(client.fetch(kind, start, client.latest_available_date()))
            for kind, start in client.history_start.items()
        )


def postgres_available() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5):
            return None
    except psycopg.OperationalError as exc:
        return f"PostgreSQL unreachable at {PG_ADMIN_DSN}: {exc}"


@dataclass
class FreshDatabases:
    """Creates empty databases of one backend and removes them all on :meth:`close`.

    ``new()`` returns a migrated :class:`Runtime` on a brand-new database; the previous one
    made by this object is closed and dropped first, so only one exists at a time.
    """

    backend: str  # "sqlite" or "postgresql"
    nbp_base_url: str
    _tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vigil_bench_")))
    _current: tuple[Runtime, str] | None = None

    def new(self) -> Runtime:
        self.drop_current()
        name = f"vigil_bench_{uuid.uuid4().hex[:10]}"
        if self.backend == "sqlite":
            url = f"sqlite:///{(self._tmp / f'{name}.db').as_posix()}"
        elif self.backend == "postgresql":
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
        else:
            raise ValueError(f"unknown backend {self.backend!r}")
        runtime = Runtime.create(Settings(database_url=url, nbp_base_url=self.nbp_base_url))
        runtime.migrate()
        self._current = (runtime, name)
        return runtime

    def drop_current(self) -> None:
        if self._current is None:
            return
        runtime, name = self._current
        self._current = None
        runtime.close()
        if self.backend == "postgresql":
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            for suffix in ("", "-wal", "-shm"):
                (self._tmp / f"{name}.db{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        self.drop_current()
        shutil.rmtree(self._tmp, ignore_errors=True)
