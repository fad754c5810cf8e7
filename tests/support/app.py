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


#: The network tests' collectors, quick: one echo request, SNMP answered within 0.3 s or not.
FAST_NETWORK = {
    "network_secret_key": "k",
    "network_snmp_timeout_seconds": 0.3,
    "network_snmp_retries": 0,
    "network_icmp_count": 1,
    "network_icmp_interval_seconds": 0.0,
    "network_icmp_timeout_seconds": 0.5,
}


def network_api(db: TransactionalDatabase, **settings: object) -> tuple[TestClient, Runtime]:
    """:func:`api` signed in as an Operator, without cache or rate limit, with the quick
    collectors of :data:`FAST_NETWORK` (``settings`` override them)."""
    return api(db, as_role="operator", cache_ttl=0, rate_limit="", **{**FAST_NETWORK, **settings})
