"""The API app over a test database, with settings overridden per test."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.support.auth import TEST_AUTH_SETTINGS, sign_in
from vigil.core.api import create_app
from vigil.core.auth.permissions import Role
from vigil.core.runtime import Runtime
from vigil.settings import Settings


def api(
    db: TransactionalDatabase, as_role: Role | str | None = None, **settings: object
) -> tuple[TestClient, Runtime]:
    """A client of a new app; with ``as_role`` it is signed in as a new user of that role
    (e.g. ``as_role="operator"`` for the markets writes)."""
    runtime = Runtime.create(Settings(**{**TEST_AUTH_SETTINGS, **settings}), db=db)  # type: ignore[arg-type]
    client = TestClient(create_app(runtime))
    if as_role is not None:
        sign_in(client, db, as_role)
    return client, runtime
