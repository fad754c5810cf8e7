"""Shared fixtures: real databases (SQLite file and the PostgreSQL server on this machine),
each built by running the migrations, with a rolled-back transaction around every test.

Set VIGIL_REQUIRE_SERVICES=1 (CI does) to turn "PostgreSQL unavailable" skips into failures.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from vigil.core.db import Database, make_engine
from vigil.core.migrate import upgrade_to_head

FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_DSN = os.environ.get("VIGIL_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_SERVICES = os.environ.get("VIGIL_REQUIRE_SERVICES") == "1"


def service_unavailable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (VIGIL_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@contextmanager
def throwaway_postgres(prefix: str) -> Iterator[str]:
    """Creates a fresh PostgreSQL database and yields its SQLAlchemy URL; drops it after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        service_unavailable(f"PostgreSQL unreachable at {PG_ADMIN_DSN}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One migrated database per backend for the whole run."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "vigil.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade_to_head(engine)
        yield engine
        engine.dispose()
        return
    with throwaway_postgres("vigil_test") as url:
        engine = make_engine(url)
        upgrade_to_head(engine)
        yield engine
        engine.dispose()


class TransactionalDatabase(Database):
    """A Database whose sessions all run inside one outer transaction that the test rolls
    back; a session's commit only releases its savepoint."""

    def __init__(self, engine: Engine, connection: Connection) -> None:
        super().__init__(engine)
        self.connection = connection
        self.sessions = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )


@pytest.fixture
def db(migrated_engine: Engine) -> Iterator[TransactionalDatabase]:
    connection = migrated_engine.connect()
    outer = connection.begin()
    try:
        yield TransactionalDatabase(migrated_engine, connection)
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def session(db: TransactionalDatabase) -> Iterator[Session]:
    with db.session() as s:
        yield s
