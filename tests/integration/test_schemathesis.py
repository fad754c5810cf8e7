"""The API against its own OpenAPI schema (schemathesis): every documented operation, with
generated input, signed in as an Admin (a fresh session per call), answers without a 5xx and
as its schema says (status codes, content types, bodies). Bounded: EXAMPLES per operation,
so the run takes well under two minutes on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.openapi import from_asgi

from tests.conftest import TransactionalDatabase
from tests.fakes.books_server import FakeBooks
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.app import api
from tests.support.auth import make_user
from vigil.core.auth.permissions import Role
from vigil.core.auth.tokens import issue_access, new_session_id

EXAMPLES = 20


@pytest.fixture
def coingecko() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko({"bitcoin": {"usd": "91000.25"}}) as fake:
        yield fake


@pytest.fixture
def books() -> Iterator[FakeBooks]:
    with FakeBooks() as fake:
        yield fake


def test_every_operation_keeps_to_the_schema(
    db: TransactionalDatabase, coingecko: FakeCoinGecko, books: FakeBooks
) -> None:
    client, _ = api(
        db,
        rate_limit="",
        login_rate_limit_ip="100000/minute",
        login_rate_limit_account="100000/minute",
        coingecko_base_url=coingecko.base_url,
        coingecko_max_attempts=1,
        google_books_base_url=books.google_url,
        open_library_base_url=books.open_library_url,
        books_max_attempts=1,
    )
    app: Any = client.app
    auth = app.state.auth
    admin = make_user(db, auth, Role.ADMIN, email="schema-admin@example.org")

    def headers() -> dict[str, str]:
        # Minted, not signed in: a generated call may deactivate or demote this very Admin
        # or end its sessions; each call gets a session of its own.
        token = issue_access(
            auth.keys,
            admin.id,
            admin.email,
            "admin",
            new_session_id(),
            datetime.now(UTC),
            timedelta(minutes=5),
        )
        return {"Authorization": f"Bearer {token}"}

    schema = from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(headers=headers())
            # Business rules (a known asset, a free name, a valid cron) refuse some inputs
            # the schema allows, with a 4xx: that is not a failure here.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's, not the first only
            failures.append(f"{operation.label}: {exc}")
    assert operations > 30
    assert not failures, "\n\n".join(failures)
