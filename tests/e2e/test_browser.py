"""The web UI in a real browser: Debian's Chromium, driven by Playwright for Python, against
one real ``vigil up`` process (embedded SQLite) per module, loaded with the full NBP history
from the fake NBP server and two crypto assets from a local fake CoinGecko.

What a user sees is checked against what the JSON API says about the same database: the
number of points in every chart series, the signals table, the new price after an
auto-refresh. Every page must load without console errors, uncaught exceptions or failed
requests.

Screenshots of every page are always taken (the code path is tested); with
``VIGIL_SCREENSHOTS=1`` they go to ``docs/screenshots/`` (commit them), otherwise to the
test's temporary directory.

The refresh test inserts its new price through the markets service layer
(``service.store_quotes``, the same call the NBP jobs make) into the process's SQLite file
from this test process: it is the "price inserted after page load" of the issue, it takes
milliseconds, and it does not depend on the hourly sync's schedule.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.conftest import service_unavailable
from tests.e2e.conftest import (
    REPO,
    STARTUP_TIMEOUT,
    Backend,
    FakeNbpProcess,
    VigilProcess,
    _read_ready_line,
    free_port,
    launch_vigil,
    stop_process,
    tail,
    vigil_env,
    warsaw_today,
)
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support import browser as br
from vigil.core.db import make_engine
from vigil.markets import service
from vigil.markets.dashboards import BAND_PERIOD, RANGES
from vigil.markets.sources import SeriesKind
from vigil.markets.sources.base import Quote

pytestmark = pytest.mark.e2e

REFRESH_SECONDS = 2
SCREENSHOTS = REPO / "docs" / "screenshots"
PAGES = {
    "home": "/",
    "dashboard": "/markets/dashboard",
    "gold": "/markets/gold",
    "miner": "/markets/miner",
    "crypto": "/markets/crypto",
}
CHARTS = {  # page -> charts it must draw
    "dashboard": ("price-chart", "candle-chart"),
    "gold": ("price-chart", "candle-chart"),
    "miner": ("rows-chart",),
    "crypto": ("crypto-chart",),
}
ONE_YEAR_DAYS = RANGES["1y"] or 0  # "1y": the last stored day and 366 days before it


# --------------------------------------------------------------------------- the process


@dataclass
class App:
    vigil: VigilProcess
    backend: Backend
    coingecko: FakeCoinGecko
    shots: Path

    @property
    def url(self) -> str:
        return self.vigil.base_url

    def api(self, path: str, **params: Any) -> Any:
        return self.vigil.get_json(path, **params)

    def last_day(self, code: str) -> date:
        kind = "gold" if code == "XAU" else "currency"
        items = self.api("/api/v1/markets/assets", kind=kind)["items"]
        return date.fromisoformat(next(a["last_date"] for a in items if a["code"] == code))

    def rate_days(
        self, code: str, start: date | None = None, end: date | None = None
    ) -> list[date]:
        path = "/api/v1/markets/gold" if code == "XAU" else "/api/v1/markets/rates"
        params: dict[str, Any] = {"limit": 10_000}
        if code != "XAU":
            params["code"] = code
        if start:
            params["from"] = start.isoformat()
        if end:
            params["to"] = end.isoformat()
        page = self.api(path, **params)
        assert page["next_offset"] is None, "more than one page of rates"
        return [date.fromisoformat(item["effective_date"]) for item in page["items"]]

    def nav_paths(self) -> set[str]:
        html = self.vigil.client.get("/", headers={"accept": "text/html"}).text
        return set(re.findall(r'<a href="(/[^"]*)"', html))


def _start_fake_nbp(workdir: Path) -> FakeNbpProcess:
    """The fake NBP as a subprocess (the conftest's fixture is per test; this is per module)."""
    today = warsaw_today()
    stderr_path = workdir / "fake_nbp.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.nbp_server", "--port", "0", "--seed", "7",
             "--today", today.isoformat()],
            cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert proc.stdout is not None
    line = _read_ready_line(proc, proc.stdout, STARTUP_TIMEOUT)
    if not line.startswith("READY "):
        stop_process(proc)
        pytest.fail(f"fake NBP did not start (got {line!r})\n{tail(stderr_path)}")
    return FakeNbpProcess(proc, line.split(" ", 1)[1], 7, today, stderr_path)


