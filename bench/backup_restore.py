"""How long `vigil backup` and `vigil restore` take for a database of a given size: the
figures behind docs/DISASTER_RECOVERY.md's RTO. A throwaway PostgreSQL database on the local
server is migrated and filled (N job runs plus N rows of a table of types), moto's S3 server
runs on a loopback port, then run_backup and run_restore (into a fresh database) are timed
in this process. Prints the database size, the dump size and each step's seconds.

    .venv/bin/python bench/backup_restore.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
import httpx
import psycopg
from tests.conftest import throwaway_postgres
from tests.integration.test_backup import libpq, row_counts
from tests.support.redis_server import free_port

from vigil.core import backup
from vigil.core.db import make_engine
from vigil.core.migrate import upgrade_to_head
from vigil.settings import Settings


def fill(url: str, rows: int) -> None:
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    with psycopg.connect(libpq(url)) as conn:
        conn.execute(
            "INSERT INTO jobs_log (job_type, status, started_at, rows_written, parameters, "
            "worker, message) SELECT 'markets.nbp_sync', 'ok', now() - i * interval '1 minute', "
            "i, jsonb_build_object('i', i), 'worker-1', md5(i::text) "
            "FROM generate_series(1, %s) AS i",
            (rows,),
        )
        conn.execute(
            "CREATE TABLE probe (id bigserial PRIMARY KEY, rate numeric(18, 6), note text, "
            "at timestamptz, day date)"
        )
        conn.execute(
            "INSERT INTO probe (rate, note, at, day) SELECT i / 7.0, md5(i::text), now(), "
            "current_date - (i %% 9000) FROM generate_series(1, %s) AS i",
            (rows,),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket="bench")
        with (
            throwaway_postgres("vigil_bench_src") as source,
            throwaway_postgres("vigil_bench_dst") as fresh,
            tempfile.TemporaryDirectory() as tmp,
        ):
            started = time.monotonic()
            fill(source, args.rows)
            took = time.monotonic() - started
            print(f"filled {args.rows:,} + {args.rows:,} rows in {took:.1f} s")
            with psycopg.connect(libpq(source)) as conn:
                size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            print(f"database size: {size[0] / 1048576:.0f} MiB" if size else "")
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=source,
                data_dir=Path(tmp),
                backup_s3_endpoint_url=endpoint,
                backup_s3_bucket="bench",
                backup_s3_access_key_id="bench",
                backup_s3_secret_access_key="bench",
            )
            started = time.monotonic()
            result = backup.run_backup(settings, print)
            took = time.monotonic() - started
            print(f"BACKUP: {took:.1f} s, dump {result.size / 1048576:.1f} MiB")
            started = time.monotonic()
            backup.run_restore(settings, fresh, print)
            took = time.monotonic() - started
            print(f"RESTORE: {took:.1f} s")
            assert row_counts(fresh) == row_counts(source)
            print("row counts equal in every table")
    finally:
        moto.terminate()
        moto.wait(timeout=10)


if __name__ == "__main__":
    main()
