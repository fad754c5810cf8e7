"""Fixtures for end-to-end tests: real ``vigil up`` processes, a fake NBP API process and a
real database (a SQLite file, or a throwaway PostgreSQL database).

Every process started here is killed at teardown, and every wait has a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from psycopg import sql
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.fakes.nbp_server import FakeNBP
from tests.support import browser as br
from tests.support.rabbitmq import rabbitmq_url  # noqa: F401  (registers the fixture)
from tests.support.redis_server import private_redis  # noqa: F401  (registers the fixture)
from vigil.core.db import make_engine
from vigil.core.models import JobLog
from vigil.markets.models import Asset, Price

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
WARSAW = ZoneInfo("Europe/Warsaw")

#: Seed of the fake NBP's synthetic data (not the fake's default, so the data is ours).
NBP_SEED = 7
#: Every 23rd request to the fake NBP answers 500: vigil must retry its way through.
NBP_FAULT_EVERY = 23

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def warsaw_today() -> date:
    """NBP's "today": the client clamps every range to it and the fake refuses later ends."""
    return datetime.now(WARSAW).date()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    diagnostics: Callable[[], str] = lambda: "",
) -> T:
    """Calls ``probe`` until it returns something other than None; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time; always reaps it."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expected:
    """What the fake NBP serves, as the database should hold it."""

    rates: dict[tuple[str, date], Decimal]
    gold: dict[date, Decimal]

    @property
    def total(self) -> int:
        return len(self.rates) + len(self.gold)

    def series(self, code: str) -> dict[date, Decimal]:
        return {day: value for (c, day), value in self.rates.items() if c == code}


@lru_cache(maxsize=4)
def expected_data(seed: int, today: date) -> Expected:
    fake = FakeNBP(seed=seed, today=today)  # never started: only its data is used
    return Expected(fake.expected_rates(), fake.expected_gold())


# --------------------------------------------------------------------------- databases


@dataclass(frozen=True)
class StoredRows:
    """The price rows of a database, read back with the application's column types."""

    rates: dict[tuple[str, date], Decimal]
    gold: dict[date, Decimal]
    rows: int  # rows in the table (a duplicate would make this exceed the dict sizes)
    distinct_keys: int  # distinct (asset, effective_date)


@dataclass
class Backend:
    name: str
    env_url: str  # VIGIL_DATABASE_URL as an operator would write it
    sqlalchemy_url: str  # the same database, for reading it from the test
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.sqlalchemy_url)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def price_count(self) -> int | None:
        """Rows in ``prices``; None while the table does not exist yet."""
        try:
            with Session(self.engine) as session:
                return session.scalar(select(func.count()).select_from(Price)) or 0
        except Exception:
            return None

    def stored_rows(self) -> StoredRows:
        rates: dict[tuple[str, date], Decimal] = {}
        gold: dict[date, Decimal] = {}
        rows = 0
        with Session(self.engine) as session:
            stmt = select(Asset.code, Asset.kind, Price.effective_date, Price.price).join(
                Asset, Asset.id == Price.asset_id
            )
            for code, kind, day, price in session.execute(stmt):
                rows += 1
                assert day is not None, f"{code}: a daily NBP quote without effective_date"
                if kind == "gold":
                    gold[day] = Decimal(price)
                else:
                    rates[(code, day)] = Decimal(price)
            total = session.scalar(select(func.count()).select_from(Price)) or 0
            keys = select(Price.asset_id, Price.effective_date).distinct().subquery()
            distinct = session.scalar(select(func.count()).select_from(keys)) or 0
        assert rows == total, f"{total - rows} price rows have no asset"
        return StoredRows(rates, gold, total, distinct)

    def job_runs(self, job_type: str) -> list[JobLog]:
        with Session(self.engine) as session:
            stmt = select(JobLog).where(JobLog.job_type == job_type).order_by(JobLog.id)
            return list(session.scalars(stmt))


def _services_required() -> bool:
    return os.environ.get("VIGIL_REQUIRE_SERVICES", "") == "1"


