"""SQLite (the embedded default) with two writers at once, as in `vigil up` when a
scheduled job fires during another one, or the CLI runs beside the server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from vigil.core.db import Database


@pytest.fixture
def file_db(tmp_path: Path) -> Database:
    db = Database.from_url(f"sqlite:///{tmp_path / 'c.db'}")
    with db.session(write=True) as session:
        session.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
    return db


def read_then_write(
    db: Database, key: int, hold: threading.Event | None, go: threading.Event | None, write: bool
) -> None:
    with db.session(write=write) as session:
        session.execute(text("SELECT count(*) FROM t")).scalar()  # a read first...
        if go is not None:
            go.set()
        if hold is not None:
            hold.wait(5)
        session.execute(text("INSERT INTO t VALUES (:k, 'x')"), {"k": key})  # ...then a write


def run_two_writers(db: Database, write: bool) -> list[BaseException]:
    errors: list[BaseException] = []
    first_has_read = threading.Event()
    release_first = threading.Event()

    thread = threading.Thread(
        target=lambda: _catch(
            errors, lambda: read_then_write(db, 1, release_first, first_has_read, write)
        )
    )
    thread.start()
    first_has_read.wait(5)
    # The second writer commits while the first is between its read and its write.
    second = threading.Thread(
        target=lambda: _catch(errors, lambda: read_then_write(db, 2, None, None, write))
    )
    second.start()
    second.join(0.5)
    release_first.set()
    thread.join(10)
    second.join(10)
    return errors


def _catch(errors: list[BaseException], work: Callable[[], None]) -> None:
    try:
        work()
    except BaseException as exc:
        errors.append(exc)


def test_write_sessions_queue_instead_of_failing(file_db: Database) -> None:
    assert run_two_writers(file_db, write=True) == []
    with file_db.session() as session:
        assert session.execute(text("SELECT k FROM t ORDER BY k")).scalars().all() == [1, 2]


def test_deferred_read_then_write_is_what_fails(file_db: Database) -> None:
    """Why write sessions exist: the same work in plain sessions loses with 'locked'."""
    errors = run_two_writers(file_db, write=False)
    assert len(errors) == 1
    assert "locked" in str(errors[0])