def _coingecko() -> FakeCoinGecko:
    """bitcoin and ethereum, with a last day of five-minute prices for the sparklines."""
    now = int(time.time())
    start = now - 24 * 3600

    def chart(base: float) -> list[tuple[int, str]]:
        return [
            ((start + 300 * i) * 1000, f"{base * (1 + 0.02 * ((i % 48) - 24) / 24):.2f}")
            for i in range(288)
        ]

    return FakeCoinGecko(
        {"bitcoin": {"usd": "64000.5"}, "ethereum": {"usd": "3100.25"}},
        last_updated_at=now - 30,
        charts={"bitcoin": chart(64000), "ethereum": chart(3100)},
    )


def _add_crypto_assets(vigil: VigilProcess) -> None:
    """BTC and ETH through the API, signed in when the API asks for it."""
    headers: dict[str, str] = {}
    for symbol, ref in (("BTC", "bitcoin"), ("ETH", "ethereum")):
        body = {"symbol": symbol, "source": "coingecko", "source_ref": ref, "quote": "usd"}
        response = vigil.client.post("/api/v1/markets/assets", json=body, headers=headers)
        if response.status_code in (401, 403) and not headers:
            headers = _admin_bearer(vigil)
            response = vigil.client.post("/api/v1/markets/assets", json=body, headers=headers)
        assert response.status_code == 201, (
            f"adding {symbol}: {response.status_code} {response.text}"
        )


ADMIN_EMAIL, OPERATOR_EMAIL = "admin@example.org", "operator@example.org"
PASSWORD = "browser tests' password"


def _bearer(vigil: VigilProcess, email: str) -> dict[str, str]:
    token = vigil.client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, f"signing in {email}: {token.status_code} {token.text}"
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _admin_bearer(vigil: VigilProcess) -> dict[str, str]:
    """The first registered account is an Admin."""
    vigil.client.post("/api/v1/auth/register", json={"email": ADMIN_EMAIL, "password": PASSWORD})
    return _bearer(vigil, ADMIN_EMAIL)


def _make_operator(vigil: VigilProcess) -> None:
    """A second account (a User), made an Operator by the Admin."""
    admin = _admin_bearer(vigil)
    made = vigil.client.post(
        "/api/v1/auth/register", json={"email": OPERATOR_EMAIL, "password": PASSWORD}
    )
    assert made.status_code == 201, f"registering the operator: {made.text}"
    promoted = vigil.client.patch(
        f"/api/v1/users/{made.json()['id']}", json={"role": "operator"}, headers=admin
    )
    assert promoted.status_code == 200, f"making an operator: {promoted.text}"


