"""Every route of the app declares who may call it, and every role gets what its
permissions say: allowed → not 401/403 (2xx, or a 4xx about the input), denied → 403,
anonymous → 401, every refusal a problem document."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import bearer, login, make_user
from vigil.core.auth.permissions import Role, permissions_of
from vigil.core.auth.policy import RoutePolicy, route_policies

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
ROLES = [Role.ADMIN, Role.OPERATOR, Role.VIEWER, Role.USER]
#: A value for each path parameter: well-formed, naming nothing that exists.
PATH_VALUES = {"rule_id": "999999", "user_id": "999999", "token_id": "999999", "name": "nope"}


@pytest.fixture
def app(db: TransactionalDatabase) -> tuple[TestClient, Any]:
    return api(
        db,
        cache_ttl=0,
        rate_limit="",
        login_rate_limit_ip="100000/minute",
        login_rate_limit_account="100000/minute",
        coingecko_base_url="http://127.0.0.1:9/api/v3",  # nothing listens: never reached
        coingecko_max_attempts=1,
    )


def _routes(client: TestClient) -> list[RoutePolicy]:
    return list(route_policies(client.app.routes))  # type: ignore[attr-defined]


def test_every_route_declares_a_policy(app: tuple[TestClient, Any]) -> None:
    client, _ = app
    routes = _routes(client)
    assert len(routes) > 30  # the included routers' routes are there, not just the app's
    missing = [f"{sorted(r.methods)} {r.path}" for r in routes if not r.policies]
    assert not missing, f"routes without a policy (add Depends(public) or require(...)): {missing}"
    mixed = [
        r.path
        for r in routes
        if any(p.is_public for p in r.policies) and any(not p.is_public for p in r.policies)
    ]
    assert not mixed, f"routes both public and protected: {mixed}"


def test_the_policy_of_known_routes(app: tuple[TestClient, Any]) -> None:
    client, _ = app
    found = {(m, r.path): r.policies for r in _routes(client) for m in r.methods}
    assert [str(p) for p in found[("GET", "/health")]] == ["public"]
    assert [str(p) for p in found[("GET", "/metrics")]] == ["public"]
    assert [str(p) for p in found[("GET", "/api/v1/markets/rates")]] == ["public"]
    for write in [("POST", "/api/v1/markets/assets"), ("DELETE", "/api/v1/markets/sources/{name}")]:
        assert [str(p) for p in found[write]] == ["require('markets.write')"]


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES.get(m.group(1), "1"), path)


def _assert_problem(response: Any, status: int, where: str) -> None:
    assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", where


def test_every_role_against_every_protected_route(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    auth = client.app.state.auth  # type: ignore[attr-defined]
    emails = {role: make_user(db, auth, role).email for role in ROLES}
    # The API's routes (problem+json). The web UI's pages and forms declare their policies
    # too (the test above), but answer HTML, redirect to the sign-in page and check CSRF on
    # every form: their own tests cover what each role gets.
    protected = [
        (method, r)
        for r in _routes(client)
        for method in sorted(r.methods - {"HEAD"})
        if r.path.startswith("/api/")
        if r.policies and not any(p.is_public for p in r.policies)
    ]
    assert {m for m, _ in protected} >= MUTATING
    checked = 0
    for method, route in protected:
        url = _url(route.path)
        where = f"{method} {route.path}"
        anonymous = client.request(method, url, json={})
        _assert_problem(anonymous, 401, f"anonymous {where}")
        assert anonymous.headers["www-authenticate"] == "Bearer"
        needed = {p.permission for p in route.policies}
        for role in ROLES:
            # A fresh session per call: logout ends the one it is called with.
            token = login(client, emails[role])["access_token"]
            response = client.request(method, url, json={}, headers=bearer(token))
            who = f"{role.value} {where}"
            if needed <= permissions_of(role):
                assert response.status_code not in (401, 403), f"{who}: {response.text}"
                assert response.status_code < 500, f"{who}: {response.text}"
            else:
                _assert_problem(response, 403, who)
            checked += 1
    assert checked >= 4 * 13


def test_public_writes_need_no_token(app: tuple[TestClient, Any]) -> None:
    client, _ = app
    for url in ("/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/auth/register"):
        response = client.post(url, json={})
        assert response.status_code == 422, url  # about the input, not about who is asking
