"""Database faults on the real PostgreSQL: every connection of the app is killed (as in a
server restart); the API and the jobs recover on their own, and nothing half-written stays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import PG_ADMIN_DSN, throwaway_postgres
from vigil.core.api import create_app
from vigil.core.db import Database
from vigil.core.runtime import Runtime
from vigil.markets import service
from vigil.markets.models import Price
from vigil.markets.sources.base import Quote, SeriesKind
from vigil.settings import Settings


@pytest.fixture
def pg_runtime() -> Iterator[tuple[Runtime, str]]:
    with throwaway_postgres("vigil_fault") as url:
        runtime = Runtime.create(Settings(database_url=url))
        runtime.migrate()
        yield runtime, url.rsplit("/", 1)[1]
        runtime.close()


def kill_connections(database: str) -> int:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(killed[0]) if killed else 0


def test_api_recovers_after_its_connections_are_killed(pg_runtime: tuple[Runtime, str]) -> None:
    runtime, name = pg_runtime
    with runtime.db.session() as session:
        service.store_quotes(
            session,
            [Quote("USD", "dolar", date(2024, 1, 2), Decimal("3.9432"))],
            SeriesKind.CURRENCY,
            "nbp",
        )
    with TestClient(create_app(runtime)) as client:
        assert client.get("/api/v1/markets/rates", params={"code": "USD"}).status_code == 200
        assert kill_connections(name) >= 1  # the pool held an idle connection
        again = client.get("/api/v1/markets/rates", params={"code": "USD"})
        assert again.status_code == 200
        assert again.json()["items"][0]["rate_mid"] == "3.9432"
        assert client.get("/health/ready").status_code == 200


def test_a_write_cut_off_mid_transaction_leaves_nothing_behind(
    pg_runtime: tuple[Runtime, str],
) -> None:
    runtime, name = pg_runtime
    quotes = [Quote("USD", "dolar", date(2024, 1, d), Decimal("4")) for d in range(2, 6)]

    def write_and_lose_the_connection_before_commit() -> None:
        with runtime.db.session() as session:
            service.store_quotes(session, quotes, SeriesKind.CURRENCY, "nbp")
            kill_connections(name)

    with pytest.raises(Exception, match=r"terminat|closed|connection"):
        write_and_lose_the_connection_before_commit()
    fresh = Database.from_url(runtime.settings.effective_database_url)
    with fresh.session() as session:
        assert session.scalar(select(func.count()).select_from(Price)) == 0
    fresh.dispose()
    # and the same runtime writes fine afterwards
    with runtime.db.session() as session:
        written = service.store_quotes(session, quotes, SeriesKind.CURRENCY, "nbp")
    assert sum(w.rows for w in written) == 4