@pytest.fixture(scope="module", autouse=True)
def chromium_installed() -> None:
    """Skips every test here without Debian's Chromium (fails them with
    VIGIL_REQUIRE_SERVICES=1), before anything is started."""
    if why := br.chromium_missing():
        service_unavailable(f"browser tests: {why}")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One ``vigil up`` (SQLite) for the module: full NBP history, signals computed, BTC and
    ETH tracked; panels refresh every REFRESH_SECONDS, API answers are not cached (the
    refresh test writes from outside the process, which sends no event)."""
    tmp = tmp_path_factory.mktemp("browser")
    nbp = _start_fake_nbp(tmp)
    coingecko = _coingecko()
    coingecko.start()
    path = (tmp / "vigil.db").as_posix()
    backend = Backend("sqlite", env_url=f"sqlite:///{path}", sqlalchemy_url=f"sqlite:///{path}")
    port = free_port()
    env = vigil_env(backend, nbp, port, tmp / "data") | {
        "VIGIL_UI_REFRESH_SECONDS": str(REFRESH_SECONDS),
        "VIGIL_CACHE_TTL": "0",
        "VIGIL_RATE_LIMIT": "",
        "VIGIL_LOG_LEVEL": "WARNING",
        "VIGIL_COINGECKO_BASE_URL": coingecko.base_url,
        "VIGIL_COINGECKO_BACKOFF_INITIAL_SECONDS": "0.05",
        "VIGIL_ARGON2_TIME_COST": "1",
        "VIGIL_ARGON2_MEMORY_KIB": "8",
        "VIGIL_ARGON2_PARALLELISM": "1",
    }
    vigil = launch_vigil(("up",), env, tmp, tmp / "vigil", port)
    try:
        vigil.wait_ready()
        run = vigil.wait_backfill_finished(timeout=120)
        assert run["status"] == "ok", f"backfill: {run}\n{vigil.diagnostics()}"
        _add_crypto_assets(vigil)
        _make_operator(vigil)
        assert vigil.wait_jobs_idle(timeout=90), "jobs still running after 90 s"
        shots = SCREENSHOTS if os.environ.get("VIGIL_SCREENSHOTS") == "1" else tmp / "shots"
        shots.mkdir(parents=True, exist_ok=True)
        yield App(vigil, backend, coingecko, shots)
    finally:
        vigil.client.close()
        stop_process(vigil.proc)
        backend.dispose()
        coingecko.stop()
        stop_process(nbp.proc)
        if nbp.proc.stdout is not None:
            nbp.proc.stdout.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new browser context (no cookies, no storage) at desktop width."""
    context = browser.new_context(viewport=br.DESKTOP)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def open_page(page: Page, app: App, path: str) -> br.PageWatch:
    """Loads ``path``, watched; waits for every chart the page has to be drawn."""
    watch = br.PageWatch(page)
    response = page.goto(app.url + path, wait_until="load")
    assert response is not None, f"GET {path}: no response"
    assert response.status == 200, f"GET {path}: {response.status}"
    for chart in page.locator("[data-chart]").all():
        br.wait_chart(page, chart.get_attribute("id") or "")
    return watch


def require_page(app: App, name: str) -> str:
    """The page's path; every page but home must be in the menu."""
    path = PAGES[name]
    if path != "/":
        assert path in app.nav_paths(), f"{path} is not in the navigation menu"
    return path


def weeks(days: list[date]) -> int:
    return len({d.isocalendar()[:2] for d in days})


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_loads_cleanly(app: App, page: Page, name: str) -> None:
    """No console error, no uncaught exception, no failed request or HTTP error; the
    page's charts are drawn; a screenshot at desktop width."""
    path = require_page(app, name)
    watch = open_page(page, app, path)
    for chart in CHARTS.get(name, ()):
        assert page.locator(f"#{chart}").count() == 1, f"{path} has no {chart}"
        assert max(br.series_points(page, chart).values()) > 0, f"{chart} is empty"
    assert any(u.endswith(path) or path in u for u in watch.requests)
    static = [u for u in watch.requests if "/static/" in u]
    assert static, "no static files were loaded"
    assert all(u.startswith(app.url) for u in watch.requests), "a request left the app"
    page.screenshot(path=app.shots / f"{name}.png", full_page=True)
    watch.detach()
    watch.assert_clean()


