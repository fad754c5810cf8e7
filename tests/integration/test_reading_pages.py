"""The /reading page on SQLite and PostgreSQL, as a signed-in browser (cookie session, CSRF
tokens): search with covers, add to TBR, start and stop the timer, mark finished with dates,
the prediction card; only the reader's own books; anonymous visitors go to the sign-in page
and roles without reading.own get a 403 page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.fakes.books_server import FakeBooks
from tests.support.app import api
from tests.support.auth import make_user
from tests.support.web import BROWSER, csrf_of, web_sign_in
from vigil.core.auth.permissions import Role


@pytest.fixture
def books() -> Iterator[FakeBooks]:
    with FakeBooks() as fake:
        yield fake


def browser(db: TransactionalDatabase, books: FakeBooks, role: Role = Role.USER) -> TestClient:
    client, _ = api(
        db,
        cache_ttl=0,
        rate_limit="",
        google_books_base_url=books.google_url,
        open_library_base_url=books.open_library_url,
        books_max_attempts=1,
    )
    account = make_user(db, client.app.state.auth, role)  # type: ignore[attr-defined]
    web_sign_in(client, account.email, "/reading")
    return client


def post(client: TestClient, path: str, **fields: str) -> str:
    """Sends a form of the page as a browser does; follows the redirect; the page after."""
    token = csrf_of(client.get("/reading", headers=BROWSER).text)
    answer = client.post(
        path, data={**fields, "csrf_token": token}, headers=BROWSER, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/reading"
    return client.get("/reading", headers=BROWSER).text


def test_the_reading_journey(db: TransactionalDatabase, books: FakeBooks) -> None:
    client = browser(db, books)
    page = client.get("/reading", headers=BROWSER)
    assert page.status_code == 200
    assert "Nothing on your pile yet." in page.text
    assert '<a href="/reading"' in client.get("/", headers=BROWSER).text  # in the menu

    found = client.get("/reading", params={"q": "east of eden"}, headers=BROWSER).text
    assert "Fantastic Beasts and Where to Find Them" in found  # the recorded search
    assert 'src="https://books.google.com/books/content?id=s77iyQEACAAJ' in found  # covers

    after = post(client, "/reading/list", source="google_books", source_id="OPy6E5ZhXs0C")
    assert "&#39;East of Eden&#39; is on your list." in after
    assert "East of Eden" in after
    assert "0 / 608" in after
    again = post(client, "/reading/list", source="google_books", source_id="OPy6E5ZhXs0C")
    assert "already on your list" in again  # the API's message, as a flash

    entry_id = client.get("/api/v1/reading/list").json()[0]["id"]
    timing = post(client, "/reading/sessions/start", entry_id=str(entry_id))
    assert "Timer started." in timing
    assert "Reading <strong>East of Eden</strong> since" in timing
    assert "Page reached" in timing
    past_end = post(client, "/reading/sessions/stop", end_page="900")
    assert "past the end of the book" in past_end
    stopped = post(client, "/reading/sessions/stop", end_page="30")
    assert "Session saved: 30 pages" in stopped
    assert "30 / 608" in stopped
    assert 'id="model-used">speed' in stopped  # one timed session: speed x habit
    assert 'id="list-finish"' in stopped

    today = datetime.now(UTC).date()
    done = post(
        client,
        f"/reading/list/{entry_id}/finish",
        started_on=str(today - timedelta(days=3)),
        finished_on=str(today),
    )
    assert "Marked finished and logged." in done
    assert "608 / 608" in done


def test_only_the_readers_own_books(db: TransactionalDatabase, books: FakeBooks) -> None:
    alice = browser(db, books)
    post(alice, "/reading/list", source="google_books", source_id="OPy6E5ZhXs0C")
    entry_id = alice.get("/api/v1/reading/list").json()[0]["id"]
    bob = browser(db, books)
    assert "East of Eden" not in bob.get("/reading", headers=BROWSER).text
    refused = post(bob, "/reading/sessions/start", entry_id=str(entry_id))
    assert "No book" in refused
    assert alice.get("/api/v1/reading/sessions/current").json() == {"session": None}


def test_who_may_see_the_page(db: TransactionalDatabase, books: FakeBooks) -> None:
    anonymous, _ = api(db, cache_ttl=0, rate_limit="")
    answer = anonymous.get("/reading", headers=BROWSER, follow_redirects=False)
    assert answer.status_code in (302, 303, 307)
    assert answer.headers["location"].startswith("/login?next=")
    operator = browser(db, books, Role.OPERATOR)
    refused = operator.get("/reading", headers=BROWSER)
    assert refused.status_code == 403
    assert "reading.own" in refused.text
