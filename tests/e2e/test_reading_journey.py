"""ChronoBook's whole seed journey in a real browser (Debian's Chromium, Playwright) against
a real ``vigil up`` process, on SQLite and on PostgreSQL, with Google Books answered from
the recorded replies (tests/fakes/books_server.py):

register -> sign in -> search -> add to TBR -> start the timer on the book's page -> (the
server is restarted: the timer still runs, from the start the server stored) -> stop it
with the pages read -> (a past session typed in) -> mark the book finished with dates ->
the dashboard shows a finish date for the rest of the pile; then the server is restarted
again and the list, the session history and the log are all still there. axe-core checks
the reading pages in both themes.

The browser never leaves the machine: every request for another host (the covers on Google's
image server) is answered by the test with a blank image and counted.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Route,
    expect,
)

from tests.conftest import service_unavailable
from tests.e2e.conftest import (
    Backend,
    VigilProcess,
    free_port,
    launch_vigil,
    stop_process,
)
from tests.fakes.books_server import FakeBooks
from tests.support import browser as br

pytestmark = pytest.mark.e2e

EMAIL = "reader@example.org"
PASSWORD = "a long reading password"
FIRST = "Fantastic Beasts and Where to Find Them"  # 160 pages in the recorded search
SECOND = "Harry Potter and the Goblet of Fire"  # 734 pages
#: A 1x1 transparent GIF: what the browser gets instead of a cover from the internet.
BLANK_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@pytest.fixture(scope="module", autouse=True)
def chromium_installed() -> None:
    if why := br.chromium_missing():
        service_unavailable(f"browser tests: {why}")
    if not br.AXE.is_file():
        service_unavailable(f"{br.AXE} is missing: run `make install` (npm ci)")


class Server:
    """``vigil up`` on one port and data directory, restartable (same database, same signing
    key in the data directory, so the browser's session outlives a restart)."""

    def __init__(self, backend: Backend, books: FakeBooks, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.runs = 0
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")} | {
            "VIGIL_DATA_DIR": str(tmp / "data"),
            "VIGIL_DATABASE_URL": backend.env_url,
            "VIGIL_REDIS_URL": "",
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_PORT": str(self.port),
            "VIGIL_LOG_FORMAT": "json",
            "VIGIL_LOG_LEVEL": "WARNING",
            "VIGIL_RUN_JOBS_ON_START": "false",
            "VIGIL_RATE_LIMIT": "",
            "VIGIL_UI_REFRESH_SECONDS": "0",
            # Only the books sources are used; the others point at a closed loopback port.
            "VIGIL_NBP_BASE_URL": "http://127.0.0.1:9/api",
            "VIGIL_COINGECKO_BASE_URL": "http://127.0.0.1:9/api/v3",
            "VIGIL_GOOGLE_BOOKS_BASE_URL": books.google_url,
            "VIGIL_OPEN_LIBRARY_BASE_URL": books.open_library_url,
            "VIGIL_BOOKS_MAX_ATTEMPTS": "1",
            "VIGIL_ARGON2_TIME_COST": "1",
            "VIGIL_ARGON2_MEMORY_KIB": "8",
            "VIGIL_ARGON2_PARALLELISM": "1",
        }
        self.vigil: VigilProcess | None = None

    def start(self) -> None:
        self.runs += 1
        self.vigil = launch_vigil(
            ("up",), self.env, self.tmp, self.tmp / f"vigil_{self.runs}", self.port
        )
        self.vigil.wait_ready()

    def restart(self) -> int:
        """Stops the process (SIGTERM) and starts a new one; the old one's pid."""
        assert self.vigil is not None
        old = self.vigil.pid
        # uvicorn re-raises the SIGTERM it handled once it has shut down (see test_vigil_up).
        code = self.vigil.terminate()
        assert code in (0, -signal.SIGTERM), self.vigil.diagnostics()
        self.vigil.client.close()
        self.start()
        assert self.vigil.pid != old
        return old

    def stop(self) -> None:
        if self.vigil is not None:
            self.vigil.client.close()
            stop_process(self.vigil.proc)


@pytest.fixture
def server(backend: Backend, tmp_path: Path) -> Iterator[tuple[Server, FakeBooks]]:
    with FakeBooks() as books:
        running = Server(backend, books, tmp_path)
        try:
            running.start()
            yield running, books
        finally:
            running.stop()


def navigate(page: Page, target: Locator) -> None:
    """Clicks a link or a form's button and waits for the next page to finish loading, so
    the following navigation never aborts its scripts (the watch would count that)."""
    with page.expect_navigation(wait_until="load"):
        target.click()


def seconds_of(clock: str) -> int:
    hours, minutes, seconds = (int(x) for x in clock.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def register_and_sign_in(page: Page, app: Server) -> None:
    """Register, then sign in (the sign-in page sends the reader on to /reading)."""
    page.goto(f"{app.url}/register")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    navigate(page, page.get_by_role("button", name="Create account"))
    page.wait_for_url(re.compile(r"/login"))
    page.goto(f"{app.url}/login?next=/reading")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    navigate(page, page.get_by_role("button", name="Sign in"))
    page.wait_for_url(f"{app.url}/reading")
    expect(page.locator("#prediction-card")).to_contain_text("Nothing on your pile yet.")


def search_and_add(page: Page, books: FakeBooks) -> None:
    """Search (the recorded Google Books answer) and put two books on the pile."""
    for title in (FIRST, SECOND):
        page.get_by_label("Title, author or ISBN").fill("harry potter")
        navigate(page, page.get_by_role("button", name="Search"))
        expect(page.locator("#search-results")).to_contain_text(title)
        assert page.locator("#search-results img").count() >= 5  # covers
        # The button's name: "Add to TBR" and the title (in a visually hidden span).
        add = re.compile(rf"^Add to TBR\s*:\s*{re.escape(title)}$")
        navigate(page, page.get_by_role("button", name=add))
        expect(page.locator("p.flash")).to_have_text(f"'{title}' is on your list.")
    assert books.count("google") == 1  # searches and books just found are cached


def start_timer(page: Page) -> str:
    """Opens the first book's page and starts the timer; the start the server stored (as
    the page gives it to the ticking clock)."""
    navigate(page, page.get_by_role("link", name=FIRST))
    expect(page.locator("h1")).to_have_text(FIRST)
    expect(page.locator("#book-pages")).to_contain_text("Page 0 of 160")
    navigate(page, page.get_by_role("button", name="Start timer"))
    expect(page.locator("p.flash")).to_have_text("Timer started.")
    current = page.evaluate("() => fetch('/api/v1/reading/sessions/current').then(r => r.json())")
    elapsed = page.locator("#elapsed")
    stored = elapsed.get_attribute("data-elapsed-since") or ""
    assert datetime.fromisoformat(stored) == datetime.fromisoformat(
        current["session"]["start_time"]
    )
    first_tick = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first_tick, timeout=5_000)  # it ticks in the browser
    return stored


def stop_and_finish(page: Page) -> str:
    """Stops the timer with the pages read, adds a past session and marks the book
    finished; the log line."""
    page.locator("#stop-form").get_by_label("Pages read").fill("25")
    navigate(page, page.get_by_role("button", name="Stop"))
    expect(page.locator("p.flash")).to_contain_text("Session saved: 25 pages in")
    expect(page.locator("#book-pages")).to_contain_text("Page 25 of 160")
    history = page.locator("#session-history tbody tr")
    expect(history).to_have_count(1)
    expect(history.first.locator("td").nth(3)).to_have_text("25")

    # A past session typed in (yesterday evening, in the reader's zone: UTC here).
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    page.get_by_text("Add a past session").click()
    form = page.locator("#past-session-form")
    form.get_by_label("Start").fill(f"{yesterday}T20:00")
    form.get_by_label("End").fill(f"{yesterday}T21:00")
    form.get_by_label("Pages read").fill("40")
    navigate(page, form.get_by_role("button", name="Save session"))
    expect(page.locator("p.flash")).to_have_text("Past session saved: 40 pages.")
    expect(history).to_have_count(2)  # newest first
    expect(history.nth(1).locator("td").first).to_have_text(f"{yesterday} 20:00")

    today = datetime.now(UTC).date()
    page.get_by_text("Mark finished").click()
    page.get_by_label("Started").fill(str(today - timedelta(days=2)))
    page.get_by_label("Finished", exact=True).fill(str(today))
    navigate(page, page.locator("#finish-form").get_by_role("button", name="Save"))
    expect(page.locator("p.flash")).to_have_text("Marked finished and logged.")
    expect(page.locator("#book-status")).to_have_text("Finished")
    logged = f"Read from {today - timedelta(days=2)} to {today} (160 pages)"
    expect(page.locator("#book-log")).to_contain_text(logged)
    return logged


def check_everything_remains(
    page: Page, app: Server, book_url: str, finish: str, logged: str
) -> None:
    page.goto(f"{app.url}/reading")
    expect(page.locator("#list-finish")).to_have_text(finish)
    expect(page.locator("section[aria-label='Finished']")).to_contain_text(FIRST)
    expect(page.locator("section[aria-label='To be read']")).to_contain_text(SECOND)
    page.goto(book_url)
    expect(page.locator("#session-history tbody tr")).to_have_count(2)
    expect(page.locator("#book-log")).to_contain_text(logged)
    # The stats page draws its charts from that session.
    page.goto(f"{app.url}/reading/stats")
    br.wait_chart(page, "pages-chart")
    br.wait_chart(page, "speed-chart")
    assert br.series_points(page, "pages-chart")["pages"] == 365
    expect(page.locator("#stat-pages")).to_have_text("65")


def check_accessibility(page: Page, app: Server, paths: tuple[str, ...]) -> None:
    for path in paths:
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)  # type: ignore[arg-type]
            page.goto(app.url + path)
            for chart in page.locator("[data-chart]").all():
                br.wait_chart(page, chart.get_attribute("id") or "")
            serious = br.axe_serious(page)
            assert not serious, f"{path} in the {theme} theme:\n" + "\n".join(serious)


