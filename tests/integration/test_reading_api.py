"""The reading API on SQLite and PostgreSQL, signed in as ordinary users: search (the fake
Google Books and Open Library), the list, the simple log, timed sessions, problem answers
for bad input, audit rows, and ownership: one user never reads or changes another's data
(404, as for an id that does not exist), whatever their role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from tests.fakes.books_server import FakeBooks
from tests.support.app import api
from tests.support.auth import bearer, login, make_user
from vigil.core.auth.models import AuditEntry
from vigil.core.auth.permissions import Role

R = "/api/v1/reading"
EDEN = {"source": "google_books", "source_id": "OPy6E5ZhXs0C"}  # 608 pages (recorded)
BEASTS = {"source": "google_books", "source_id": "s77iyQEACAAJ"}  # 160 pages (recorded search)


@pytest.fixture
def books() -> Iterator[FakeBooks]:
    with FakeBooks() as fake:
        yield fake


@pytest.fixture
def client(db: TransactionalDatabase, books: FakeBooks) -> TestClient:
    test_client, _ = api(
        db,
        cache_ttl=0,
        rate_limit="",
        google_books_base_url=books.google_url,
        open_library_base_url=books.open_library_url,
        books_max_attempts=1,
    )
    return test_client


def user(db: TransactionalDatabase, client: TestClient, role: Role = Role.USER) -> dict[str, str]:
    """A new user of ``role``: the headers of its session."""
    account = make_user(db, client.app.state.auth, role)  # type: ignore[attr-defined]
    return bearer(login(client, account.email)["access_token"])


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_search_then_add_update_and_remove(
    db: TransactionalDatabase, client: TestClient, books: FakeBooks
) -> None:
    me = user(db, client)
    found = ok(client.get(f"{R}/search", params={"q": "harry potter", "limit": 3}, headers=me))
    assert found["source"] == "google_books"
    assert next(i["title"] for i in found["items"]) == "Fantastic Beasts and Where to Find Them"
    entry = ok(client.post(f"{R}/list", json=BEASTS, headers=me), 201)
    assert (entry["status"], entry["position"], entry["page_count"], entry["pages_left"]) == (
        "tbr", 1, 160, 160
    )  # fmt: skip
    assert entry["book"]["isbn13"] == "9781526620316"
    # Not found by the search above: looked up at Google Books (/volumes/{id}).
    eden = ok(client.post(f"{R}/list", json=EDEN, headers=me), 201)
    assert (eden["position"], eden["page_count"]) == (2, 608)
    problem(client.post(f"{R}/list", json=EDEN, headers=me), 409)
    problem(client.post(f"{R}/list", json={**EDEN, "source_id": "nope"}, headers=me), 404)

    url = f"{R}/list/{eden['id']}"
    changed = ok(client.patch(url, json={"status": "reading", "current_page": 100}, headers=me))
    assert (changed["status"], changed["pages_left"]) == ("reading", 508)
    corrected = ok(client.patch(url, json={"page_count": 650}, headers=me))
    assert (corrected["page_count"], corrected["page_count_corrected"]) == (650, True)
    assert ok(client.patch(url, json={"page_count": None}, headers=me))["page_count"] == 608
    assert (
        "past the end"
        in problem(client.patch(url, json={"current_page": 700}, headers=me), 422)["detail"]
    )
    assert [e["id"] for e in ok(client.get(f"{R}/list?status=reading", headers=me))] == [eden["id"]]
    ok(client.delete(url, headers=me), 204)
    problem(client.get(url, headers=me), 404)
    with db.session() as s:
        actions = s.execute(
            select(AuditEntry.action, AuditEntry.entity_id).where(
                AuditEntry.entity == "reading.list_entry"
            )
        ).all()
    assert ("create", str(eden["id"])) in actions
    assert ("update", str(eden["id"])) in actions
    assert ("delete", str(eden["id"])) in actions


def test_search_falls_back_to_open_library_and_says_so(
    db: TransactionalDatabase, client: TestClient, books: FakeBooks
) -> None:
    me = user(db, client)
    books.queue_fault("google", 503, b"down")
    found = ok(client.get(f"{R}/search", params={"q": "mistborn"}, headers=me))
    assert found["source"] == "open_library"
    assert "Google Books did not answer" in found["notes"][0]
    books.queue_fault("google", 503, b"down")
    books.queue_fault("openlibrary", 503, b"down")
    assert (
        "No book source answered"
        in problem(client.get(f"{R}/search", params={"q": "other"}, headers=me), 503)["detail"]
    )


def test_the_simple_log_marks_a_book_finished(
    db: TransactionalDatabase, client: TestClient
) -> None:
    me = user(db, client)
    entry = ok(client.post(f"{R}/list", json=EDEN, headers=me), 201)
    body = {"entry_id": entry["id"], "started_on": "2026-01-02", "finished_on": "2026-01-20"}
    logged = ok(client.post(f"{R}/log", json=body, headers=me), 201)
    assert (logged["pages"], logged["book"]["title"]) == (608, "East of Eden")
    after = ok(client.get(f"{R}/list/{entry['id']}", headers=me))
    assert (after["status"], after["current_page"], after["pages_left"]) == ("finished", 608, 0)
    backwards = {**body, "finished_on": "2026-01-01"}
    assert (
        "before started_on"
        in problem(client.post(f"{R}/log", json=backwards, headers=me), 422)["detail"]
    )
    assert [r["id"] for r in ok(client.get(f"{R}/log", headers=me))] == [logged["id"]]
    ok(client.delete(f"{R}/log/{logged['id']}", headers=me), 204)
    # Finished goes back to reading (a re-read), not to the pile.
    problem(client.patch(f"{R}/list/{entry['id']}", json={"status": "tbr"}, headers=me), 422)


def test_timed_sessions(db: TransactionalDatabase, client: TestClient) -> None:
    me = user(db, client)
    entry = ok(client.post(f"{R}/list", json=EDEN, headers=me), 201)
    assert ok(client.get(f"{R}/sessions/current", headers=me)) == {"session": None}
    problem(client.post(f"{R}/sessions/stop", json={"pages_read": 3}, headers=me), 409)

    before = datetime.now(UTC)
    started = ok(
        client.post(f"{R}/sessions/start", json={"entry_id": entry["id"]}, headers=me), 201
    )
    start_time = datetime.fromisoformat(started["start_time"])
    assert before - timedelta(seconds=1) <= start_time <= datetime.now(UTC)
    assert started["end_time"] is None
    # Stored at once: another device (another sign-in) sees the running timer.
    other_device = bearer(login(client, _email(db, me))["access_token"])
    assert (
        ok(client.get(f"{R}/sessions/current", headers=other_device))["session"]["id"]
        == (started["id"])
    )
    assert ok(client.get(f"{R}/list/{entry['id']}", headers=me))["status"] == "reading"
    conflict = problem(
        client.post(f"{R}/sessions/start", json={"entry_id": entry["id"]}, headers=me), 409
    )
    assert "already running" in conflict["detail"]

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        "future"
        in problem(
            client.post(f"{R}/sessions/stop", json={"end_page": 5, "end_time": future}, headers=me),
            422,
        )["detail"]
    )
    problem(client.post(f"{R}/sessions/stop", json={"end_page": 900}, headers=me), 422)
    both = {"end_page": 5, "pages_read": 5}
    problem(client.post(f"{R}/sessions/stop", json=both, headers=me), 422)
    stopped = ok(client.post(f"{R}/sessions/stop", json={"end_page": 25}, headers=me))
    assert (stopped["start_page"], stopped["end_page"], stopped["pages_read"]) == (0, 25, 25)
    assert ok(client.get(f"{R}/list/{entry['id']}", headers=me))["current_page"] == 25

    # A past session typed in: overlapping ones and backwards ones are refused.
    past = {
        "entry_id": entry["id"],
        "start_time": "2026-01-05T20:00:00+00:00",
        "end_time": "2026-01-05T21:00:00+00:00",
        "pages_read": 40,
    }
    manual = ok(client.post(f"{R}/sessions", json=past, headers=me), 201)
    overlap = {
        **past,
        "start_time": "2026-01-05T20:30:00+00:00",
        "end_time": "2026-01-05T22:00:00+00:00",
    }
    assert (
        "overlaps" in problem(client.post(f"{R}/sessions", json=overlap, headers=me), 409)["detail"]
    )
    backwards = {
        **past,
        "start_time": "2026-01-06T21:00:00+00:00",
        "end_time": "2026-01-06T20:00:00+00:00",
    }
    problem(client.post(f"{R}/sessions", json=backwards, headers=me), 422)
    negative = {
        **past,
        "start_time": "2026-01-07T20:00:00+00:00",
        "end_time": "2026-01-07T21:00:00+00:00",
        "pages_read": -5,
    }
    problem(client.post(f"{R}/sessions", json=negative, headers=me), 422)
    listed = ok(client.get(f"{R}/sessions", params={"entry_id": entry["id"]}, headers=me))
    assert [s["id"] for s in listed["items"]] == [stopped["id"], manual["id"]]
    ok(client.delete(f"{R}/sessions/{manual['id']}", headers=me), 204)
    with db.session() as s:
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.entity == "reading.session")
        ).all()
    assert sorted(actions) == ["create", "create", "delete", "update"]


def _email(db: TransactionalDatabase, headers: dict[str, str]) -> str:
    import jwt  # noqa: PLC0415

    token = headers["Authorization"].split()[1]
    email: str = jwt.decode(token, options={"verify_signature": False})["email"]
    return email


def test_ownership_isolation_between_two_reading_users(
    db: TransactionalDatabase, client: TestClient
) -> None:
    """Issue #7's ownership rule, enforced by the reading module: B (a user, or even an
    Admin) cannot see, change, delete or use anything of A's; every attempt is a 404."""
    alice, bob = user(db, client), user(db, client)
    admin = user(db, client, Role.ADMIN)
    entry = ok(client.post(f"{R}/list", json=EDEN, headers=alice), 201)
    log = ok(
        client.post(
            f"{R}/log",
            json={"entry_id": entry["id"], "started_on": "2026-01-02", "finished_on": "2026-01-09"},
            headers=alice,
        ),
        201,
    )
    ok(client.patch(f"{R}/list/{entry['id']}", json={"status": "reading"}, headers=alice))
    running = ok(
        client.post(f"{R}/sessions/start", json={"entry_id": entry["id"]}, headers=alice), 201
    )

    for intruder in (bob, admin):
        assert ok(client.get(f"{R}/list", headers=intruder)) == []
        assert ok(client.get(f"{R}/log", headers=intruder)) == []
        assert ok(client.get(f"{R}/sessions", headers=intruder))["total"] == 0
        assert ok(client.get(f"{R}/sessions/current", headers=intruder)) == {"session": None}
        eid = entry["id"]
        for method, url, body in [
            ("GET", f"{R}/list/{eid}", None),
            ("PATCH", f"{R}/list/{eid}", {"current_page": 1}),
            ("DELETE", f"{R}/list/{eid}", None),
            (
                "POST",
                f"{R}/log",
                {"entry_id": eid, "started_on": "2026-01-01", "finished_on": "2026-01-02"},
            ),
            ("DELETE", f"{R}/log/{log['id']}", None),
            ("POST", f"{R}/sessions/start", {"entry_id": eid}),
            ("GET", f"{R}/sessions?entry_id={eid}", None),
            ("DELETE", f"{R}/sessions/{running['id']}", None),
            (
                "POST",
                f"{R}/sessions",
                {
                    "entry_id": eid,
                    "start_time": "2026-01-03T10:00:00Z",
                    "end_time": "2026-01-03T11:00:00Z",
                    "pages_read": 1,
                },
            ),
        ]:
            answer = problem(client.request(method, url, json=body, headers=intruder), 404)
            assert "Admin" not in answer["detail"]
            assert "another" not in answer["detail"]
        # Stopping "their" timer stops only their own (none): A's keeps running.
        problem(client.post(f"{R}/sessions/stop", json={"pages_read": 1}, headers=intruder), 409)

    # The same book on B's own list is B's own entry; A's is untouched.
    mine = ok(client.post(f"{R}/list", json=EDEN, headers=bob), 201)
    assert mine["id"] != entry["id"]
    assert mine["status"] == "tbr"
    still = ok(client.get(f"{R}/list/{entry['id']}", headers=alice))
    assert (still["status"], still["current_page"]) == ("reading", 0)  # a re-read, untouched
    assert ok(client.get(f"{R}/sessions/current", headers=alice))["session"]["id"] == running["id"]
    assert [r["id"] for r in ok(client.get(f"{R}/log", headers=alice))] == [log["id"]]