def test_dashboard_charts_hold_every_rate_of_the_range(app: App, page: Page) -> None:
    """USD over 1 year: one chart point per stored rate (as /rates lists them) in the price,
    band and MACD series, one candle per week; the signals table is the API's BUY/SELL
    signals of that range, newest first."""
    last = app.last_day("USD")
    start = last - timedelta(days=ONE_YEAR_DAYS)
    days = app.rate_days("USD", start, last)
    watch = open_page(page, app, "/markets/dashboard?code=USD&range=1y")
    points = br.series_points(page, "price-chart")
    expected = dict.fromkeys(("price", "upper", "lower", "macd", "signal", "histogram"), len(days))
    assert points == expected
    assert br.series_points(page, "candle-chart") == {"weekly": weeks(days)}
    last_point = br.series_last(page, "price-chart", "price")
    assert last_point is not None
    assert last_point["time"] == _seconds(last)

    signals = app.api("/api/v1/markets/signals", code="USD", limit=10_000)["items"]
    crossings = [
        (s["as_of"], s["signal"])
        for s in signals
        if s["signal"] != "HOLD" and start <= date.fromisoformat(s["as_of"]) <= last
    ]  # newest first
    rows = page.locator("#signals-table tbody tr").all()
    shown = [tuple(r.locator("td").all_inner_texts()[:2]) for r in rows]
    assert shown == crossings[:50]
    watch.detach()
    watch.assert_clean()


def test_range_all_draws_the_full_history(app: App, page: Page) -> None:
    days = app.rate_days("USD")
    assert len(days) > 6000  # the full history since 2002
    watch = open_page(page, app, "/markets/dashboard?code=USD&range=all")
    points = br.series_points(page, "price-chart")
    assert points["price"] == len(days)
    assert points["upper"] == points["lower"] == len(days) - (BAND_PERIOD - 1)  # warm-up
    assert len(days) - 40 < points["macd"] <= len(days)
    assert br.series_points(page, "candle-chart") == {"weekly": weeks(days)}
    first = page.evaluate("() => window.vigil.charts['price-chart'].series.price.data()[0].time")
    assert first == _seconds(days[0])
    ready = br.chart_ready_ms(page, "price-chart")
    assert 0 < ready < 10_000  # the 1 s budget is measured by bench/web_browser.py
    watch.detach()
    watch.assert_clean()


def test_gold_chart_holds_every_price_of_the_year(app: App, page: Page) -> None:
    last = app.last_day("XAU")
    days = app.rate_days("XAU", last - timedelta(days=ONE_YEAR_DAYS), last)
    watch = open_page(page, app, "/markets/gold")
    assert br.series_points(page, "price-chart")["price"] == len(days)
    assert br.series_points(page, "candle-chart") == {"weekly": weeks(days)}
    watch.detach()
    watch.assert_clean()


def test_picking_another_currency_updates_the_chart_in_place(app: App, page: Page) -> None:
    watch = open_page(page, app, "/markets/dashboard?code=USD&range=1y")
    before = br.series_last(page, "price-chart", "price")
    page.evaluate("() => { window.__sameDocument = true; }")  # gone after a full reload
    main_requests = len([u for u in watch.requests if "/markets/dashboard" in u])

    page.select_option("#picker select[name=code]", "EUR")
    page.wait_for_url(re.compile(r"code=EUR"))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=latest-value]')"
        " && document.querySelector('#panel article header').textContent.includes('EUR')"
    )
    br.wait_chart(page, "price-chart")
    page.wait_for_function(
        "before => { const d = window.vigil.charts['price-chart'].series.price.data();"
        " return d.length && d[d.length - 1].value !== before; }",
        arg=before and before["value"],
    )
    assert page.evaluate("() => window.__sameDocument") is True, "the page was reloaded"
    assert "range=1y" in page.url
    last = app.last_day("EUR")
    days = app.rate_days("EUR", last - timedelta(days=ONE_YEAR_DAYS), last)
    assert br.series_points(page, "price-chart")["price"] == len(days)
    eur_last = app.api("/api/v1/markets/rates", code="EUR", **{"from": last.isoformat()})
    after = br.series_last(page, "price-chart", "price")
    assert after is not None
    assert after["value"] == pytest.approx(float(eur_last["items"][-1]["rate_mid"]))
    swaps = [u for u in watch.requests if "/markets/dashboard" in u]
    assert len(swaps) > main_requests  # the panel came from an HTMX request
    watch.detach()
    watch.assert_clean()


