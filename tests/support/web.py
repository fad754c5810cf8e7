"""Browsing the web UI with a TestClient: the page headers, the CSRF token of a page, and
signing in through the login form (a cookie session, as a browser has)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support.auth import PASSWORD

BROWSER = {"Accept": "text/html"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def put_cookie(client: TestClient, name: str, value: str) -> None:
    """Replaces what the server set (httpx would otherwise keep both)."""
    client.cookies.delete(name)
    client.cookies.set(name, value, domain="testserver.local")


def web_sign_in(client: TestClient, email: str, next_path: str = "/") -> None:
    page = client.get(f"/login?next={next_path}", headers=BROWSER)
    answer = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "next": next_path,
              "csrf_token": csrf_of(page.text)},
        headers=BROWSER, follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == next_path