def test_roles_without_reading_own_are_refused(
    db: TransactionalDatabase, client: TestClient
) -> None:
    for role in (Role.OPERATOR, Role.VIEWER):
        problem(client.get(f"{R}/list", headers=user(db, client, role)), 403)
    problem(client.get(f"{R}/list"), 401)


# Goodreads' export layout (its header, its ="…" ISBNs, YYYY/MM/DD dates); the rows are
# made up for the test, one per case. "Date Started" is not in every export.
GOODREADS = (
    "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,ISBN13,My Rating,Average Rating,"
    "Publisher,Binding,Number of Pages,Year Published,Original Publication Year,Date Read,"
    "Date Added,Bookshelves,Bookshelves with positions,Exclusive Shelf,My Review,Spoiler,"
    "Private Notes,Read Count,Owned Copies,Date Started\n"
    '4406,East of Eden,John Steinbeck,"Steinbeck, John",,="1440631328",="9781440631320",0,4.4,'
    "Penguin,Paperback,608,2002,1952,,2026/01/03,to-read,to-read (#1),to-read,,,,0,0,\n"
    '1,The Final Empire,Brandon Sanderson,"Sanderson, Brandon",,="",="9780765311788",0,4.5,Tor,'
    "Hardcover,541,2006,2006,,2026/02/01,currently-reading,,currently-reading,,,,0,0,\n"
    '2,Dune,Frank Herbert,"Herbert, Frank",,="",="9780441013593",5,4.3,Ace,Paperback,688,2005,'
    "1965,2026/03/20,2026/02/10,,,read,,,,1,0,2026/03/01\n"
    '3,Emma,Jane Austen,"Austen, Jane",,="",="",4,4.0,Penguin,Paperback,,2003,1815,2025/11/02,'
    "2025/10/01,,,read,,,,1,0,\n"
    '4,Odd One,Some Body,"Body, Some",,="",="",0,3.0,X,Paperback,100,2000,2000,,2026/01/01,'
    "favourites,,favourites,,,,0,0,\n"
    ',,Nobody,"Nobody",,="",="",0,0,X,Paperback,100,2000,2000,,2026/01/01,,,to-read,,,,0,0,\n'
    '5,Bad Date,A. Writer,"Writer, A.",,="",="",0,0,X,Paperback,100,2000,2000,2026/13/45,'
    "2026/01/01,,,read,,,,0,0,\n"
)