def test_auto_refresh_brings_in_a_price_inserted_after_page_load(app: App, page: Page) -> None:
    """A new USD rate, written after the page loaded, is on the chart and in the summary
    within a few refresh periods, without a reload and with the user's range kept."""
    watch = open_page(page, app, "/markets/dashboard?code=USD&range=3m")
    page.evaluate("() => { window.__sameDocument = true; }")
    last = app.last_day("USD")
    new_day, new_value = last + timedelta(days=1), Decimal("9.8765")

    engine = make_engine(app.backend.sqlalchemy_url)
    try:
        with engine.begin() as connection, Session(bind=connection) as session:
            written = service.store_quotes(
                session,
                [Quote("USD", "dolar amerykański", new_day, new_value)],
                SeriesKind.CURRENCY,
                "nbp",
                fetched_at=datetime.now(UTC),
            )
            session.flush()
        assert [w.rows for w in written] == [1]

        page.wait_for_function(
            "t => { const d = window.vigil.charts['price-chart'].series.price.data();"
            " return d.length && d[d.length - 1].time === t; }",
            arg=_seconds(new_day),
            timeout=(REFRESH_SECONDS * 4 + 5) * 1000,
        )
        assert page.evaluate("() => window.__sameDocument") is True, "the page was reloaded"
        assert br.series_last(page, "price-chart", "price") == {
            "time": _seconds(new_day),
            "value": float(new_value),
        }
        assert page.locator("[data-testid=latest-value]").inner_text() == "9.8765"
        assert page.locator("#picker select[name=range]").input_value() == "3m"
        # The 3-month window now ends a day later (and may start a day later too).
        window = app.rate_days("USD", new_day - timedelta(days=RANGES["3m"] or 0), new_day)
        assert window[-1] == new_day
        assert br.series_points(page, "price-chart")["price"] == len(window)
        watch.detach()
        watch.assert_clean()
    finally:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "DELETE FROM prices WHERE effective_date = :day AND asset_id ="
                    " (SELECT id FROM assets WHERE code = 'USD')"
                ),
                {"day": new_day.isoformat()},
            )
        engine.dispose()


def test_the_picker_is_reachable_and_usable_by_keyboard(app: App, page: Page) -> None:
    watch = open_page(page, app, "/markets/dashboard?code=USD&range=1y")
    page.locator("body").focus()
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        name = page.evaluate(
            "() => { const a = document.activeElement;"
            " return a && a.closest('#picker') ? a.tagName + ':' + (a.name || a.type) : null; }"
        )
        if name:
            reached.append(name)
            if name == "SELECT:code":
                break
    assert reached, "Tab never reached the picker"
    assert reached[-1] == "SELECT:code", f"Tab never reached the currency picker: {reached}"
    # The focused control shows it has the focus (a visible outline or box shadow).
    ring = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return s.outlineStyle !== 'none' && s.outlineWidth !== '0px' || s.boxShadow !== 'none'; }"
    )
    assert ring, "the focused picker shows no focus ring"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.name") == "range"
    watch.detach()
    watch.assert_clean()


@pytest.mark.parametrize("name", list(PAGES))
def test_phone_width_has_no_sideways_scroll(app: App, browser: Browser, name: str) -> None:
    """At 390 px the page body never scrolls sideways (a wide table scrolls in its box)."""
    path = require_page(app, name)
    context = browser.new_context(viewport=br.PHONE, device_scale_factor=2, is_mobile=True)
    try:
        page = context.new_page()
        watch = open_page(page, app, path)
        overflow = br.horizontal_overflow(page)
        assert overflow <= 0, f"{path} is {overflow} px wider than 390 px: {br.too_wide(page)}"
        if name == "dashboard":
            page.screenshot(path=app.shots / "dashboard-phone.png")  # the first screen
        watch.detach()
        watch.assert_clean()
    finally:
        context.close()


