"""Job locks that also hold across processes, so a job already running (in `vigil up`, a CLI
command or, later, a worker) is never started twice.

- PostgreSQL: a session-level advisory lock on a connection held for the job's duration.
- SQLite file: an ``flock`` on a file beside the database.
- Always: a thread lock, for runs inside one process.
Both OS-level kinds are released by the kernel/server if the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


def _advisory_key(name: str) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _postgres_lock(engine: Engine, name: str) -> Iterator[bool]:
    key = _advisory_key(name)
    with engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def job_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Yields True when this caller holds the lock for ``name``, False when someone else does."""
    tlock = _thread_lock(f"{engine.url}|{name}")
    if not tlock.acquire(blocking=False):
        yield False
        return
    try:
        if engine.dialect.name == "postgresql":
            with _postgres_lock(engine, name) as got:
                yield got
        elif engine.url.database and engine.url.database != ":memory:":
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
            path = (
                Path(engine.url.database).with_name(f"{Path(engine.url.database).name}.locks")
                / f"{safe}.lock"
            )
            with _file_lock(path) as got:
                yield got
        else:
            yield True
    finally:
        tlock.release()
