"""Accounts for API tests: cheap argon2 parameters and a fixed signing key (the defaults
cost ~130 ms a hash and write a key under ./data), users of any role, signed-in clients."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from vigil.core.auth import service
from vigil.core.auth.models import User
from vigil.core.auth.permissions import Role
from vigil.core.auth.service import AuthService

TEST_AUTH_SETTINGS: dict[str, Any] = {
    "jwt_secret": "test-signing-key-that-is-at-least-32-bytes-long",
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8,
    "argon2_parallelism": 1,
}
PASSWORD = "correct horse battery"
TOKEN_URL = "/api/v1/auth/token"
_serial = itertools.count(1)


def make_user(
    db: TransactionalDatabase,
    auth: AuthService,
    role: Role | str = Role.OPERATOR,
    email: str | None = None,
    password: str = PASSWORD,
    active: bool = True,
) -> User:
    email = email or f"{Role(role).value}{next(_serial)}@example.org"
    with db.session(write=True) as session:
        user = service.create_user(session, auth.passwords, email, password, role=Role(role))
        user.active = active
    return user


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post(TOKEN_URL, data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(
    client: TestClient, db: TransactionalDatabase, role: Role | str = Role.OPERATOR
) -> dict[str, Any]:
    """Creates a user of ``role``, signs in, and sends its access token with every request
    of ``client`` from now on. Returns the tokens and the user's email."""
    auth: AuthService = client.app.state.auth  # type: ignore[attr-defined]
    user = make_user(db, auth, role)
    tokens = login(client, user.email)
    client.headers.update(bearer(tokens["access_token"]))
    return {**tokens, "email": user.email, "user_id": user.id}