def test_dark_theme(app: App, browser: Browser) -> None:
    """The theme switch turns the page dark and redraws the charts; a screenshot."""
    context = browser.new_context(viewport=br.DESKTOP)
    try:
        page = context.new_page()
        watch = open_page(page, app, "/markets/dashboard?code=USD&range=1y")
        page.click("#theme-toggle")
        if page.evaluate("() => document.documentElement.dataset.theme") != "dark":
            page.click("#theme-toggle")  # the first click went from dark (system) to light
        assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert _luminance(background) < 0.2, f"dark theme background is {background}"
        page.wait_for_function(
            "() => performance.getEntriesByName('vigil:chart-ready:price-chart').length > 1"
        )
        page.screenshot(path=app.shots / "dashboard-dark.png", full_page=True)
        watch.detach()
        watch.assert_clean()
    finally:
        context.close()


def test_the_add_asset_form_shows_the_apis_validation_error(app: App, page: Page) -> None:
    """An Operator signs in on the login page and asks to track a coin CoinGecko does not
    know: the form shows the API's own message for that body, next to the form, keeps the
    input, and nothing is added."""
    body = {"symbol": "NOPE", "source": "coingecko", "source_ref": "no-such-coin", "quote": "usd"}
    api_answer = app.vigil.client.post(
        "/api/v1/markets/assets", json=body, headers=_bearer(app.vigil, OPERATOR_EMAIL)
    )
    assert api_answer.status_code == 422, api_answer.text
    detail = api_answer.json()["detail"]

    page.goto(f"{app.url}/login?next=/markets/crypto")
    page.fill("input[name=email]", OPERATOR_EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/markets/crypto"))
    watch = open_page(page, app, "/markets/crypto")
    page.evaluate("() => { window.__sameDocument = true; }")

    form = page.locator("#asset-form")
    form.locator("input[name=symbol]").fill(body["symbol"])
    form.locator("input[name=source_ref]").fill(body["source_ref"])
    form.locator("input[name=quote]").fill(body["quote"])
    form.locator("button[type=submit]").click()
    error = page.locator("#asset-form #asset-form-error")
    error.wait_for()
    assert error.inner_text().strip() == detail
    assert page.evaluate("() => window.__sameDocument") is True, "the page was reloaded"
    assert page.locator("#asset-form input[name=source_ref]").input_value() == "no-such-coin"
    assert page.locator("#asset-form input[name=symbol]").get_attribute("aria-invalid") == "true"
    codes = {a["code"] for a in app.api("/api/v1/markets/assets", kind="crypto")["items"]}
    assert "NOPE" not in codes
    watch.detach()
    watch.assert_clean(expected=("HTTP 422: POST", "status of 422"))


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", [*PAGES, "login"])
def test_pages_pass_the_accessibility_checks(
    app: App, browser: Browser, name: str, theme: str
) -> None:
    """axe-core (Deque's engine, from npm) over each page in both themes: WCAG 2.1 A and AA,
    which covers text contrast, labels of form fields, names of buttons and links, landmark
    and heading structure. No serious or critical violation may remain (chart canvases are
    images with a label; axe does not read their pixels)."""
    if not br.AXE.is_file():
        service_unavailable(f"{br.AXE} is missing: run `make install` (npm ci)")
    path = "/login" if name == "login" else require_page(app, name)
    context = browser.new_context(viewport=br.DESKTOP, color_scheme=theme)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        watch = open_page(page, app, path)
        serious = br.axe_serious(page)
        assert not serious, f"{path} in the {theme} theme:\n" + "\n".join(serious)
        watch.detach()
        watch.assert_clean()
    finally:
        context.close()


# --------------------------------------------------------------------------- helpers


def _seconds(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86_400


def _luminance(css_color: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", css_color)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