def test_goodreads_import(db: TransactionalDatabase, client: TestClient) -> None:
    me, other = user(db, client), user(db, client)
    listed = ok(client.post(f"{R}/list", json=EDEN, headers=me), 201)  # already on my list
    csv_headers = {**me, "Content-Type": "text/csv"}
    report = ok(client.post(f"{R}/import/goodreads", content=GOODREADS, headers=csv_headers))
    assert (report["rows"], report["added"], report["already"], report["logged"]) == (7, 3, 1, 1)
    reasons = {r["line"]: r["reason"] for r in report["refused"]}
    assert "favourites" in reasons[6]
    assert reasons[7] == "no title"
    assert "not a date" in reasons[8]
    mine = {e["book"]["title"]: e for e in ok(client.get(f"{R}/list", headers=me))}
    assert mine["East of Eden"]["id"] == listed["id"]  # matched by ISBN-13, left alone
    assert mine["The Final Empire"]["status"] == "reading"
    assert (mine["Dune"]["status"], mine["Dune"]["pages_left"]) == ("finished", 0)
    assert mine["Emma"]["page_count"] is None  # no page count in the file: unknown
    assert mine["Dune"]["book"]["source"] == "goodreads"
    log = ok(client.get(f"{R}/log", headers=me))
    assert [(r["book"]["title"], r["started_on"], r["finished_on"], r["pages"]) for r in log] == [
        ("Dune", "2026-03-01", "2026-03-20", 688)
    ]
    again = ok(client.post(f"{R}/import/goodreads", content=GOODREADS, headers=csv_headers))
    assert (again["added"], again["already"]) == (0, 4)
    assert ok(client.get(f"{R}/list", headers=other)) == []  # the caller's list only

    problem(client.post(f"{R}/import/goodreads", content="a,b\n1,2\n", headers=csv_headers), 422)
    problem(client.post(f"{R}/import/goodreads", json={"x": 1}, headers=me), 415)
    broken = "Title,Author,Exclusive Shelf\nA\rB,c,read\n"
    problem(client.post(f"{R}/import/goodreads", content=broken, headers=csv_headers), 422)