def test_the_reading_journey_survives_restarts(
    server: tuple[Server, FakeBooks], browser: Browser
) -> None:
    app, books = server
    outside: list[str] = []

    def offline(route: Route) -> None:
        """Nothing leaves the machine: another host gets a blank image (covers only)."""
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.fulfill(status=200, content_type="image/gif", body=BLANK_GIF)

    context = browser.new_context(viewport=br.DESKTOP)
    context.set_default_timeout(15_000)
    context.route("**/*", offline)
    page = context.new_page()
    watch = br.PageWatch(page)
    try:
        register_and_sign_in(page, app)
        search_and_add(page, books)
        stored = start_timer(page)
        book_url = page.url

        # A restart while the timer runs: the new process shows the same running session,
        # counting from the stored start (a reload, another device or a restart lose nothing).
        app.restart()
        page.goto(book_url)
        expect(page.locator("#elapsed")).to_have_attribute("data-elapsed-since", stored)
        since = datetime.now(UTC) - datetime.fromisoformat(stored)
        assert seconds_of(page.locator("#elapsed").inner_text()) >= int(since.total_seconds()) - 2
        logged = stop_and_finish(page)

        # The dashboard: a finish date for the rest of the pile, the model and why.
        page.goto(f"{app.url}/reading")
        finish = page.locator("#list-finish").inner_text()
        assert datetime.strptime(finish, "%Y-%m-%d").date() >= datetime.now(UTC).date()
        expect(page.locator("#model-used")).to_have_text("speed")
        expect(page.locator("#list-range")).to_contain_text("P10")
        page.goto(f"{app.url}/")  # and the home page's reading card
        expect(page.locator("#home-list-finish")).to_have_text(finish)

        # Restart again: the list, the finish date, the session history and the log remain.
        app.restart()
        check_everything_remains(page, app, book_url, finish, logged)

        pages = ("/", "/reading", urlsplit(book_url).path, "/reading/stats")
        check_accessibility(page, app, pages)
        watch.detach()
        watch.assert_clean()
        assert outside, "no cover was asked for"
        assert all(urlsplit(u).hostname == "books.google.com" for u in outside), outside
    finally:
        context.close()
    assert app.runs == 3  # two restarts
