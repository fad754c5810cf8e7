"""Accounts and tokens through the API: sign-in, refresh rotation, logout, expiry,
registration, user management, service tokens, the audit log and the login rate limit."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import PASSWORD, TOKEN_URL, bearer, login, make_user, sign_in
from vigil.core.auth.keys import KeyRing
from vigil.core.auth.models import AuditEntry
from vigil.core.auth.permissions import Role
from vigil.core.auth.tokens import issue_access

ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
REGISTER = "/api/v1/auth/register"
RULES = "/api/v1/markets/alert-rules"
SOURCES = "/api/v1/markets/sources"
TOKENS = "/api/v1/auth/service-tokens"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def audit_rows(db: TransactionalDatabase, **where: Any) -> list[AuditEntry]:
    with db.session() as session:
        query = session.query(AuditEntry).filter_by(**where).order_by(AuditEntry.id)
        return list(query)


@pytest.fixture
def app(db: TransactionalDatabase) -> tuple[TestClient, Any]:
    return api(db, cache_ttl=0, rate_limit="")


def test_the_token_endpoint_answers_exactly_the_oauth2_shape(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    user = make_user(db, client.app.state.auth, Role.VIEWER, email="Ada@Example.org")  # type: ignore[attr-defined]
    response = client.post(TOKEN_URL, data={"username": "ada@EXAMPLE.org", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type"}
    assert body["token_type"] == "bearer"
    assert response.headers["cache-control"] == "no-store"
    header = jwt.get_unverified_header(body["access_token"])
    assert header["kid"] == client.app.state.auth.keys.signing_kid  # type: ignore[attr-defined]
    me = client.get(ME, headers=bearer(body["access_token"])).json()
    assert me["user"]["email"] == "Ada@Example.org"
    assert me["user"]["role"] == "viewer"
    assert me["user"]["last_login"] is not None
    assert "markets.write" not in me["permissions"]
    [entry] = audit_rows(db, action="login")
    assert (entry.actor, entry.actor_user_id, entry.ip) == (user.email, user.id, "testclient")
    assert entry.request_id == response.headers["x-request-id"]
    # The schema's security scheme is the OAuth2 password flow at this path (Authorize).
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == TOKEN_URL


def test_unknown_email_and_wrong_password_get_the_same_answer_and_cost(
    db: TransactionalDatabase,
) -> None:
    # Real argon2 parameters here: the point is that both paths do the same work.
    client, _ = api(db, rate_limit="", argon2_time_cost=2, argon2_memory_kib=16384)
    make_user(db, client.app.state.auth, Role.USER, email="bo@example.org")  # type: ignore[attr-defined]

    def attempt(email: str) -> tuple[dict[str, Any], float]:
        start = time.perf_counter()
        response = client.post(TOKEN_URL, data={"username": email, "password": "not it at all"})
        elapsed = time.perf_counter() - start
        body = problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        return {k: v for k, v in body.items() if k != "request_id"}, elapsed

    wrong, wrong_time = attempt("bo@example.org")
    unknown, unknown_time = attempt("nobody@example.org")
    assert wrong == unknown
    assert wrong["detail"] == "Wrong email or password."
    timings = sorted([attempt("bo@example.org")[1], attempt("nobody@example.org")[1]])
    assert timings[1] < timings[0] * 3 + 0.02, timings  # no cheap path for unknown emails
    assert min(wrong_time, unknown_time) > 0.002  # both verified a hash
    failed = audit_rows(db, action="login.failed")
    assert [e.detail for e in failed][:2] == ["wrong password", "unknown email"]


def test_a_deactivated_account_cannot_sign_in(db: TransactionalDatabase, app: Any) -> None:
    client, _ = app
    make_user(db, client.app.state.auth, Role.OPERATOR, email="old@example.org", active=False)
    response = client.post(TOKEN_URL, data={"username": "old@example.org", "password": PASSWORD})
    assert problem(response, 401)["detail"] == "Wrong email or password."


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    user = make_user(db, client.app.state.auth, Role.OPERATOR)  # type: ignore[attr-defined]
    first = login(client, user.email)
    second = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type"}
    assert pair["refresh_token"] != first["refresh_token"]
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200
    # The first refresh token again: refused, and the whole session (its newer tokens too).
    reused = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert "used already" in problem(reused, 401)["detail"]
    problem(client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}), 401)
    problem(client.get(ME, headers=bearer(pair["access_token"])), 401)
    assert [e.entity_id for e in audit_rows(db, action="token.reuse")] != []
    problem(client.post(REFRESH, json={"refresh_token": "vrt_made-up"}), 401)


def test_logout_revokes_the_refresh_and_the_access_token(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    user = make_user(db, client.app.state.auth, Role.VIEWER)  # type: ignore[attr-defined]
    tokens = login(client, user.email)
    other = login(client, user.email)  # another session of the same user lives on
    assert client.post(LOGOUT, headers=bearer(tokens["access_token"])).status_code == 204
    assert (
        "signed out"
        in problem(client.get(ME, headers=bearer(tokens["access_token"])), 401)["detail"]
    )
    problem(client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}), 401)
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    assert len(audit_rows(db, action="logout")) == 1


def test_expired_and_forged_access_tokens_are_refused(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    auth = client.app.state.auth  # type: ignore[attr-defined]
    user = make_user(db, auth, Role.ADMIN)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    expired = issue_access(
        auth.keys, user.id, user.email, "admin", "s1", long_ago, timedelta(minutes=15)
    )
    assert "expired" in problem(client.get(ME, headers=bearer(expired)), 401)["detail"]
    stranger = KeyRing.of(b"another-key-of-at-least-32-bytes-long!!")
    now = datetime.now(UTC)
    forged = issue_access(stranger, user.id, user.email, "admin", "s2", now, timedelta(minutes=5))
    problem(client.get(ME, headers=bearer(forged)), 401)
    problem(client.get(ME, headers={"Authorization": "Basic abc"}), 401)
    problem(client.get(ME, headers=bearer("not.a.jwt")), 401)


def test_access_lifetime_comes_from_the_settings(db: TransactionalDatabase) -> None:
    client, _ = api(db, access_token_minutes=5)
    user = make_user(db, client.app.state.auth, Role.USER)  # type: ignore[attr-defined]
    claims = jwt.decode(
        login(client, user.email)["access_token"], options={"verify_signature": False}
    )
    assert claims["exp"] - claims["iat"] == 300
    assert claims["typ"] == "access"


def test_a_rotated_key_still_verifies_its_tokens(db: TransactionalDatabase) -> None:
    old_key = "the-old-signing-key-which-is-long-enough-0123"
    old_client, _ = api(db, jwt_secret=old_key)
    user = make_user(db, old_client.app.state.auth, Role.USER)  # type: ignore[attr-defined]
    token = login(old_client, user.email)["access_token"]
    rotated, _ = api(
        db, jwt_secret="the-new-signing-key-which-is-long-enough-4567", jwt_previous_secrets=old_key
    )
    assert rotated.get(ME, headers=bearer(token)).status_code == 200
    forgotten, _ = api(db, jwt_secret="the-new-signing-key-which-is-long-enough-4567")
    problem(forgotten.get(ME, headers=bearer(token)), 401)


def test_the_first_account_is_admin_later_ones_are_users(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    first = client.post(REGISTER, json={"email": "root@example.org", "password": PASSWORD})
    assert first.status_code == 201
    assert first.json()["role"] == "admin"
    second = client.post(
        REGISTER, json={"email": "reader@example.org", "password": PASSWORD, "display_name": "R"}
    )
    assert second.json()["role"] == "user"
    taken = client.post(REGISTER, json={"email": "READER@example.org", "password": PASSWORD})
    problem(taken, 409)
    problem(client.post(REGISTER, json={"email": "x@example.org", "password": "short"}), 422)
    problem(client.post(REGISTER, json={"email": "not-an-email", "password": PASSWORD}), 422)
    created = audit_rows(db, action="create", entity="auth.user")
    assert created[0].changes["role"] == {"before": None, "after": "admin"}  # type: ignore[index]


def test_registration_can_be_switched_off(db: TransactionalDatabase) -> None:
    client, _ = api(db, registration_enabled=False)
    response = client.post(REGISTER, json={"email": "a@example.org", "password": PASSWORD})
    assert "switched off" in problem(response, 403)["detail"]


def test_password_change_ends_the_other_sessions(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    user = make_user(db, client.app.state.auth, Role.USER)  # type: ignore[attr-defined]
    here, elsewhere = login(client, user.email), login(client, user.email)
    body = {"current_password": "wrong one!!", "new_password": "a new long password"}
    problem(
        client.post("/api/v1/auth/password", json=body, headers=bearer(here["access_token"])), 403
    )
    body["current_password"] = PASSWORD
    changed = client.post("/api/v1/auth/password", json=body, headers=bearer(here["access_token"]))
    assert changed.status_code == 204
    assert client.get(ME, headers=bearer(here["access_token"])).status_code == 200
    problem(client.get(ME, headers=bearer(elsewhere["access_token"])), 401)
    login(client, user.email, "a new long password")
    rows = audit_rows(db, action="password.change")
    assert len(rows) == 1
    assert rows[0].changes is None  # never the hash


def test_admins_list_users_change_roles_and_deactivate(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    admin = sign_in(client, db, Role.ADMIN)
    target = make_user(db, client.app.state.auth, Role.VIEWER)  # type: ignore[attr-defined]
    their = login(client, target.email)
    users = client.get("/api/v1/users").json()
    assert users["total"] == 2
    assert {u["email"] for u in users["items"]} == {admin["email"], target.email}
    promoted = client.patch(f"/api/v1/users/{target.id}", json={"role": "operator"})
    assert promoted.json()["role"] == "operator"
    problem(client.get(ME, headers=bearer(their["access_token"])), 401)  # a new role: sign in
    assert login(client, target.email)["access_token"]
    off = client.patch(f"/api/v1/users/{target.id}", json={"active": False})
    assert off.json()["active"] is False
    problem(client.post(TOKEN_URL, data={"username": target.email, "password": PASSWORD}), 401)
    # The last active Admin stays one.
    problem(client.patch(f"/api/v1/users/{admin['user_id']}", json={"role": "viewer"}), 409)
    problem(client.patch("/api/v1/users/999999", json={"active": False}), 404)
    [first, second] = audit_rows(db, action="update", entity="auth.user")
    assert first.changes == {"role": {"before": "viewer", "after": "operator"}}
    assert second.changes == {"active": {"before": True, "after": False}}
    assert first.actor == admin["email"]


def test_service_tokens_are_scoped_and_revocable(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    sign_in(client, db, Role.ADMIN)
    created = client.post(TOKENS, json={"name": "alertmanager", "scopes": ["markets.write"]})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("vst_")
    listed = client.get(TOKENS).json()
    assert [t["name"] for t in listed] == ["alertmanager"]
    assert "token" not in listed[0]
    machine = {"Authorization": f"Bearer {token}"}
    rule = {"window_minutes": 60, "threshold_pct": "5"}
    made = client.post(RULES, json=rule, headers=machine)
    assert made.status_code == 201
    problem(client.get("/api/v1/users", headers=machine), 403)  # outside its scope
    [entry] = audit_rows(db, entity="markets.alert_rule")
    assert entry.actor == "service:alertmanager"
    problem(client.post(TOKENS, json={"name": "alertmanager", "scopes": ["audit.read"]}), 409)
    problem(client.post(TOKENS, json={"name": "x", "scopes": ["root"]}), 422)
    assert client.delete(f"{TOKENS}/{created.json()['id']}").status_code == 204
    assert "revoked" in problem(client.post(RULES, json=rule, headers=machine), 401)["detail"]
    problem(client.post(RULES, json=rule, headers=bearer("vst_never-issued")), 401)


def test_every_markets_change_leaves_an_audit_row(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    operator = sign_in(client, db, Role.OPERATOR)
    rule = client.post(RULES, json={"window_minutes": 60, "threshold_pct": "5"}).json()
    client.put(
        f"{RULES}/{rule['id']}",
        json={"window_minutes": 30, "threshold_pct": "5", "cooldown_minutes": 15},
    )
    client.delete(f"{RULES}/{rule['id']}")
    client.post(
        SOURCES, json={"name": "nbp-mirror", "kind": "nbp", "base_url": "http://m.example/api"}
    )
    client.delete(f"{SOURCES}/nbp-mirror")
    rows = [
        (e.action, e.entity, e.entity_id) for e in audit_rows(db) if e.entity.startswith("markets.")
    ]
    assert rows == [
        ("create", "markets.alert_rule", str(rule["id"])),
        ("update", "markets.alert_rule", str(rule["id"])),
        ("delete", "markets.alert_rule", str(rule["id"])),
        ("create", "markets.source", "nbp-mirror"),
        ("delete", "markets.source", "nbp-mirror"),
    ]
    update = audit_rows(db, action="update", entity="markets.alert_rule")[0]
    assert update.changes == {
        "window_minutes": {"before": 60, "after": 30},
        "cooldown_minutes": {"before": 60, "after": 15},
    }
    assert update.actor == operator["email"]
    assert update.ip == "testclient"
    assert update.request_id
    # A refused change leaves nothing: not the change, not its audit row.
    before = len(audit_rows(db))
    problem(
        client.post(RULES, json={"window_minutes": 60, "threshold_pct": "5", "asset": "NOPE"}), 422
    )
    assert len(audit_rows(db)) == before


def test_the_audit_log_is_paged_and_filtered_for_admins(
    db: TransactionalDatabase, app: tuple[TestClient, Any]
) -> None:
    client, _ = app
    admin = sign_in(client, db, Role.ADMIN)
    viewer = make_user(db, client.app.state.auth, Role.VIEWER)  # type: ignore[attr-defined]
    login(client, viewer.email)
    client.post(TOKEN_URL, data={"username": viewer.email, "password": "nope nope nope"})
    client.post(RULES, json={"window_minutes": 60, "threshold_pct": "5"})
    everything = client.get("/api/v1/audit").json()
    assert everything["total"] == len(audit_rows(db))
    mine = client.get("/api/v1/audit", params={"user_id": admin["user_id"]}).json()
    assert {i["action"] for i in mine["items"]} == {"login", "create"}
    failed = client.get("/api/v1/audit", params={"action": "login.failed"}).json()
    assert [i["actor"] for i in failed["items"]] == [viewer.email]
    rules = client.get("/api/v1/audit", params={"entity": "markets.alert_rule"}).json()
    assert rules["total"] == 1
    page = client.get("/api/v1/audit", params={"limit": 2}).json()
    assert (len(page["items"]), page["next_offset"]) == (2, 2)
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert client.get("/api/v1/audit", params={"since": later}).json()["total"] == 0
    problem(
        client.get("/api/v1/audit", headers=bearer(login(client, viewer.email)["access_token"])),
        403,
    )


def test_sign_in_attempts_are_limited_per_account_and_per_address(
    db: TransactionalDatabase,
) -> None:
    client, _ = api(db, login_rate_limit_account="3/minute", login_rate_limit_ip="5/minute")
    user = make_user(db, client.app.state.auth, Role.USER)  # type: ignore[attr-defined]
    for _ in range(3):
        problem(
            client.post(TOKEN_URL, data={"username": user.email, "password": "bad password"}), 401
        )
    limited = client.post(TOKEN_URL, data={"username": user.email, "password": PASSWORD})
    body = problem(limited, 429)
    assert "this account" in body["detail"]
    assert int(limited.headers["retry-after"]) >= 1
    # Another account from the same address: the fifth attempt from it, then it is limited.
    for _ in range(1):
        problem(client.post(TOKEN_URL, data={"username": "x@example.org", "password": "p"}), 401)
    address = problem(
        client.post(TOKEN_URL, data={"username": "y@example.org", "password": "p"}), 429
    )
    assert "your address" in address["detail"]
    assert audit_rows(db, detail="rate limited")
