"""The API app over a test database, with settings overridden per test."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from vigil.core.api import create_app
from vigil.core.runtime import Runtime
from vigil.settings import Settings


def api(db: TransactionalDatabase, **settings: object) -> tuple[TestClient, Runtime]:
    runtime = Runtime.create(Settings(**settings), db=db)  # type: ignore[arg-type]
    return TestClient(create_app(runtime)), runtime
