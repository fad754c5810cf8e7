"""The web UI's sign-in session through the real app (both backends): login and logout
pages, HttpOnly cookies, CSRF on every cookie-authenticated write, protected pages that
send the browser to sign in and back, silent renewal with the refresh cookie, and no open
redirect."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import PASSWORD, TEST_AUTH_SETTINGS, make_user
from tests.support.web import BROWSER, csrf_of, put_cookie, web_sign_in
from vigil.core.auth.models import AuditEntry
from vigil.core.auth.permissions import Role
from vigil.core.auth.service import AuthService
from vigil.core.auth.tokens import issue_access
from vigil.core.web.session import ACCESS_COOKIE, PRESESSION_COOKIE, REFRESH_COOKIE

RULE = {"threshold_pct": "5", "window_minutes": 60}


@pytest.fixture
def client(db: TransactionalDatabase) -> Iterator[TestClient]:
    test_client, _ = api(db, **TEST_AUTH_SETTINGS)
    with test_client:
        yield test_client


def auth_of(client: TestClient) -> AuthService:
    return client.app.state.auth  # type: ignore[attr-defined,no-any-return]


def test_signing_in_sets_httponly_cookies_and_shows_the_user(
    client: TestClient, db: TransactionalDatabase
) -> None:
    user = make_user(db, auth_of(client), Role.VIEWER)
    page = client.get("/login", headers=BROWSER)
    assert PRESESSION_COOKIE in page.cookies  # the login form's CSRF token is bound to it
    answer = client.post(
        "/login",
        data={"email": user.email.upper(), "password": PASSWORD, "next": "/markets/gold",
              "csrf_token": csrf_of(page.text)},
        headers=BROWSER, follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == "/markets/gold"
    cookies = answer.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith(f"{ACCESS_COOKIE}="))
    refresh = next(c for c in cookies if c.startswith(f"{REFRESH_COOKIE}="))
    assert "HttpOnly" in access
    assert "SameSite=lax" in access
    assert "HttpOnly" in refresh
    assert "SameSite=strict" in refresh
    home = client.get("/", headers=BROWSER).text
    assert user.email in home
    assert 'action="/logout"' in home
    assert "X-CSRF-Token" in home  # HTMX requests carry the token
    account = client.get("/account", headers=BROWSER)
    assert account.status_code == 200
    assert "viewer" in account.text


def test_login_without_the_csrf_token_is_refused(
    client: TestClient, db: TransactionalDatabase
) -> None:
    user = make_user(db, auth_of(client))
    client.get("/login", headers=BROWSER)
    answer = client.post(
        "/login", data={"email": user.email, "password": PASSWORD}, headers=BROWSER
    )
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert ACCESS_COOKIE not in client.cookies


def test_a_wrong_password_shows_the_form_again_with_the_message(
    client: TestClient, db: TransactionalDatabase
) -> None:
    user = make_user(db, auth_of(client))
    page = client.get("/login", headers=BROWSER)
    answer = client.post(
        "/login",
        data={"email": user.email, "password": "wrong password!", "csrf_token": csrf_of(page.text)},
        headers=BROWSER,
    )
    assert answer.status_code == 401
    assert "Wrong email or password." in answer.text
    assert f'value="{user.email}"' in answer.text  # the email is kept
    assert ACCESS_COOKIE not in client.cookies


def test_a_protected_page_sends_the_browser_to_sign_in_and_back(
    client: TestClient, db: TransactionalDatabase
) -> None:
    answer = client.get("/account", headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/account"
    htmx = client.get("/account", headers={**BROWSER, "HX-Request": "true"})
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"].startswith("/login?next=")
    user = make_user(db, auth_of(client))
    web_sign_in(client, user.email, "/account")
    assert client.get("/account", headers=BROWSER).status_code == 200


def test_cookie_writes_need_the_csrf_token(client: TestClient, db: TransactionalDatabase) -> None:
    user = make_user(db, auth_of(client), Role.OPERATOR)
    web_sign_in(client, user.email)
    token = csrf_of(client.get("/", headers=BROWSER).text)
    forged = client.post("/api/v1/markets/alert-rules", json=RULE)
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["detail"]
    wrong = client.post(
        "/api/v1/markets/alert-rules", json=RULE, headers={"X-CSRF-Token": "0" * 64}
    )
    assert wrong.status_code == 403
    made = client.post("/api/v1/markets/alert-rules", json=RULE, headers={"X-CSRF-Token": token})
    assert made.status_code == 201, made.text
    reads = client.get("/api/v1/markets/alert-rules")  # reads need no token
    assert reads.status_code == 200


def test_a_viewer_session_may_not_write(client: TestClient, db: TransactionalDatabase) -> None:
    user = make_user(db, auth_of(client), Role.VIEWER)
    web_sign_in(client, user.email)
    token = csrf_of(client.get("/", headers=BROWSER).text)
    answer = client.post("/api/v1/markets/alert-rules", json=RULE, headers={"X-CSRF-Token": token})
    assert answer.status_code == 403
    assert "markets.write" in answer.json()["detail"]


def test_an_expired_access_cookie_is_renewed_with_the_refresh_cookie(
    client: TestClient, db: TransactionalDatabase
) -> None:
    user = make_user(db, auth_of(client), Role.VIEWER)
    web_sign_in(client, user.email)
    old_refresh = client.cookies[REFRESH_COOKIE]
    auth = auth_of(client)
    claims = auth.identity_of_access_token(client.cookies[ACCESS_COOKIE])
    assert claims.session_id is not None
    expired = issue_access(
        auth.keys, user.id, user.email, user.role, claims.session_id,
        datetime.now(UTC) - timedelta(hours=1), timedelta(minutes=15),
    )  # fmt: skip
    put_cookie(client, ACCESS_COOKIE, expired)
    answer = client.get("/account", headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 200  # renewed before routing: no trip to the login page
    assert client.cookies[ACCESS_COOKIE] != expired
    assert client.cookies[REFRESH_COOKIE] != old_refresh  # rotated
    # The old refresh token is spent: presenting it again ends the session (reuse).
    put_cookie(client, ACCESS_COOKIE, expired)
    put_cookie(client, REFRESH_COOKIE, old_refresh)
    again = client.get("/account", headers=BROWSER, follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login")
    # The dead session's cookies are dropped: the browser stops sending them.
    assert ACCESS_COOKIE not in client.cookies
    assert REFRESH_COOKIE not in client.cookies


def test_signing_out_ends_the_session(client: TestClient, db: TransactionalDatabase) -> None:
    user = make_user(db, auth_of(client), Role.VIEWER)
    web_sign_in(client, user.email)
    access = client.cookies[ACCESS_COOKIE]
    token = csrf_of(client.get("/", headers=BROWSER).text)
    out = client.post(
        "/logout", data={"csrf_token": token}, headers=BROWSER, follow_redirects=False
    )
    assert out.status_code == 303
    assert ACCESS_COOKIE not in client.cookies
    put_cookie(client, ACCESS_COOKIE, access)  # a copy kept by an attacker
    answer = client.get("/account", headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 303  # revoked: back to the login page
    with db.session() as session:
        actions = [e.action for e in session.query(AuditEntry).filter_by(actor_user_id=user.id)]
    assert "login" in actions
    assert "logout" in actions


def test_logout_without_the_csrf_token_keeps_the_session(
    client: TestClient, db: TransactionalDatabase
) -> None:
    user = make_user(db, auth_of(client), Role.VIEWER)
    web_sign_in(client, user.email)
    forged = client.post("/logout", headers=BROWSER)
    assert forged.status_code == 403
    assert client.get("/account", headers=BROWSER, follow_redirects=False).status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_next_never_leaves_the_site(
    client: TestClient, db: TransactionalDatabase, target: str
) -> None:
    user = make_user(db, auth_of(client))
    page = client.get("/login", headers=BROWSER)
    answer = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "next": target,
              "csrf_token": csrf_of(page.text)},
        headers=BROWSER, follow_redirects=False,
    )  # fmt: skip
    assert answer.headers["location"] == "/"


def test_registration_page_creates_an_account(client: TestClient) -> None:
    page = client.get("/register", headers=BROWSER)
    made = client.post(
        "/register",
        data={"email": "new@example.org", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        headers=BROWSER,
    )
    assert made.status_code == 200  # followed to the login page
    assert "Account created" in made.text
    taken = client.post(
        "/register",
        data={"email": "NEW@example.org", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        headers=BROWSER,
    )
    assert taken.status_code == 409
    assert "exists already" in taken.text
    short = client.post(
        "/register",
        data={"email": "b@example.org", "password": "short", "csrf_token": csrf_of(page.text)},
        headers=BROWSER,
    )
    assert short.status_code == 422
    assert "at least 10 characters" in short.text


def test_registration_can_be_closed(db: TransactionalDatabase) -> None:
    test_client, _ = api(db, registration_enabled=False, **TEST_AUTH_SETTINGS)
    with test_client:
        page = test_client.get("/register", headers=BROWSER)
        assert "Registration is switched off" in page.text
        assert 'id="register-form"' not in page.text
