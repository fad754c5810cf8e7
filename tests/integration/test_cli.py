"""The `vigil` command as a real process: module commands against a fake NBP on loopback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.fakes.nbp_server import FakeNBP

VIGIL = [sys.executable, "-m", "vigil"]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeNBP]:
    with FakeNBP(today=date.today()) as server:
        yield server


def vigil(tmp_path: Path, fake: FakeNBP, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_DATABASE_URL": "",
        "VIGIL_NBP_BASE_URL": fake.base_url,
        "VIGIL_NBP_BACKOFF_INITIAL_SECONDS": "0",
    }
    return subprocess.run(
        [*VIGIL, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_backfill_command_loads_the_requested_range(tmp_path: Path, fake: FakeNBP) -> None:
    done = vigil(
        tmp_path, fake, "markets", "backfill", "--from", "2023-01-02", "--to", "2023-01-06"
    )
    assert done.returncode == 0, done.stderr
    assert "markets.backfill: ok" in done.stderr
    with sqlite3.connect(tmp_path / "data" / "vigil.db") as conn:
        days = conn.execute("SELECT DISTINCT effective_date FROM prices ORDER BY 1").fetchall()
        status = conn.execute(
            "SELECT job_type, status, rows_written FROM jobs_log ORDER BY id"
        ).fetchall()
    # 2023-01-06 is Epiphany, a Polish holiday: no table
    assert [d for (d,) in days] == ["2023-01-02", "2023-01-03", "2023-01-04", "2023-01-05"]
    expected = (
        sum(1 for (_, d) in fake.expected_rates() if date(2023, 1, 2) <= d <= date(2023, 1, 6)) + 4
    )  # + gold
    # the backfill, then what it triggered: signals (4 days: too few for a MACD) and alerts
    # (no rule), both skipped
    assert status == [
        ("markets.backfill", "ok", expected),
        ("markets.signals", "skipped", 0),
        ("markets.alerts", "skipped", 0),
    ]

    again = vigil(
        tmp_path, fake, "markets", "backfill", "--from", "2023-01-02", "--to", "2023-01-06"
    )
    assert again.returncode == 0
    assert "markets.backfill: skipped" in again.stderr


def test_backfill_rejects_a_malformed_date(tmp_path: Path, fake: FakeNBP) -> None:
    done = vigil(tmp_path, fake, "markets", "backfill", "--from", "2023-02-30")
    assert done.returncode == 2
    assert "YYYY-MM-DD" in done.stderr


def test_failed_sync_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    with FakeNBP(today=date.today()) as broken:
        broken.fault_every = 1  # every request fails
        done = vigil(tmp_path, broken, "markets", "sync")
    assert done.returncode == 1
    assert "failed" in done.stderr
    assert "500" in done.stderr


def test_jobs_lists_the_schedule(tmp_path: Path, fake: FakeNBP) -> None:
    done = vigil(tmp_path, fake, "jobs")
    assert done.returncode == 0
    assert "markets.sync" in done.stdout
    assert "0 * * * *" in done.stdout


def test_worker_without_a_broker_says_what_to_set(tmp_path: Path, fake: FakeNBP) -> None:
    done = vigil(tmp_path, fake, "worker")
    assert done.returncode == 2
    assert "VIGIL_REDIS_URL" in done.stderr


def test_worker_refuses_an_unknown_queue(tmp_path: Path, fake: FakeNBP) -> None:
    env_redis = {"VIGIL_REDIS_URL": "redis://127.0.0.1:1/0"}  # never contacted: refused first
    done = subprocess.run(
        [*VIGIL, "worker", "-Q", "ingest,nope"],
        env={**os.environ, "VIGIL_DATA_DIR": str(tmp_path / "data"), **env_redis},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "unknown queue(s) nope; known: analytics, collect, ingest" in done.stderr
