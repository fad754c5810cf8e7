"""Debian's Chromium driven by Playwright for Python: the launch the machine notes prescribe
(the installed binary, headless, no background networking; never a downloaded browser), a
watcher that collects what a page got wrong (console errors, uncaught exceptions, failed
requests, HTTP errors), and the reads the tests and the browser benchmark share (points per
chart series, the Performance API's chart-ready mark).

Playwright's ``launch()`` gives every browser a new, empty temporary profile (user data
dir) and removes it on close.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Page,
        Playwright,
        Request,
        Response,
        ViewportSize,
    )

CHROMIUM = os.environ.get("VIGIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: axe-core (Deque's accessibility engine; package.json devDependencies, `npm ci`).
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (make install)"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def axe_serious(page: Page) -> list[str]:
    """axe-core over the page as it is: WCAG 2.1 A and AA; the serious and critical
    violations, one line each (where: the first five elements)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    assert result["passes"], "axe checked nothing"
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(n["target"][0] for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@dataclass
class PageWatch:
    """Everything a page did wrong since it was attached: console errors, uncaught
    exceptions, requests that failed and answers >= 400. ``detach()`` before closing a page
    whose auto-refresh may be in flight, or the aborted request is counted."""

    page: Page
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", self._pageerror)
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)
        self.page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text} ({message.location})")

    def _pageerror(self, error: Exception) -> None:
        self.problems.append(f"uncaught exception: {error}")

    def _failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def detach(self) -> None:
        self.page.remove_listener("console", self._console)
        self.page.remove_listener("pageerror", self._pageerror)
        self.page.remove_listener("requestfailed", self._failed)
        self.page.remove_listener("response", self._response)
        self.page.remove_listener("request", self._request)

    def assert_clean(self, expected: tuple[str, ...] = ()) -> None:
        """No problem, but for those containing one of ``expected`` (e.g. the 422 of a form
        the test filled in wrongly on purpose, and Chromium's console line about it)."""
        problems = [p for p in self.problems if not any(e in p for e in expected)]
        assert not problems, "the page reported problems:\n" + "\n".join(problems)


def wait_chart(page: Page, chart_id: str, timeout_ms: float = 15_000) -> None:
    """Until vigil.js has drawn ``chart_id`` (its Performance API mark exists)."""
    page.wait_for_function(
        "id => performance.getEntriesByName('vigil:chart-ready:' + id).length > 0"
        " && !!(window.vigil && window.vigil.charts[id])",
        arg=chart_id,
        timeout=timeout_ms,
    )


def series_points(page: Page, chart_id: str) -> dict[str, int]:
    """Points per series of a drawn chart (as lightweight-charts holds them)."""
    counts: dict[str, int] = page.evaluate(
        """id => {
             const c = window.vigil.charts[id], out = {};
             for (const name in c.series) out[name] = c.series[name].data().length;
             return out;
           }""",
        chart_id,
    )
    return counts


def series_last(page: Page, chart_id: str, series: str) -> dict[str, Any] | None:
    """The last point of one series: {time, value} (or the candle's fields)."""
    point: dict[str, Any] | None = page.evaluate(
        """([id, name]) => {
             const data = window.vigil.charts[id].series[name].data();
             return data.length ? data[data.length - 1] : null;
           }""",
        [chart_id, series],
    )
    return point


def chart_ready_ms(page: Page, chart_id: str) -> float:
    """Milliseconds from navigation start (the Performance API's time origin) to the
    ``vigil:chart-ready:<id>`` mark vigil.js sets once the chart is drawn (the last one, if
    it was drawn more than once)."""
    value: float = page.evaluate(
        "id => { const m = performance.getEntriesByName('vigil:chart-ready:' + id);"
        " return m.length ? m[m.length - 1].startTime : -1; }",
        chart_id,
    )
    return value


def navigation_timing(page: Page) -> dict[str, float]:
    """The page's navigation entry (ms since navigation start): responseStart, responseEnd,
    domInteractive, domContentLoadedEventEnd, loadEventEnd."""
    timing: dict[str, float] = page.evaluate(
        """() => { const n = performance.getEntriesByType('navigation')[0];
                   return {responseStart: n.responseStart, responseEnd: n.responseEnd,
                           domInteractive: n.domInteractive,
                           domContentLoaded: n.domContentLoadedEventEnd,
                           load: n.loadEventEnd, transferSize: n.transferSize}; }"""
    )
    return timing


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the document is wider than the viewport (0: no sideways scroll)."""
    overflow: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )
    return overflow


def too_wide(page: Page, limit: int = 5) -> list[str]:
    """The outermost elements that reach past the viewport's right edge (for a failure
    message): tag, id or class, and their right edge in CSS pixels."""
    found: list[str] = page.evaluate(
        """limit => {
             const width = document.documentElement.clientWidth, out = [];
             for (const el of document.body.querySelectorAll('*')) {
               const right = el.getBoundingClientRect().right;
               if (right <= width + 0.5) continue;
               const placed = ['absolute', 'fixed'].includes(getComputedStyle(el).position);
               let parent = el.parentElement, inside = false;
               for (; parent && parent !== document.body; parent = parent.parentElement)
                 if (parent.getBoundingClientRect().right > width + 0.5
                     || (!placed && getComputedStyle(parent).overflowX !== 'visible')) {
                   inside = true; break;
                 }
               if (inside) continue;
               out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                        + (el.className && typeof el.className === 'string'
                           ? '.' + el.className.trim().split(/\\s+/).join('.') : '')
                        + ' right=' + Math.round(right));
               if (out.length >= limit) break;
             }
             return out;
           }""",
        limit,
    )
    return found