@contextlib.contextmanager
def _postgres_database() -> Iterator[Backend]:
    name = f"vigil_e2e_{secrets.token_hex(6)}"
    admin_dsn = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres connect_timeout=5"
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable: {exc}"
        if _services_required():
            pytest.fail(f"{message} (VIGIL_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        backend = Backend(
            "postgresql",
            env_url=f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}",
            sqlalchemy_url=f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}",
        )
        try:
            yield backend
        finally:
            backend.dispose()
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def postgres() -> Iterator[Backend]:
    """A fresh, empty throwaway PostgreSQL database."""
    with _postgres_database() as backend:
        yield backend


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty database on each backend (vigil migrates it itself)."""
    if request.param == "sqlite":
        path = (tmp_path / "db" / "vigil.db").as_posix()
        sqlite = Backend("sqlite", env_url=f"sqlite:///{path}", sqlalchemy_url=f"sqlite:///{path}")
        try:
            yield sqlite
        finally:
            sqlite.dispose()
    else:
        with _postgres_database() as postgres:
            yield postgres


# --------------------------------------------------------------------------- fake NBP


@dataclass(frozen=True)
class FakeNbpProcess:
    proc: subprocess.Popen[str]
    base_url: str
    seed: int
    today: date
    stderr_path: Path

    @property
    def expected(self) -> Expected:
        return expected_data(self.seed, self.today)


def _read_ready_line(proc: subprocess.Popen[str], stdout: IO[str], timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return stdout.readline().strip()


@pytest.fixture
def start_fake_nbp(tmp_path: Path) -> Iterator[Callable[..., FakeNbpProcess]]:
    """Starts ``python -m tests.fakes.nbp_server`` with the given per-request delay; every
    NBP_FAULT_EVERY-th request fails with ``fault_status`` (500, or 429 with Retry-After)."""
    started: list[FakeNbpProcess] = []

    def start(delay: float, fault_status: int = 500) -> FakeNbpProcess:
        today = warsaw_today()
        stderr_path = tmp_path / f"fake_nbp_{len(started)}.stderr"
        command = [
            sys.executable,
            "-m",
            "tests.fakes.nbp_server",
            "--port",
            "0",
            "--delay",
            str(delay),
            "--fault-every",
            str(NBP_FAULT_EVERY),
            "--fault-status",
            str(fault_status),
            "--seed",
            str(NBP_SEED),
            "--today",
            today.isoformat(),
        ]
        with stderr_path.open("w") as stderr:
            proc = subprocess.Popen(
                command, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        assert proc.stdout is not None
        line = _read_ready_line(proc, proc.stdout, STARTUP_TIMEOUT)
        if not line.startswith("READY "):
            stop_process(proc)
            pytest.fail(f"fake NBP did not start (got {line!r})\n{tail(stderr_path)}")
        fake = FakeNbpProcess(proc, line.split(" ", 1)[1], NBP_SEED, today, stderr_path)
        started.append(fake)
        return fake

    try:
        yield start
    finally:
        for fake in started:
            stop_process(fake.proc)
            if fake.proc.stdout is not None:
                fake.proc.stdout.close()


# --------------------------------------------------------------------------- vigil up


@dataclass
class VigilProcess:
    proc: subprocess.Popen[bytes]
    base_url: str
    stdout_path: Path
    stderr_path: Path
    client: httpx.Client

    @property
    def pid(self) -> int:
        return self.proc.pid

    def diagnostics(self) -> str:
        state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        return f"vigil up (pid {self.pid}, {state}) stderr tail:\n{tail(self.stderr_path)}"

    def ensure_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"vigil up exited early\n{self.diagnostics()}")

    def get_json(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        def probe() -> bool | None:
            self.ensure_alive()
            try:
                response = self.client.get("/health/ready", timeout=2.0)
            except httpx.TransportError:
                return None
            return True if response.status_code == 200 else None

        wait_for(
            probe, timeout=timeout, what="/health/ready to answer 200", diagnostics=self.diagnostics
        )

    def wait_backfill_finished(self, after_id: int = 0, timeout: float = 120.0) -> dict[str, Any]:
        """The first ``markets.backfill`` run with id > ``after_id`` that is no longer running,
        as /api/v1/markets/stats/miner lists it."""

        def probe() -> dict[str, Any] | None:
            self.ensure_alive()
            stats = self.get_json("/api/v1/markets/stats/miner", recent=50)
            for run in stats["recent"]:
                if (
                    run["job_type"] == "markets.backfill"
                    and run["id"] > after_id
                    and run["status"] != "running"
                ):
                    found: dict[str, Any] = run
                    return found
            return None

        return wait_for(
            probe,
            timeout=timeout,
            what="a markets.backfill run to finish",
            interval=0.5,
            diagnostics=self.diagnostics,
        )

    def wait_jobs_idle(self, quiet: float = 1.5, timeout: float = 60.0) -> bool:
        """Waits until no job is running and no new run started for ``quiet`` seconds (the
        brain's queue settles 0.25 s after the last event, so 1.5 s of calm means done)."""
        last: tuple[int, int] | None = None
        stable_since = time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.get_json("/api/v1/markets/stats/miner", recent=0)["jobs"]
            state = (sum(j["runs"] for j in jobs), sum(j["running"] for j in jobs))
            if state != last or state[1]:
                last, stable_since = state, time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return True
            time.sleep(0.2)
        return False

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; returns the exit code (fails the test if it hangs)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(f"vigil up ignored SIGTERM for {timeout:.0f}s\n{self.diagnostics()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def log_records(self) -> list[dict[str, Any]]:
        """vigil's stderr, one JSON object per line (VIGIL_LOG_FORMAT=json)."""
        records: list[dict[str, Any]] = []
        for number, line in enumerate(self.stderr_path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"stderr line {number} is not JSON: {line!r}")
            assert isinstance(record, dict), f"stderr line {number} is not an object: {line!r}"
            records.append(record)
        return records


#: Where NBP is when a test needs none: a closed loopback port, never the real service.
NO_NBP_URL = "http://127.0.0.1:9/api"


def vigil_env(
    backend: Backend, nbp: FakeNbpProcess | None, port: int, data_dir: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(
        {
            "VIGIL_DATA_DIR": str(data_dir),
            "VIGIL_DATABASE_URL": backend.env_url,
            "VIGIL_REDIS_URL": "",
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_PORT": str(port),
            "VIGIL_LOG_FORMAT": "json",
            "VIGIL_LOG_LEVEL": "INFO",
            "VIGIL_RUN_JOBS_ON_START": "true",
            "VIGIL_NBP_BASE_URL": nbp.base_url if nbp else NO_NBP_URL,
            "VIGIL_NBP_TIMEOUT_SECONDS": "10",
            "VIGIL_NBP_MAX_ATTEMPTS": "5",
            "VIGIL_NBP_BACKOFF_INITIAL_SECONDS": "0.05",
            "VIGIL_NBP_BACKOFF_MAX_SECONDS": "0.2",
            # Nothing tracked, so never asked; but never the real service either.
            "VIGIL_COINGECKO_BASE_URL": "http://127.0.0.1:9/api/v3",
        }
    )
    return env


def vigil_command() -> list[str]:
    """The installed ``vigil`` console script beside this interpreter (the venv's)."""
    script = Path(sys.executable).parent / "vigil"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from vigil.cli import main; main()"]


def launch_vigil(
    args: tuple[str, ...],
    env: dict[str, str],
    cwd: Path,
    logs: Path,
    port: int,
    client_timeout: float = 5.0,  # httpx's default
) -> VigilProcess:
    """Starts ``vigil <args>`` in ``cwd`` with exactly ``env``, its output in
    ``<logs>.stdout`` and ``<logs>.stderr``, and a client for its API on ``port``."""
    stdout_path, stderr_path = logs.with_suffix(".stdout"), logs.with_suffix(".stderr")
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [*vigil_command(), *args],
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base_url, timeout=client_timeout)
    return VigilProcess(proc, base_url, stdout_path, stderr_path, client)


StartVigil = Callable[..., VigilProcess]


@pytest.fixture
def start_vigil(tmp_path: Path) -> Iterator[StartVigil]:
    """Starts ``vigil up`` (or another role: ``args``) with a new port and log files each time,
    against a database and NBP; ``env`` adds or overrides settings."""
    started: list[VigilProcess] = []

    def start(
        backend: Backend,
        nbp: FakeNbpProcess | None,
        args: tuple[str, ...] = ("up",),
        env: dict[str, str] | None = None,
    ) -> VigilProcess:
        run = len(started)
        workdir = tmp_path / "vigil_cwd"  # no .env here: only our environment counts
        workdir.mkdir(exist_ok=True)
        port = free_port()
        vigil = launch_vigil(
            args,
            vigil_env(backend, nbp, port, tmp_path / "data") | (env or {}),
            workdir,
            tmp_path / f"vigil_{run}",
            port,
            client_timeout=30.0,
        )
        started.append(vigil)
        return vigil

    try:
        yield start
    finally:
        for vigil in started:
            vigil.client.close()
            stop_process(vigil.proc)


@pytest.fixture(scope="session")
def uninterrupted_rows() -> dict[str, StoredRows]:
    """The rows each backend's uninterrupted run stored, for the killed run to compare with."""
    return {}


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (tests/support/browser.py), one per test module."""
    chromium = br.launch(playwright)
    yield chromium
    chromium.close()
