"""`vigil backup` and `vigil restore`: PostgreSQL dumps (pg_dump, custom format) kept in
S3-compatible storage (boto3), with retention. docs/DISASTER_RECOVERY.md is the procedure.

pg_dump and pg_restore come from PostgreSQL's client tools on PATH; their major version must
be the server's or newer. The password never reaches a command line (PGPASSWORD instead), and
no message here prints a URL with its password.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL, make_url

from vigil.settings import Settings

Echo = Callable[[str], None]

#: Dumps are named vigil-<UTC time>.dump under the prefix; retention touches only such keys.
_NAME = re.compile(r"vigil-(\d{8}T\d{6}Z)\.dump$")


class BackupError(Exception):
    """A backup or restore step failed; the message says which and what to check."""


@dataclass(frozen=True)
class Dump:
    key: str
    taken: datetime
    size: int


@dataclass(frozen=True)
class Target:
    """A PostgreSQL database as libpq wants it: a URL without the password, which travels in
    PGPASSWORD so it is never visible in the process list."""

    dsn: str
    password: str | None
    label: str  # user@host:port/db, for messages

    @classmethod
    def from_url(cls, url: str) -> Target:
        parsed = make_url(url.strip())
        if parsed.get_backend_name() != "postgresql":
            raise BackupError(
                f"backups need PostgreSQL; the database is {parsed.get_backend_name()} "
                "(VIGIL_DATABASE_URL). The embedded SQLite file is backed up by copying "
                "<data_dir>/vigil.db while Vigil is stopped."
            )
        # (URL.set ignores None: a new URL without the password instead.)
        plain = URL.create(
            "postgresql",
            username=parsed.username,
            host=parsed.host,
            port=parsed.port,
            database=parsed.database,
            query=parsed.query,
        )
        label = f"{parsed.username or ''}@{parsed.host or 'localhost'}:{parsed.port or 5432}"
        return cls(
            dsn=plain.render_as_string(hide_password=False),
            password=parsed.password,
            label=f"{label}/{parsed.database}",
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env


def dump_name(now: datetime) -> str:
    return f"vigil-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.dump"


# --- S3 ---------------------------------------------------------------------------------------


def s3_client(settings: Settings) -> Any:
    import boto3  # noqa: PLC0415  # only the backup commands need it
    from botocore.config import Config  # noqa: PLC0415

    endpoint = settings.backup_s3_endpoint_url.strip() or None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=settings.backup_s3_region or None,
        aws_access_key_id=settings.backup_s3_access_key_id.get_secret_value() or None,
        aws_secret_access_key=settings.backup_s3_secret_access_key.get_secret_value() or None,
        config=Config(
            connect_timeout=10,
            read_timeout=120,
            retries={"max_attempts": 5, "mode": "standard"},
            # MinIO and most self-hosted S3 servers want path-style addressing.
            s3={"addressing_style": "path" if endpoint else "auto"},
        ),
    )


@contextmanager
def _s3_errors(action: str, settings: Settings) -> Iterator[None]:
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    bucket = settings.backup_s3_bucket
    where = settings.backup_s3_endpoint_url or "AWS S3"
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchBucket"}:
            raise BackupError(
                f"{action}: bucket {bucket!r} does not exist at {where}: create it, or fix "
                "VIGIL_BACKUP_S3_BUCKET / VIGIL_BACKUP_S3_ENDPOINT_URL"
            ) from None
        if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            raise BackupError(
                f"{action}: S3 refused access to bucket {bucket!r} at {where} ({code}): check "
                "VIGIL_BACKUP_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY and the bucket's policy"
            ) from None
        raise BackupError(f"{action}: S3 error {code} on bucket {bucket!r} at {where}") from None
    except EndpointConnectionError:
        raise BackupError(
            f"{action}: cannot reach S3 at {where}: check VIGIL_BACKUP_S3_ENDPOINT_URL and the "
            "network policy's egress"
        ) from None
    except NoCredentialsError:
        raise BackupError(
            f"{action}: no S3 credentials: set VIGIL_BACKUP_S3_ACCESS_KEY_ID and "
            "VIGIL_BACKUP_S3_SECRET_ACCESS_KEY (or their _FILE, or Vault)"
        ) from None
    except BotoCoreError as exc:
        raise BackupError(f"{action}: S3 at {where}: {exc}") from None


def list_dumps(client: Any, bucket: str, prefix: str) -> list[Dump]:
    """The dumps under ``prefix``, oldest first (other keys there are ignored)."""
    dumps = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            match = _NAME.search(key)
            if match and key[len(prefix) :] == match.group(0):
                taken = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                dumps.append(Dump(key, taken, int(item["Size"])))
    return sorted(dumps, key=lambda d: d.taken)


def expired(dumps: list[Dump], keep_last: int, keep_days: int, now: datetime) -> list[Dump]:
    """The dumps retention deletes: those neither among the newest ``keep_last`` nor younger
    than ``keep_days`` days (a rule set to 0 keeps nothing by itself; both 0: delete none)."""
    if keep_last == 0 and keep_days == 0:
        return []
    newest = sorted(dumps, key=lambda d: d.taken, reverse=True)
    kept = {d.key for d in newest[:keep_last]}
    if keep_days:
        kept |= {d.key for d in dumps if d.taken > now - timedelta(days=keep_days)}
    return [d for d in dumps if d.key not in kept]


# --- pg_dump / pg_restore ---------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} not found on PATH: install PostgreSQL's client tools of the server's "
            "major version (Debian: postgresql-client-<major>)"
        )
    return path


def _run(command: list[str], target: Target, what: str) -> None:
    result = subprocess.run(command, env=target.env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip() or result.stdout.strip() or "no message"
        hint = ""
        if "version mismatch" in detail:
            hint = " (use the client tools of the server's major version or newer)"
        raise BackupError(f"{what} failed (exit {result.returncode}): {detail}{hint}")


def _size(size: int) -> str:
    return f"{size / 1048576:.2f} MiB" if size >= 1048576 else f"{size / 1024:.1f} KiB"


class _UploadProgress:
    """Prints a line at each quarter of the upload (CronJob logs: no carriage returns)."""

    def __init__(self, total: int, echo: Echo) -> None:
        self.total, self.done, self.next, self.echo = max(total, 1), 0, 25, echo

    def __call__(self, chunk: int) -> None:
        self.done += chunk
        percent = self.done * 100 // self.total
        while percent >= self.next and self.next <= 100:
            self.echo(f"backup: uploaded {self.next} % ({_size(self.done)})")
            self.next += 25


# --- the commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    key: str
    size: int
    deleted: list[str]


def _bucket(settings: Settings) -> str:
    if not settings.backup_s3_bucket.strip():
        raise BackupError("no bucket: set VIGIL_BACKUP_S3_BUCKET")
    return settings.backup_s3_bucket.strip()


def run_backup(settings: Settings, echo: Echo, now: datetime | None = None) -> BackupResult:
    """pg_dump the configured database, check the dump reads back, upload it, apply
    retention. Raises BackupError (nothing deleted) when a step fails."""
    target = Target.from_url(settings.effective_database_url)
    bucket, prefix = _bucket(settings), settings.backup_s3_prefix
    client = s3_client(settings)
    with _s3_errors("checking the bucket", settings):
        client.head_bucket(Bucket=bucket)
    now = now or datetime.now(UTC)
    name = dump_name(now)
    workdir = settings.backup_dir or Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(dir=workdir, prefix="vigil-backup-") as tmp:
        path = Path(tmp) / name
        echo(f"backup: dumping {target.label} (pg_dump --format=custom) …")
        started = time.monotonic()
        _run(
            [_tool("pg_dump"), "--format=custom", "--file", str(path), "--dbname", target.dsn],
            target,
            "pg_dump",
        )
        size = path.stat().st_size
        # A dump pg_restore cannot read is no backup: check its table of contents now.
        _run([_tool("pg_restore"), "--list", str(path)], target, "reading the dump back")
        echo(f"backup: dumped {_size(size)} in {time.monotonic() - started:.1f} s")
        key = prefix + name
        echo(f"backup: uploading to s3://{bucket}/{key} …")
        started = time.monotonic()
        with _s3_errors("uploading", settings):
            client.upload_file(str(path), bucket, key, Callback=_UploadProgress(size, echo))
            stored = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        if stored != size:
            raise BackupError(f"uploading: s3://{bucket}/{key} holds {stored} bytes, not {size}")
        echo(f"backup: uploaded in {time.monotonic() - started:.1f} s")
    with _s3_errors("applying retention", settings):
        dumps = list_dumps(client, bucket, prefix)
        old = expired(dumps, settings.backup_keep_last, settings.backup_keep_days, now)
        for dump in old:
            client.delete_object(Bucket=bucket, Key=dump.key)
    echo(
        f"backup: retention (newest {settings.backup_keep_last}, "
        f"{settings.backup_keep_days} days): {len(dumps) - len(old)} dumps kept, "
        f"{len(old)} deleted{': ' + ', '.join(d.key for d in old) if old else ''}"
    )
    return BackupResult(key, size, [d.key for d in old])


def stored_dumps(settings: Settings) -> list[Dump]:
    client = s3_client(settings)
    with _s3_errors("listing the dumps", settings):
        return list_dumps(client, _bucket(settings), settings.backup_s3_prefix)


def _has_tables(target: Target) -> bool:
    try:
        with psycopg.connect(target.dsn, password=target.password, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN "
                "('pg_catalog', 'information_schema')"
            ).fetchone()
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to {target.label}: {exc}".strip()) from None
    return bool(row and row[0])


def run_restore(
    settings: Settings, into: str, echo: Echo, name: str | None = None, clean: bool = False
) -> str:
    """Download the dump ``name`` (a key or a file name; default the newest) and pg_restore
    it into the database ``into`` (a PostgreSQL URL), in one transaction. Returns the key."""
    target = Target.from_url(into)
    bucket, prefix = _bucket(settings), settings.backup_s3_prefix
    client = s3_client(settings)
    with _s3_errors("listing the dumps", settings):
        dumps = list_dumps(client, bucket, prefix)
    if name:
        chosen = [d for d in dumps if name in (d.key, d.key[len(prefix) :])]
        if not chosen:
            raise BackupError(f"no dump {name!r} under s3://{bucket}/{prefix} (see --list)")
    elif not dumps:
        raise BackupError(f"no dumps under s3://{bucket}/{prefix}")
    dump = (chosen if name else dumps)[-1]
    if _has_tables(target) and not clean:
        raise BackupError(
            f"{target.label} is not empty: restore into a new database (createdb), or pass "
            "--clean to drop and replace the objects the dump holds"
        )
    workdir = settings.backup_dir or Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(dir=workdir, prefix="vigil-restore-") as tmp:
        path = Path(tmp) / Path(dump.key).name
        echo(f"restore: downloading s3://{bucket}/{dump.key} ({_size(dump.size)}) …")
        with _s3_errors("downloading", settings):
            client.download_file(bucket, dump.key, str(path))
        echo(f"restore: pg_restore into {target.label} …")
        started = time.monotonic()
        command = [_tool("pg_restore"), "--dbname", target.dsn, "--exit-on-error"]
        command += ["--single-transaction", "--no-owner", "--no-privileges"]
        if clean:
            command += ["--clean", "--if-exists"]
        _run([*command, str(path)], target, "pg_restore")
    echo(f"restore: done in {time.monotonic() - started:.1f} s")
    return dump.key
