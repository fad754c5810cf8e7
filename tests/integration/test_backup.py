"""`vigil backup` / `vigil restore` for real: pg_dump of a migrated PostgreSQL database with
data, uploaded to a local S3 server (moto's, on a loopback port), restored by pg_restore into
a fresh database, compared table by table; retention against real objects; failures exit
non-zero with a message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import throwaway_postgres
from tests.support.redis_server import free_port
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, keys, moto_s3, s3_client
from vigil.core import backup
from vigil.core.db import make_engine
from vigil.core.migrate import upgrade_to_head
from vigil.settings import Settings

VIGIL = Path(sys.executable).with_name("vigil")
KEYS = {
    "VIGIL_BACKUP_S3_ACCESS_KEY_ID": ACCESS_KEY,
    "VIGIL_BACKUP_S3_SECRET_ACCESS_KEY": SECRET_KEY,
}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    with moto_s3(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


def client(endpoint: str) -> Any:
    return s3_client(endpoint)


def make_bucket(endpoint: str, name: str) -> None:
    client(endpoint).create_bucket(Bucket=name)


def vigil(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "AWS_"))}
    return subprocess.run(
        [str(VIGIL), *args],
        env={**clean, "VIGIL_DATA_DIR": str(cwd), **KEYS, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(libpq(url)) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
                "FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND "
                "table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        ]
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def fill(url: str) -> None:
    """Vigil's schema (by the migrations) and data: 2,000 job runs, and a table of types."""
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    with psycopg.connect(libpq(url)) as conn:
        conn.execute(
            "INSERT INTO jobs_log (job_type, status, started_at, rows_written, parameters, "
            "worker) SELECT 'markets.nbp_sync', 'ok', now() - i * interval '1 hour', i, "
            "jsonb_build_object('i', i), 'w1' FROM generate_series(1, 2000) AS i"
        )
        conn.execute(
            "CREATE TABLE probe (id bigserial PRIMARY KEY, rate numeric(18, 6), note text, "
            "at timestamptz, day date)"
        )
        conn.execute(
            "INSERT INTO probe (rate, note, at, day) SELECT i / 7.0, repeat('x', i % 50), "
            "now(), current_date - i FROM generate_series(1, 3000) AS i"
        )


def test_backup_and_restore_into_a_fresh_database(s3: str, tmp_path: Path) -> None:
    make_bucket(s3, "vigil-dr")
    env = {"VIGIL_BACKUP_S3_ENDPOINT_URL": s3, "VIGIL_BACKUP_S3_BUCKET": "vigil-dr"}
    with (
        throwaway_postgres("vigil_bk_src") as source,
        throwaway_postgres("vigil_bk_dst") as fresh,
    ):
        fill(source)
        before = row_counts(source)
        assert before["public.jobs_log"] == 2000
        assert before["public.probe"] == 3000
        done = vigil("backup", cwd=tmp_path, VIGIL_DATABASE_URL=source, **env)
        assert done.returncode == 0, done.stderr
        logged = [json.loads(line) for line in done.stderr.splitlines()]  # JSON lines
        messages = [line["msg"] for line in logged if line["logger"] == "vigil.backup"]
        assert messages[0].startswith("backup: dumping postgres@127.0.0.1:5432/vigil_bk_src_")
        assert "backup: uploaded 100 % (" in " ".join(messages)
        assert messages[-1].startswith("backup: done: vigil/vigil-")
        (key,) = keys(s3, "vigil-dr")
        assert key.startswith("vigil/vigil-")
        assert key.endswith(".dump")
        listed = vigil("backup", "--list", cwd=tmp_path, **env)
        assert key in listed.stdout

        restored = vigil("restore", "--into", fresh, cwd=tmp_path, **env)
        assert restored.returncode == 0, restored.stderr
        assert f"restore: {key} restored" in restored.stderr
        assert row_counts(fresh) == before
        with psycopg.connect(libpq(source)) as a, psycopg.connect(libpq(fresh)) as b:
            checksum = "SELECT md5(string_agg(probe::text, ',' ORDER BY id)) FROM probe"
            assert a.execute(checksum).fetchone() == b.execute(checksum).fetchone()
            head = "SELECT version_num FROM alembic_version"
            assert a.execute(head).fetchone() == b.execute(head).fetchone()
            # Sequences came along: a new row gets the next id, not a duplicate.
            new_id = b.execute("INSERT INTO probe (note) VALUES ('n') RETURNING id").fetchone()
            assert new_id == (3001,)
        # Restoring again into the now non-empty database is refused, nothing touched.
        again = vigil("restore", "--into", fresh, cwd=tmp_path, **env)
        assert again.returncode == 1
        assert "is not empty" in again.stderr
        assert row_counts(fresh)["public.probe"] == 3001


