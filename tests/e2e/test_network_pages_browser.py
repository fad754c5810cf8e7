"""The network devices pages in a real browser (Debian's Chromium via Playwright) against
one real ``vigil up`` (embedded SQLite) whose ICMP collector pings loopback devices every
10 s. The test process adds SNMP history (CPU, memory, interface rates and error counters)
and a status change straight into the process's SQLite file, as the collectors would write
them.

Checked: every page loads without console errors or failed requests and draws its charts;
the devices table's panel refreshes itself and keeps its filters; a column header sorts it
in place; the range picker redraws
the device page's charts in place; the add form works signed in as an Admin; axe-core finds
no serious or critical WCAG 2.1 A/AA violation on any page in either theme. Screenshots go
to docs/screenshots/ with ``VIGIL_SCREENSHOTS=1`` (else to a temporary directory)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy.orm import Session

from tests.conftest import service_unavailable
from tests.e2e.conftest import (
    REPO,
    Backend,
    VigilProcess,
    free_port,
    launch_vigil,
    stop_process,
    vigil_env,
    wait_for,
)
from tests.support import browser as br
from vigil.network.models import DeviceState, Sample

pytestmark = pytest.mark.e2e

REFRESH_SECONDS = 2
SCREENSHOTS = REPO / "docs" / "screenshots"
ADMIN = {"email": "netadmin@example.org", "password": "network pages' password"}


@dataclass
class NetApp:
    vigil: VigilProcess
    backend: Backend
    devices: dict[str, int]
    storage: dict[str, Any]  # the signed-in Admin's cookies, for new browser contexts
    shots: Path

    @property
    def url(self) -> str:
        return self.vigil.base_url


@pytest.fixture(scope="module", autouse=True)
def chromium_installed() -> None:
    if why := br.chromium_missing():
        service_unavailable(f"browser tests: {why}")


def _history(device_id: int, now: datetime) -> list[Sample]:
    """A day of SNMP samples every 5 minutes (eth1's in errors counter grows by 30 a poll,
    0.1 a second, and wraps at 2**32 on the way; eth0 has none) and an hour of RTTs every
    minute."""
    rows = []
    for minute in range(0, 24 * 60, 5):
        ts = now - timedelta(minutes=minute)
        wave = (minute % 120) / 120
        errors = float((2**32 - 30 * 100 + 30 * (24 * 12 - minute // 5)) % 2**32)
        rows += [
            Sample(device_id=device_id, metric="snmp.uptime_s", ts=ts, value=1e6 - 60 * minute),
            Sample(device_id=device_id, metric="if.eth0.in_errors", ts=ts, value=5.0),
            Sample(device_id=device_id, metric="if.eth0.out_errors", ts=ts, value=0.0),
            Sample(device_id=device_id, metric="if.eth1.in_errors", ts=ts, value=errors),
            Sample(device_id=device_id, metric="if.eth1.out_errors", ts=ts, value=0.0),
            Sample(device_id=device_id, metric="snmp.cpu_pct", ts=ts, value=10 + 30 * wave),
            Sample(device_id=device_id, metric="snmp.mem_pct", ts=ts, value=55.0),
            Sample(device_id=device_id, metric="if.eth0.in_bps", ts=ts, value=8e6 * (1 + wave)),
            Sample(device_id=device_id, metric="if.eth0.out_bps", ts=ts, value=2e6 * (1 + wave)),
            Sample(device_id=device_id, metric="if.eth1.in_bps", ts=ts, value=1e5),
            Sample(device_id=device_id, metric="if.eth1.out_bps", ts=ts, value=5e4),
        ]
    for minute in range(1, 60):
        ts = now - timedelta(minutes=minute)
        rows.append(Sample(device_id=device_id, metric="icmp.rtt_avg_ms", ts=ts, value=0.05))
    rows += [
        Sample(device_id=device_id, metric="if.eth0.oper", ts=now, value=1.0),
        Sample(device_id=device_id, metric="if.eth1.oper", ts=now, value=2.0),
    ]
    return rows


def _sign_in(browser: Browser, base_url: str) -> dict[str, Any]:
    context = browser.new_context(viewport=br.DESKTOP)
    try:
        page = context.new_page()
        page.goto(f"{base_url}/login?next=/network")
        page.fill("input[name=email]", ADMIN["email"])
        page.fill("input[name=password]", ADMIN["password"])
        page.click("#login-form button[type=submit]")
        page.wait_for_url(re.compile(r"/network$"))
        state: dict[str, Any] = context.storage_state()  # type: ignore[assignment]
        return state
    finally:
        context.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[NetApp]:
    tmp = tmp_path_factory.mktemp("network_browser")
    path = (tmp / "vigil.db").as_posix()
    backend = Backend("sqlite", env_url=f"sqlite:///{path}", sqlalchemy_url=f"sqlite:///{path}")
    port = free_port()
    env = vigil_env(backend, None, port, tmp / "data") | {
        "VIGIL_RUN_JOBS_ON_START": "false",  # no NBP backfill: this is about the network
        "VIGIL_UI_REFRESH_SECONDS": str(REFRESH_SECONDS),
        "VIGIL_CACHE_TTL": "0",
        "VIGIL_RATE_LIMIT": "",
        "VIGIL_LOG_LEVEL": "WARNING",
        "VIGIL_ARGON2_TIME_COST": "1",
        "VIGIL_ARGON2_MEMORY_KIB": "8",
        "VIGIL_ARGON2_PARALLELISM": "1",
        "VIGIL_NETWORK_SECRET_KEY": "e2e network key",
        "VIGIL_NETWORK_ICMP_TICK_SECONDS": "1",
        "VIGIL_NETWORK_ICMP_COUNT": "2",
        "VIGIL_NETWORK_ICMP_INTERVAL_SECONDS": "0",
        "VIGIL_NETWORK_ICMP_TIMEOUT_SECONDS": "0.5",
    }
    vigil = launch_vigil(("up",), env, tmp, tmp / "vigil", port, client_timeout=30)
    try:
        vigil.wait_ready()
        # The first account of a new installation is its Admin.
        assert vigil.client.post("/api/v1/auth/register", json=ADMIN).status_code == 201
        token = vigil.client.post(
            "/api/v1/auth/token", data={"username": ADMIN["email"], "password": ADMIN["password"]}
        ).json()["access_token"]
        vigil.client.headers["Authorization"] = f"Bearer {token}"
        devices: dict[str, int] = {}
        for body in (
            {"name": "core-router", "address": "127.0.0.1", "type": "router", "site": "lab",
             "tags": ["core"], "icmp_interval_seconds": 10},
            {"name": "access-switch", "address": "127.0.0.2", "type": "switch", "site": "lab",
             "tags": ["access"], "icmp_interval_seconds": 10, "snmp_interval_seconds": 60},
            {"name": "v6-host", "address": "::1", "type": "server", "site": "dc",
             "icmp_interval_seconds": 10},
            {"name": "spare-ap", "address": "spare-ap.example.org", "type": "ap", "site": "lab",
             "enabled": False},
        ):  # fmt: skip
            made = vigil.client.post("/api/v1/devices", json=body)
            assert made.status_code == 201, made.text
            devices[made.json()["name"]] = made.json()["id"]
        with Session(backend.engine) as session, session.begin():
            session.add_all(_history(devices["access-switch"], datetime.now(UTC)))

        def polled() -> bool | None:
            vigil.ensure_alive()
            items = vigil.get_json("/api/v1/devices", status="up")["items"]
            return True if len(items) == 3 else None

        wait_for(polled, timeout=60, what="the three loopback devices to be up", interval=0.5)
        shots = SCREENSHOTS if os.environ.get("VIGIL_SCREENSHOTS") == "1" else tmp / "shots"
        shots.mkdir(parents=True, exist_ok=True)
        yield NetApp(vigil, backend, devices, _sign_in(browser, vigil.base_url), shots)
    finally:
        vigil.client.close()
        stop_process(vigil.proc)
        backend.dispose()


@pytest.fixture
def page(app: NetApp, browser: Browser) -> Iterator[Page]:
    """A new browser context signed in as the Admin, at desktop width."""
    context = browser.new_context(viewport=br.DESKTOP, storage_state=app.storage)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def open_page(page: Page, app: NetApp, path: str) -> br.PageWatch:
    watch = br.PageWatch(page)
    response = page.goto(app.url + path, wait_until="load")
    assert response is not None
    assert response.status == 200, f"GET {path}: {response.status}"
    for chart in page.locator("[data-chart]").all():
        br.wait_chart(page, chart.get_attribute("id") or "")
    return watch


def pages(app: NetApp) -> dict[str, str]:
    switch = app.devices["access-switch"]
    return {
        "devices": "/network",
        "device": f"/network/devices/{switch}",
        "device-form": "/network/devices/new",
        "device-edit": f"/network/devices/{switch}/edit",
    }


PAGE_NAMES = ("devices", "device", "device-form", "device-edit")


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_every_network_page_loads_cleanly(app: NetApp, page: Page, name: str) -> None:
    path = pages(app)[name]
    watch = open_page(page, app, path)
    if name == "devices":
        assert page.locator("#devices-table tbody tr").count() == 4
        assert (
            page.locator(
                f'tr[data-device="{app.devices["core-router"]}"] .device-status'
            ).inner_text()
            == "up"
        )
        assert page.locator("#devices-table svg.sparkline").count() >= 1  # live RTTs
    if name == "device":
        for chart in ("rtt-chart", "cpu-chart", "if-chart-1", "if-chart-2"):
            assert max(br.series_points(page, chart).values()) > 0, chart
        assert br.series_points(page, "cpu-chart") == {"cpu": 288, "mem": 288}
        # Jitter from the collector's real polls, under RTT and loss.
        assert br.series_points(page, "rtt-chart")["jitter"] >= 1
        # Errors per second under each interface's traffic (charts in the table's order):
        # eth1's 0.1 a second, through a wrap; eth0's none.
        label = page.locator("#if-chart-2").get_attribute("aria-label") or ""
        assert label.startswith("access-switch eth1: ")
        assert "errors in and out per second below" in label
        errors = page.evaluate(
            "() => window.vigil.charts['if-chart-2'].series.err_in.data().map(p => p.value)"
        )
        assert len(errors) >= 287
        assert set(errors) == {0.1}
        quiet = page.evaluate(
            "() => window.vigil.charts['if-chart-1'].series.err_in.data().map(p => p.value)"
        )
        assert set(quiet) == {0.0}
    assert all(u.startswith(app.url) for u in watch.requests), "a request left the app"
    if name in ("devices", "device"):  # the forms are plain: no picture in the docs
        page.screenshot(path=app.shots / f"network-{name}.png", full_page=True)
    watch.detach()
    watch.assert_clean()


def test_the_table_refreshes_itself_and_keeps_its_filters(app: NetApp, page: Page) -> None:
    watch = open_page(page, app, "/network?site=lab")
    spare = page.locator(f'tr[data-device="{app.devices["spare-ap"]}"] .device-status')
    assert spare.inner_text() == "unknown"
    assert page.locator("#devices-table tbody tr").count() == 3  # not the dc host
    with Session(app.backend.engine) as session, session.begin():  # as the collector would
        session.add(DeviceState(device_id=app.devices["spare-ap"], status="down", failures=3))
    page.wait_for_function(
        "id => document.querySelector(`tr[data-device='${id}'] .device-status`)"
        ".textContent === 'down'",
        arg=app.devices["spare-ap"],
        timeout=(REFRESH_SECONDS + 8) * 1000,
    )
    assert page.locator("#devices-table tbody tr").count() == 3  # still only site lab
    assert page.url.endswith("/network?site=lab")
    watch.detach()
    watch.assert_clean()


def test_the_filter_form_updates_the_table_and_the_address(app: NetApp, page: Page) -> None:
    watch = open_page(page, app, "/network")
    page.evaluate("() => { window.__sameDocument = true; }")
    page.select_option("#device-filters select[name=site]", "dc")
    page.wait_for_function(
        "() => document.querySelectorAll('#devices-table tbody tr').length === 1"
    )
    assert "v6-host" in page.locator("#devices-table").inner_text()
    page.wait_for_url(re.compile(r"site=dc"))
    # Export CSV is swapped with the table: it exports the new filters.
    export = page.locator("#devices-panel #export-csv")
    assert export.get_attribute("href") == "/api/v1/devices/export?site=dc"
    page.fill("#filter-q", "nothing-like-this")
    page.wait_for_function(
        "() => document.querySelector('#devices-table').textContent.includes('No device matches')"
    )
    assert export.get_attribute("href") == "/api/v1/devices/export?q=nothing-like-this&site=dc"
    exported = page.request.get(app.url + "/api/v1/devices/export?site=dc")  # the session's
    assert [line.split(",")[0] for line in exported.text().splitlines()[1:]] == ["v6-host"]
    assert page.evaluate("() => window.__sameDocument") is True, "the page was reloaded"
    watch.detach()
    watch.assert_clean()


ROW_NAMES = (
    "() => [...document.querySelectorAll('#devices-table tbody tr th a')].map(a => a.textContent)"
)
SORTED = (  # [label, aria-sort] of the sorted column(s)
    "() => [...document.querySelectorAll('#devices-table th[aria-sort]')]"
    ".map(th => [th.textContent.trim(), th.getAttribute('aria-sort')])"
)
RTT_CELLS = (
    "() => [...document.querySelectorAll('#devices-table tbody tr')]"
    ".map(tr => tr.cells[3].textContent.trim())"
)


def test_a_column_header_sorts_the_table_in_place(app: NetApp, page: Page) -> None:
    """A header's link sorts the panel through HTMX (the address follows, the page stays),
    the other way on a second click, with aria-sort and an arrow on that column only; the
    filter form then keeps the sort; axe-core still finds nothing serious."""
    watch = open_page(page, app, "/network")
    page.evaluate("() => { window.__sameDocument = true; }")
    assert page.evaluate(SORTED) == [["Name \u25b2", "ascending"]]
    by_site = [d["name"] for d in app.vigil.get_json("/api/v1/devices", sort="site")["items"]]
    assert by_site[0] == "v6-host"  # dc before lab
    page.click("#devices-table thead a[data-sort=site]")
    page.wait_for_url(re.compile(r"/network\?sort=site$"))
    page.wait_for_function(f"() => ({SORTED})()[0][0].startsWith('Site')")
    assert page.evaluate(SORTED) == [["Site \u25b2", "ascending"]]
    assert page.evaluate(ROW_NAMES) == by_site
    page.click("#devices-table thead a[data-sort=site]")  # again: descending
    page.wait_for_url(re.compile(r"/network\?sort=-site$"))
    page.wait_for_function(f"() => ({SORTED})()[0][1] === 'descending'")
    assert page.evaluate(SORTED) == [["Site \u25bc", "descending"]]
    by_site_down = [d["name"] for d in app.vigil.get_json("/api/v1/devices", sort="-site")["items"]]
    assert page.evaluate(ROW_NAMES) == by_site_down
    assert by_site_down[0] != "v6-host"  # lab first now
    listed = app.vigil.get_json("/api/v1/devices", sort="name")["items"]
    no_site = [d["name"] for d in listed if d["site"] is None]  # the form test's printer
    assert by_site[len(by_site) - len(no_site) :] == no_site  # last both ways
    assert by_site_down[len(by_site_down) - len(no_site) :] == no_site
    # The last RTT, highest first: each row's shown RTT no lower than the next, the devices
    # never polled (a dash) last. Read at once: the panel refreshes itself every 2 s.
    page.click("#devices-table thead a[data-sort=rtt]")
    page.wait_for_url(re.compile(r"sort=rtt$"))
    page.wait_for_function(f"() => ({SORTED})()[0][0].startsWith('Last RTT')")
    page.click("#devices-table thead a[data-sort=rtt]")
    page.wait_for_url(re.compile(r"sort=-rtt$"))
    page.wait_for_function(f"() => ({SORTED})()[0][1] === 'descending'")
    cells = page.evaluate(RTT_CELLS)
    polled = [float(c.removesuffix(" ms")) for c in cells if c.endswith(" ms")]
    assert len(polled) >= 3, cells
    assert polled == sorted(polled, reverse=True), cells
    assert cells[len(polled) :] == ["\u2013"] * (len(cells) - len(polled)), cells
    # The filter form sends the sort along.
    page.select_option("#device-filters select[name=site]", "lab")
    page.wait_for_url(re.compile(r"site=lab"))
    assert "sort=-rtt" in page.url
    page.wait_for_function(f"() => ({SORTED})()[0][1] === 'descending'")
    assert page.evaluate(SORTED)[0][0].startswith("Last RTT")
    assert page.evaluate("() => window.__sameDocument") is True, "the page was reloaded"
    serious = br.axe_serious(page)
    assert not serious, "\n".join(serious)
    watch.detach()
    watch.assert_clean()


def test_the_range_picker_redraws_the_charts_in_place(app: NetApp, page: Page) -> None:
    watch = open_page(page, app, pages(app)["device"])
    page.evaluate("() => { window.__sameDocument = true; }")
    assert br.series_points(page, "cpu-chart")["cpu"] == 288  # 24 h every 5 min
    page.select_option("#range-picker select[name=range]", "1h")
    page.wait_for_url(re.compile(r"range=1h"))
    page.wait_for_function(
        "() => window.vigil.charts['cpu-chart'] &&"
        " window.vigil.charts['cpu-chart'].series.cpu.data().length === 12"
    )
    # A week: hourly points (the 1 h rollups and the raw tail), and the page says so.
    page.select_option("#range-picker select[name=range]", "7d")
    page.wait_for_url(re.compile(r"range=7d"))
    page.wait_for_function(
        "() => window.vigil.charts['cpu-chart'] &&"
        " [24, 25].includes(window.vigil.charts['cpu-chart'].series.cpu.data().length)"
    )
    assert (
        "each the mean of an hour" in page.locator("#rtt-chart + script + figcaption").inner_text()
    )
    assert page.evaluate("() => window.__sameDocument") is True
    watch.detach()
    watch.assert_clean()


def test_an_admin_adds_a_device_with_the_form(app: NetApp, page: Page) -> None:
    watch = open_page(page, app, "/network/devices/new")
    page.fill("#device-form input[name=name]", "lab-printer")
    page.fill("#device-form input[name=address]", "127.0.0.9")
    page.fill("#device-form input[name=tags]", "lab printers")
    page.select_option("#device-form select[name=snmp_version]", "2c")
    page.fill("#device-form input[name=community]", "e2e-community")
    page.click("#device-form button[type=submit]")
    page.wait_for_url(re.compile(r"/network/devices/\d+$"))
    assert "Device lab-printer added." in page.locator("[role=status].flash").inner_text()
    assert "SNMP v2c (stored encrypted)" in page.locator("#device-credentials").inner_text()
    assert "e2e-community" not in page.content()
    made = app.vigil.get_json("/api/v1/devices", q="lab-printer")["items"]
    assert [(d["address"], d["tags"], d["credentials"]) for d in made] == [
        ("127.0.0.9", ["lab", "printers"], "snmp-v2c")
    ]
    watch.detach()
    watch.assert_clean()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", PAGE_NAMES)
def test_network_pages_pass_the_accessibility_checks(
    app: NetApp, browser: Browser, name: str, theme: str
) -> None:
    """axe-core over each page in both themes, as tests/e2e/test_browser.py does for the
    other pages: no serious or critical WCAG 2.1 A/AA violation."""
    if not br.AXE.is_file():
        service_unavailable(f"{br.AXE} is missing: run `make install` (npm ci)")
    context = browser.new_context(
        viewport=br.DESKTOP,
        color_scheme=theme,  # type: ignore[arg-type]
        storage_state=app.storage,  # type: ignore[arg-type]
    )
    try:
        page = context.new_page()
        watch = open_page(page, app, pages(app)[name])
        serious = br.axe_serious(page)
        assert not serious, f"{name} in the {theme} theme:\n" + "\n".join(serious)
        watch.detach()
        watch.assert_clean()
    finally:
        context.close()


def test_phone_width_has_no_sideways_scroll(app: NetApp, browser: Browser) -> None:
    context = browser.new_context(viewport=br.PHONE, storage_state=app.storage)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        for path in ("/network", pages(app)["device"]):
            open_page(page, app, path).detach()
            assert br.horizontal_overflow(page) <= 0, f"{path}: {br.too_wide(page)}"
    finally:
        context.close()
