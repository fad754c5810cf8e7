"""The reading pages on SQLite and PostgreSQL, as a signed-in browser (cookie session, CSRF
tokens): /reading (search with covers, add to TBR, start and stop the timer, mark finished
with dates, the prediction card), a book's page (the timer with its stored start, stop with
pages read or page reached, past sessions, the history, status and page count, refusals as
error flashes, a timer that outlives the app) and /reading/stats; only the reader's own
books; anonymous visitors go to the sign-in page and roles without reading.own get a 403
page."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import TransactionalDatabase
from tests.fakes.books_server import FakeBooks
from tests.support.app import api
from tests.support.auth import make_user
from tests.support.web import BROWSER, csrf_of, web_sign_in
from vigil.core.auth.permissions import Role
from vigil.reading.models import ReadingSession


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


# --- the book page ---------------------------------------------------------------------------


def reader(db: TransactionalDatabase, books: FakeBooks) -> tuple[TestClient, str]:
    """A signed-in reader with East of Eden (608 pages) on the list: (client, book page)."""
    client = browser(db, books)
    post(client, "/reading/list", source="google_books", source_id="OPy6E5ZhXs0C")
    entry_id = client.get("/api/v1/reading/list").json()[0]["id"]
    return client, f"/reading/books/{entry_id}"


def send(client: TestClient, page: str, action: str, **fields: str) -> tuple[str, str]:
    """Posts one of the book page's forms (``action`` under the page) as a browser does;
    (the flash message shown after the redirect, the page)."""
    token = csrf_of(client.get(page, headers=BROWSER).text)
    answer = client.post(
        f"{page}/{action}", data={**fields, "csrf_token": token}, headers=BROWSER,
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    after = client.get(answer.headers["location"], headers=BROWSER).text
    shown = re.search(r'<p role="status" class="flash flash-(\w+)">([^<]*)</p>', after)
    assert shown is not None, f"no flash message after {action}"
    return f"{shown.group(1)}: {html.unescape(shown.group(2))}", after


def test_the_book_page_and_its_timer(db: TransactionalDatabase, books: FakeBooks) -> None:
    client, page = reader(db, books)
    board = client.get("/reading", headers=BROWSER).text
    assert f'<a href="{page}"><strong>East of Eden</strong></a>' in board  # linked
    shown = client.get(page, headers=BROWSER).text
    assert "<h1>East of Eden</h1>" in shown
    assert 'src="https://books.google.com/books/content?id=OPy6E5ZhXs0C' in shown  # the cover
    assert "Page 0 of 608" in shown
    assert "No session yet." in shown

    flash_, shown = send(client, page, "timer/start")
    assert flash_ == "success: Timer started."
    current = client.get("/api/v1/reading/sessions/current").json()["session"]
    # The ticking clock counts from the start the server stored.
    stored = datetime.fromisoformat(current["start_time"])
    ticking = re.search(r'id="elapsed" data-elapsed-since="([^"]+)">(\d+:\d\d:\d\d)<', shown)
    assert ticking is not None
    assert datetime.fromisoformat(ticking.group(1)) == stored
    assert "Reading since" in shown
    assert 'id="stop-form"' in shown

    # Refusals come back as error flashes, and change nothing.
    assert send(client, page, "timer/start")[0].startswith("error: a session is already running")
    assert send(client, page, "timer/stop")[0] == (
        "error: give either pages_read or end_page (the page you reached), not both"
    )
    assert send(client, page, "timer/stop", pages_read="5", end_page="9")[0].startswith(
        "error: give either pages_read"
    )
    assert send(client, page, "timer/stop", pages_read="-3")[0] == (
        "error: pages read must be a whole number of 0 or more (got '-3')"
    )
    assert "past the end" in send(client, page, "timer/stop", end_page="700")[0]
    assert client.get("/api/v1/reading/sessions/current").json()["session"] is not None

    flash_, shown = send(client, page, "timer/stop", pages_read="20")
    assert flash_.startswith("success: Session saved: 20 pages in")
    assert "Page 20 of 608" in shown
    assert 'id="start-timer"' in shown


def test_past_sessions_and_the_history(db: TransactionalDatabase, books: FakeBooks) -> None:
    client, page = reader(db, books)
    send(client, page, "timer/start")
    send(client, page, "timer/stop", pages_read="20")
    # A past session typed in: refusals first.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    local = "%Y-%m-%dT%H:%M"  # the reader's zone is UTC here (the default)
    earlier, later = now - timedelta(days=2, hours=1), now - timedelta(days=2)
    backwards = send(client, page, "sessions", start_time=later.strftime(local),
                     end_time=earlier.strftime(local), pages_read="10")[0]  # fmt: skip
    assert backwards.startswith("error: end_time")
    assert "must be after start_time" in backwards
    ahead = (now + timedelta(hours=2)).strftime(local)
    future = send(client, page, "sessions", start_time=now.strftime(local), end_time=ahead,
                  pages_read="10")[0]  # fmt: skip
    assert "in the future" in future
    bad_time = send(client, page, "sessions", start_time="yesterday", end_time="today",
                    pages_read="1")[0]  # fmt: skip
    assert bad_time == "error: the start must be a date and time (YYYY-MM-DDTHH:MM)"
    flash_, shown = send(client, page, "sessions", start_time=earlier.strftime(local),
                         end_time=later.strftime(local), pages_read="45")  # fmt: skip
    assert flash_ == "success: Past session saved: 45 pages."
    half = timedelta(minutes=30)
    overlap = send(client, page, "sessions", start_time=(earlier + half).strftime(local),
                   end_time=(later + half).strftime(local), pages_read="5")[0]  # fmt: skip
    assert overlap.startswith("error: this session overlaps your session")

    # The history, newest first: today's timed session, then the past one.
    history = shown.split('id="session-history"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>\s*<td>([^<]+)</td>", history)
    assert len(rows) == 2
    assert rows == sorted(rows, reverse=True)
    assert rows[1] == earlier.strftime("%Y-%m-%d %H:%M")
    assert "Sessions (2)" in shown
    assert "Timed: 2 sessions, 65 pages in 1.0 hours." in shown  # 20 (seconds) + 45 (1 h)

    sessions = client.get("/api/v1/reading/sessions").json()["items"]
    oldest = min(sessions, key=lambda s: s["start_time"])
    flash_, shown = send(client, page, f"sessions/{oldest['id']}/delete")
    assert flash_ == "success: Session deleted."
    assert "Sessions (1)" in shown
    assert len(client.get("/api/v1/reading/sessions").json()["items"]) == 1


def test_the_book_page_status_pages_and_finish(db: TransactionalDatabase, books: FakeBooks) -> None:
    client, page = reader(db, books)
    flash_, shown = send(client, page, "pages", current_page="50", page_count="640")
    assert flash_ == "success: Pages saved."
    assert "Page 50 of 640" in shown
    assert "(your page count; the source says 608)" in shown
    assert send(client, page, "pages", current_page="700", page_count="640")[0].startswith(
        "error: page 700 is past the end of the book (640 pages)"
    )
    assert send(client, page, "pages", current_page="x")[0].startswith(
        "error: current page must be a whole number"
    )
    flash_, shown = send(client, page, "pages", current_page="50", page_count="")
    assert "Page 50 of 608" in shown  # empty: back to the source's count

    flash_, shown = send(client, page, "status", status="reading")
    assert flash_ == "success: Status: Reading."
    assert 'id="book-status">Reading<' in shown
    assert send(client, page, "status", status="lost")[0].startswith("error: status must be")

    today = datetime.now(UTC).date()
    backwards = send(client, page, "finish", started_on=str(today),
                     finished_on=str(today - timedelta(days=1)))[0]  # fmt: skip
    assert backwards.startswith("error: finished_on")
    flash_, shown = send(client, page, "finish", started_on=str(today - timedelta(days=5)),
                         finished_on=str(today))  # fmt: skip
    assert flash_ == "success: Marked finished and logged."
    assert 'id="book-status">Finished<' in shown
    assert f"Read from {today - timedelta(days=5)} to {today} (608 pages)" in shown
    assert send(client, page, "status", status="tbr")[0].startswith(
        "error: a finished book cannot go to tbr"
    )


def test_a_book_page_is_its_readers_only(db: TransactionalDatabase, books: FakeBooks) -> None:
    alice, page = reader(db, books)
    send(alice, page, "timer/start")
    running = alice.get("/api/v1/reading/sessions/current").json()["session"]
    bob = browser(db, books)
    assert bob.get(page, headers=BROWSER).status_code == 404  # like an id that does not exist
    assert bob.get("/reading/books/2147483647", headers=BROWSER).status_code == 404
    assert bob.get("/reading/books/0", headers=BROWSER).status_code == 422
    # Bob's forms on Alice's book change nothing and say so.
    token = csrf_of(bob.get("/reading", headers=BROWSER).text)
    for action, fields in [
        ("timer/stop", {"pages_read": "3"}),
        ("status", {"status": "finished"}),
        ("pages", {"current_page": "9"}),
        (f"sessions/{running['id']}/delete", {}),
    ]:
        answer = bob.post(f"{page}/{action}", data={**fields, "csrf_token": token},
                          headers=BROWSER, follow_redirects=True)  # fmt: skip
        assert "flash-error" in answer.text, action
    assert alice.get("/api/v1/reading/sessions/current").json()["session"] == running
    entry = alice.get("/api/v1/reading/list").json()[0]
    assert (entry["status"], entry["current_page"]) == ("reading", 0)


def test_the_forms_need_the_csrf_token(db: TransactionalDatabase, books: FakeBooks) -> None:
    client, page = reader(db, books)
    for action, fields in [("timer/start", {}), ("pages", {"current_page": "5"})]:
        answer = client.post(f"{page}/{action}", data=fields, headers=BROWSER,
                             follow_redirects=False)  # fmt: skip
        assert answer.status_code == 403, action
        forged = client.post(f"{page}/{action}", data={**fields, "csrf_token": "00" * 32},
                             headers=BROWSER, follow_redirects=False)  # fmt: skip
        assert forged.status_code == 403, action
    assert client.get("/api/v1/reading/sessions/current").json()["session"] is None
    assert client.get("/api/v1/reading/list").json()[0]["current_page"] == 0


def test_the_timer_survives_an_app_restart(db: TransactionalDatabase, books: FakeBooks) -> None:
    first, _ = api(db, cache_ttl=0, rate_limit="", google_books_base_url=books.google_url,
                   books_max_attempts=1)  # fmt: skip
    account = make_user(db, first.app.state.auth, Role.USER)  # type: ignore[attr-defined]
    web_sign_in(first, account.email, "/reading")
    post(first, "/reading/list", source="google_books", source_id="OPy6E5ZhXs0C")
    page = f"/reading/books/{first.get('/api/v1/reading/list').json()[0]['id']}"
    send(first, page, "timer/start")
    started = first.get("/api/v1/reading/sessions/current").json()["session"]["start_time"]
    first.close()

    # A new app (a restarted server, or another device): a new sign-in, the same timer.
    second, _ = api(db, cache_ttl=0, rate_limit="")
    web_sign_in(second, account.email, "/reading")
    shown = second.get(page, headers=BROWSER).text
    ticking = re.search(r'data-elapsed-since="([^"]+)"', shown)
    assert ticking is not None
    assert datetime.fromisoformat(ticking.group(1)) == datetime.fromisoformat(started)
    assert "data-elapsed-since" in second.get("/reading", headers=BROWSER).text
    flash_, shown = send(second, page, "timer/stop", end_page="12")
    assert flash_.startswith("success: Session saved: 12 pages")


# --- the stats page --------------------------------------------------------------------------


def test_the_stats_page(db: TransactionalDatabase, books: FakeBooks) -> None:
    client, page = reader(db, books)
    empty = client.get("/reading/stats", headers=BROWSER)
    assert empty.status_code == 200
    assert "No timed session in this range yet" in empty.text
    assert '<a href="/reading/stats"' in empty.text  # in the menu, the current page there
    assert 'href="/reading/stats" title="Reading (ChronoBook)" aria-current="page"' in empty.text
    assert 'href="/reading" title="Reading (ChronoBook)">' in empty.text  # not also /reading

    # Two past sessions on the same weekday: 20:30-21:30 (30 pages) and 21:00-21:45 (15 pages)
    # a week later, entered through the page.
    now = datetime.now(UTC)
    monday = (now - timedelta(days=now.weekday() + 14)).replace(hour=20, minute=30, second=0,
                                                                microsecond=0)  # fmt: skip
    local = "%Y-%m-%dT%H:%M"
    for start, minutes, pages in [
        (monday, 60, "30"),
        (monday + timedelta(days=7, minutes=30), 45, "15"),
    ]:
        flash_, _ = send(client, page, "sessions", start_time=start.strftime(local),
                         end_time=(start + timedelta(minutes=minutes)).strftime(local),
                         pages_read=pages)  # fmt: skip
        assert flash_.startswith("success"), flash_

    shown = client.get("/reading/stats", headers=BROWSER).text
    assert 'id="stat-sessions">2<' in shown
    assert 'id="stat-pages">45<' in shown
    assert 'id="stat-hours">1.8<' in shown
    assert 'id="stat-speed">26<' in shown  # 45 pages in 1.75 hours
    grid = shown.split('id="heatmap"')[1].split("</table>")[0]
    monday_row = re.search(r"<tr><th scope=\"row\">Mon.*?</tr>", grid, re.S)
    assert monday_row is not None
    cells = re.findall(r'<td class="heat-(\d)">(\d*)</td>', monday_row.group(0))
    assert len(cells) == 24
    # 20:30-21:30 and 21:00-21:45: 30 minutes at 20 h, 30 + 45 at 21 h (the busiest).
    assert cells[20] == ("2", "30")
    assert cells[21] == ("4", "75")
    assert all(value == "" for i, (_, value) in enumerate(cells) if i not in (20, 21))
    charts = re.findall(
        r'<script type="application/json" id="([a-z-]+)-data">([^<]+)</script>', shown
    )
    specs = {name: json.loads(text) for name, text in charts}
    per_day = specs["pages-chart"]["panes"][0]["series"][0]["data"]
    assert len(per_day) == 365
    assert sum(v for _, v in per_day) == 45
    assert [v for _, v in per_day if v] == [30, 15]
    speed = specs["speed-chart"]["panes"][0]["series"][0]["data"]
    assert [v for _, v in speed] == [30.0, 20.0]  # pages per hour, week by week

    short = client.get("/reading/stats", params={"range": "3m"}, headers=BROWSER).text
    assert 'id="stat-pages">45<' in short
    assert client.get("/reading/stats", params={"range": "9y"}, headers=BROWSER).status_code == 422


# --- the home page card ----------------------------------------------------------------------


def test_the_home_page_card(
    db: TransactionalDatabase, books: FakeBooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, page = reader(db, books)
    home = client.get("/", headers=BROWSER).text
    assert 'id="reading-home-card"' in home
    assert "0 pages left" not in home
    assert "no prediction yet" in home  # 608 pages on the pile, nothing learnt from
    send(client, page, "timer/start")
    send(client, page, "timer/stop", pages_read="30")
    send(client, page, "timer/start")
    home = client.get("/", headers=BROWSER).text
    finish = client.get("/api/v1/reading/prediction", params={"tz": "UTC"}).json()
    assert f'id="home-list-finish">{finish["books"][-1]["finish"]}<' in home
    assert "model speed" in home
    assert "data-elapsed-since" in home  # the running timer, ticking

    anonymous, _ = api(db, cache_ttl=0, rate_limit="")
    assert 'id="reading-home-card"' not in anonymous.get("/", headers=BROWSER).text
    operator = browser(db, books, Role.OPERATOR)  # no reading.own
    assert 'id="reading-home-card"' not in operator.get("/", headers=BROWSER).text

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the prediction broke")

    monkeypatch.setattr("vigil.reading.predictions.predict", broken)
    still = client.get("/", headers=BROWSER)
    assert still.status_code == 200  # a failing card is left out, the page answers
    assert 'id="reading-home-card"' not in still.text


def test_one_timer_at_a_time_across_books(db: TransactionalDatabase, books: FakeBooks) -> None:
    client, first = reader(db, books)
    client.get("/reading", params={"q": "harry potter"}, headers=BROWSER)  # a hit is cached
    added = post(client, "/reading/list", source="google_books", source_id="s77iyQEACAAJ")
    assert "&#39;Fantastic Beasts and Where to Find Them&#39; is on your list." in added
    second = f"/reading/books/{client.get('/api/v1/reading/list').json()[-1]['id']}"
    send(client, first, "timer/start")
    shown = client.get(second, headers=BROWSER).text
    assert "A session is running on" in shown
    assert f'<a href="{first}">East of Eden</a>' in shown
    assert 'id="stop-form"' not in shown
    assert send(client, second, "timer/start")[0].startswith("error: a session is already running")
    refused = send(client, second, "timer/stop", pages_read="5")[0]
    assert refused == "error: the running session is on another book: stop it on its page"
    # Another book's page cannot delete the session either when the id is not the reader's.
    assert send(client, second, "sessions/999999/delete")[0].startswith("error: No session 999999")
    assert client.get("/api/v1/reading/sessions/current").json()["session"] is not None
    assert send(client, first, "timer/stop", end_page="10")[0].startswith(
        "success: Session saved: 10 pages"
    )


def test_a_timer_left_running_stops_when_the_reading_did(
    db: TransactionalDatabase, books: FakeBooks
) -> None:
    client, page = reader(db, books)
    send(client, page, "timer/start")
    # The reader forgot the timer: it started three hours ago.
    started = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    with db.session(write=True) as s:
        s.execute(
            update(ReadingSession)
            .where(ReadingSession.end_time.is_(None))
            .values(start_time=started)
        )
    local = "%Y-%m-%dT%H:%M"
    early = send(client, page, "timer/stop", pages_read="5",
                 end_time=(started - timedelta(minutes=5)).strftime(local))[0]  # fmt: skip
    assert early.startswith("error: end_time")
    assert "must be after the start" in early
    assert send(client, page, "timer/stop", pages_read="5", end_time="soon")[0] == (
        "error: the end must be a date and time (YYYY-MM-DDTHH:MM)"
    )
    flash_, _ = send(client, page, "timer/stop", pages_read="30",
                     end_time=(started + timedelta(minutes=45)).strftime(local))  # fmt: skip
    assert flash_ == "success: Session saved: 30 pages in 45 minutes."
    stored = client.get("/api/v1/reading/sessions").json()["items"][0]
    assert datetime.fromisoformat(stored["end_time"]) == started + timedelta(minutes=45)