def test_retention_keeps_the_newest_and_the_recent(s3: str, tmp_path: Path) -> None:
    make_bucket(s3, "keep")
    s3c = client(s3)
    now = datetime(2026, 6, 30, 2, 0, tzinfo=UTC)
    days_ago = [1, 2, 5, 12, 40, 41, 90]
    for days in days_ago:
        name = backup.dump_name(now - timedelta(days=days))
        s3c.put_object(Bucket="keep", Key=f"p/{name}", Body=b"old")
    # Not dumps of this prefix: never touched.
    s3c.put_object(Bucket="keep", Key="p/notes.txt", Body=b"x")
    s3c.put_object(Bucket="keep", Key="p/sub/vigil-20200101T000000Z.dump", Body=b"x")
    with throwaway_postgres("vigil_bk_ret") as source:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=source,
            data_dir=tmp_path,
            backup_s3_endpoint_url=s3,
            backup_s3_bucket="keep",
            backup_s3_prefix="p/",
            backup_s3_access_key_id="testing",
            backup_s3_secret_access_key="t3st",
            backup_keep_last=5,
            backup_keep_days=10,
        )
        lines: list[str] = []
        result = backup.run_backup(settings, lines.append, now=now)
    # Kept: the new dump and the 1-, 2- and 5-day-old ones (younger than 10 days), which with
    # the 12-day-old one are the newest five; deleted: 40, 41 and 90 days old.
    expected_deleted = sorted(
        f"p/{backup.dump_name(now - timedelta(days=d))}" for d in (40, 41, 90)
    )
    assert sorted(result.deleted) == expected_deleted
    assert keys(s3, "keep") == sorted(
        [
            "p/notes.txt",
            "p/sub/vigil-20200101T000000Z.dump",
            f"p/{backup.dump_name(now)}",
            *(f"p/{backup.dump_name(now - timedelta(days=d))}" for d in (1, 2, 5, 12)),
        ]
    )
    assert any("5 dumps kept, 3 deleted" in line for line in lines)


def test_retention_rules() -> None:
    now = datetime(2026, 6, 30, tzinfo=UTC)
    dumps = [backup.Dump(f"k{d}", now - timedelta(days=d), 1) for d in (0, 3, 8, 20)]
    assert {d.key for d in backup.expired(dumps, 2, 0, now)} == {"k8", "k20"}
    assert {d.key for d in backup.expired(dumps, 0, 5, now)} == {"k8", "k20"}
    assert {d.key for d in backup.expired(dumps, 3, 5, now)} == {"k20"}
    assert {d.key for d in backup.expired(dumps, 1, 30, now)} == set()
    assert backup.expired(dumps, 0, 0, now) == []


def test_failures_exit_non_zero_with_a_message(s3: str, tmp_path: Path) -> None:
    make_bucket(s3, "fail")
    env = {"VIGIL_BACKUP_S3_ENDPOINT_URL": s3}
    with throwaway_postgres("vigil_bk_fail") as source:
        missing = vigil(
            "backup", cwd=tmp_path, VIGIL_DATABASE_URL=source, VIGIL_BACKUP_S3_BUCKET="nope", **env
        )
        assert missing.returncode == 1
        assert "bucket 'nope' does not exist" in missing.stderr
        gone = source.rsplit("/", 1)[0] + "/vigil_no_such_database"
        failed = vigil(
            "backup", cwd=tmp_path, VIGIL_DATABASE_URL=gone, VIGIL_BACKUP_S3_BUCKET="fail", **env
        )
        assert failed.returncode == 1
        assert "pg_dump failed (exit 1)" in failed.stderr
        assert "vigil_no_such_database" in failed.stderr
        assert keys(s3, "fail") == []  # nothing half-uploaded
        sqlite = vigil("backup", cwd=tmp_path, VIGIL_BACKUP_S3_BUCKET="fail", **env)
        assert sqlite.returncode == 1
        assert "backups need PostgreSQL" in sqlite.stderr
        no_dump = vigil(
            "restore",
            "--into",
            source,
            "--name",
            "vigil-20990101T000000Z.dump",
            cwd=tmp_path,
            VIGIL_BACKUP_S3_BUCKET="fail",
            **env,
        )
        assert no_dump.returncode == 1
        assert "no dump 'vigil-20990101T000000Z.dump'" in no_dump.stderr
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = vigil(
        "backup",
        "--list",
        cwd=tmp_path,
        VIGIL_BACKUP_S3_ENDPOINT_URL=closed,
        VIGIL_BACKUP_S3_BUCKET="fail",
    )
    assert unreachable.returncode == 1
    assert f"cannot reach S3 at {closed}" in unreachable.stderr


def test_the_password_travels_outside_the_command_line() -> None:
    target = backup.Target.from_url("postgresql+psycopg://u:pa%40ss@db:5433/v?sslmode=require")
    assert "pa" not in target.dsn.split("@")[0].split(":")[-1]
    assert target.dsn == "postgresql://u@db:5433/v?sslmode=require"
    assert target.env()["PGPASSWORD"] == "pa@ss"
    assert target.label == "u@db:5433/v"
