"""A value that passes validation but that the database refuses (PostgreSQL takes no NUL
character in text) is bad input: a 422 problem, never a 500, and nothing is written."""

from __future__ import annotations

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import TEST_AUTH_SETTINGS, sign_in
from vigil.core.auth.permissions import Role


def test_a_nul_character_in_a_filter_is_a_422_or_matches_nothing(
    db: TransactionalDatabase,
) -> None:
    client, _ = api(db, **TEST_AUTH_SETTINGS)
    with client:
        sign_in(client, db, Role.ADMIN)
        answer = client.get("/api/v1/audit", params={"action": "login\x00"})
        if db.dialect == "postgresql":
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert "NUL" in answer.json()["detail"]
        else:  # SQLite stores and compares NUL like any character
            assert answer.status_code == 200, answer.text
            assert answer.json()["items"] == []
        # The app goes on answering (the failed statement was rolled back).
        assert client.get("/api/v1/audit", params={"action": "login"}).status_code == 200
