"""The web UI in headless Chromium (Debian's, through Playwright): what a first load
transfers and how soon the full-history chart is ready. Budgets (issue #6): JavaScript +
CSS on first load <= 600 KB compressed; a chart of the full history (~6,000 points,
range=all) ready in < 1 s, measured with the Performance API (navigation start, the time
origin, to the ``vigil:chart-ready:price-chart`` mark that vigil.js sets once it has drawn).

    .venv/bin/python bench/web_browser.py [--runs 10]

Starts the fake NBP server (a subprocess) and ``vigil up`` on a SQLite file under a temp
directory (full backfill; response cache on, as in production), waits for the jobs, then:

1. Each page once in a new browser context (empty cache): the bytes on the wire per
   resource type, from Chromium's own network log (DevTools protocol ``encodedDataLength``:
   compressed body plus headers), and the decoded sizes.
2. ``/markets/dashboard?code=USD&range=all`` as the first page of a new Chromium process
   (three launches), then ``--runs`` times cold (new context) and
   ``--runs`` times warm (reload in the same context, scripts cached): chart-ready, with the
   navigation timing around it (first byte, HTML received, DOMContentLoaded) so a miss
   shows where the time went.

Everything it started is stopped on exit and the temp directory removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from tests.support import browser as br  # noqa: E402

from _support import REPO, fake_nbp_process  # noqa: E402

BUDGET_ASSET_BYTES = 600 * 1024
BUDGET_CHART_MS = 1000.0
PAGES = {
    "home": "/",
    "dashboard 1y": "/markets/dashboard",
    "dashboard all": "/markets/dashboard?code=USD&range=all",
    "gold": "/markets/gold",
    "miner": "/markets/miner",
    "crypto": "/markets/crypto",
}
FULL_HISTORY = "/markets/dashboard?code=USD&range=all"
# Runs before the page's own scripts: a mark when DOMContentLoaded starts (vigil.js draws
# its charts in its own DOMContentLoaded listener, registered later).
DCL_MARK = (
    "document.addEventListener('DOMContentLoaded',"
    " () => performance.mark('bench:dcl-start'), {once: true});"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def vigil_up(nbp_url: str, workdir: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")} | {
        "VIGIL_DATA_DIR": str(workdir / "data"),
        "VIGIL_PORT": str(port),
        "VIGIL_NBP_BASE_URL": nbp_url,
        "VIGIL_COINGECKO_BASE_URL": "http://127.0.0.1:9/api/v3",
        "VIGIL_LOG_LEVEL": "WARNING",
        "VIGIL_RATE_LIMIT": "",
    }
    log = (workdir / "vigil.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "vigil"), "up"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_loaded(base, proc)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_loaded(base: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Until the backfill has finished and no job has run for 2 s."""
    deadline = time.monotonic() + timeout
    last, calm_since = None, time.monotonic()
    with httpx.Client(base_url=base, timeout=5) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"vigil up exited with {proc.returncode}")
            try:
                stats = client.get("/api/v1/markets/stats/miner", params={"recent": 0}).json()
            except (httpx.TransportError, ValueError):
                time.sleep(0.5)
                continue
            jobs = {j["job_type"]: j for j in stats["jobs"]}
            backfill = jobs.get("markets.backfill", {})
            state = (
                sum(j["runs"] for j in jobs.values()),
                sum(j["running"] for j in jobs.values()),
            )
            if state != last or state[1]:
                last, calm_since = state, time.monotonic()
            elif backfill.get("ok") and time.monotonic() - calm_since > 2:
                return
            time.sleep(0.3)
    raise SystemExit("the backfill did not finish in time")


def first_load(browser: Browser, url: str) -> dict[str, dict[str, int]]:
    """Bytes per resource type (Document, Script, Stylesheet, …) of one cold page load:
    ``wire`` (compressed body + headers, as Chromium counted them) and ``body`` (decoded)."""
    context = browser.new_context(viewport=br.DESKTOP)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    kinds: dict[str, str] = {}
    decoded: dict[str, int] = {}
    sizes: dict[str, dict[str, int]] = {}

    def received(event: dict[str, Any]) -> None:
        kinds[event["requestId"]] = event["type"]

    def data(event: dict[str, Any]) -> None:
        decoded[event["requestId"]] = decoded.get(event["requestId"], 0) + event["dataLength"]

    def finished(event: dict[str, Any]) -> None:
        kind = kinds.get(event["requestId"], "Other")
        entry = sizes.setdefault(kind, {"wire": 0, "body": 0, "count": 0})
        entry["wire"] += int(event["encodedDataLength"])
        entry["body"] += decoded.get(event["requestId"], 0)
        entry["count"] += 1

    cdp.on("Network.responseReceived", received)
    cdp.on("Network.dataReceived", data)
    cdp.on("Network.loadingFinished", finished)
    page.goto(url, wait_until="load")
    for chart in page.locator("[data-chart]").all():
        br.wait_chart(page, chart.get_attribute("id") or "")
    page.wait_for_load_state("networkidle")
    context.close()
    return sizes


def chart_ready(page: Page, url: str, reload: bool) -> dict[str, float]:
    if reload:
        page.reload(wait_until="load")
    else:
        page.goto(url, wait_until="load")
    br.wait_chart(page, "price-chart")
    timing = br.navigation_timing(page)
    ready = br.chart_ready_ms(page, "price-chart")
    dcl: float = page.evaluate(
        "() => { const m = performance.getEntriesByName('bench:dcl-start');"
        " return m.length ? m[m.length - 1].startTime : -1; }"
    )
    points = br.series_points(page, "price-chart")["price"]
    return {
        "ready": ready,
        "first_byte": timing["responseStart"],
        "html_done": timing["responseEnd"],
        "dcl": dcl,
        "draw": ready - dcl,
        "points": points,
    }


def summary(rows: list[dict[str, float]], key: str) -> str:
    values = sorted(r[key] for r in rows)
    return f"median {statistics.median(values):6.0f}  min {values[0]:6.0f}  max {values[-1]:6.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if why := br.chromium_missing():
        raise SystemExit(why)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"commit {commit}{' (src/ has uncommitted changes)' if dirty else ''}")
    workdir = Path(tempfile.mkdtemp(prefix="vigil_web_bench_"))
    try:
        with fake_nbp_process() as nbp_url, vigil_up(nbp_url, workdir) as base:
            print(f"vigil up at {base}, history loaded")
            with sync_playwright() as playwright:
                report_first_launch(playwright, base, runs=3)
                browser = br.launch(playwright)
                print(f"Chromium {browser.version}, headless")
                report_bytes(browser, base)
                report_chart(browser, base, args.runs)
                browser.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report_bytes(browser: Browser, base: str) -> None:
    print("\nfirst load, new context (bytes on the wire incl. headers / decoded body):")
    worst = 0
    for name, path in PAGES.items():
        sizes = first_load(browser, base + path)
        js, css = sizes.get("Script", {}), sizes.get("Stylesheet", {})
        doc = sizes.get("Document", {})
        assets = js.get("wire", 0) + css.get("wire", 0)
        worst = max(worst, assets)
        print(
            f"  {name:<14} JS {js.get('count', 0)} files {js.get('wire', 0):>8,} / "
            f"{js.get('body', 0):>8,}   CSS {css.get('count', 0)} files {css.get('wire', 0):>7,} "
            f"/ {css.get('body', 0):>7,}   JS+CSS {assets:>8,}   HTML {doc.get('wire', 0):>8,}"
        )
    verdict = "met" if worst <= BUDGET_ASSET_BYTES else "MISSED"
    print(
        f"SUMMARY js+css first load: largest {worst:,} bytes ({worst / 1024:.0f} KiB) compressed;"
        f" budget <= {BUDGET_ASSET_BYTES:,} {verdict}"
    )


def report_first_launch(playwright: Playwright, base: str, runs: int) -> None:
    """The full-history chart as a browser's very first page: a new Chromium process each
    time (its renderer starts with the page, nothing cached or compiled)."""
    rows = []
    for _ in range(runs):
        browser = br.launch(playwright)
        context = browser.new_context(viewport=br.DESKTOP)
        context.add_init_script(DCL_MARK)
        rows.append(chart_ready(context.new_page(), base + FULL_HISTORY, reload=False))
        browser.close()
    print(f"\n{FULL_HISTORY} as a new browser's first page, {runs} launches:")
    for key, what in (("dcl", "DOMContentLoaded"), ("ready", "price chart ready")):
        print(f"    {what:<26} {summary(rows, key)}")
    worst = max(r["ready"] for r in rows)
    verdict = "met" if worst < BUDGET_CHART_MS else "MISSED"
    print(
        f"SUMMARY chart ready first page of a new browser: max {worst:.0f} ms over {runs};"
        f" budget < {BUDGET_CHART_MS:.0f} ms {verdict}"
    )


def report_chart(browser: Browser, base: str, runs: int) -> None:
    url = base + FULL_HISTORY
    cold: list[dict[str, float]] = []
    for _ in range(runs):
        context = browser.new_context(viewport=br.DESKTOP)
        context.add_init_script(DCL_MARK)
        cold.append(chart_ready(context.new_page(), url, reload=False))
        context.close()
    context = browser.new_context(viewport=br.DESKTOP)
    context.add_init_script(DCL_MARK)
    page = context.new_page()
    chart_ready(page, url, reload=False)
    warm = [chart_ready(page, url, reload=True) for _ in range(runs)]
    context.close()
    print(f"\n{FULL_HISTORY}: {int(cold[0]['points'])} points in the price series")
    print("  ms since navigation start (Performance API)")
    for label, rows in (("cold (new context)", cold), ("warm (reload)", warm)):
        print(f"  {label}:")
        for key, what in (
            ("first_byte", "first byte of the HTML"),
            ("html_done", "HTML received"),
            ("dcl", "DOMContentLoaded"),
            ("draw", "  drawing the charts"),
            ("ready", "price chart ready"),
        ):
            print(f"    {what:<26} {summary(rows, key)}")
    for label, rows in (("cold", cold), ("warm", warm)):
        worst = max(r["ready"] for r in rows)
        median = statistics.median(r["ready"] for r in rows)
        verdict = "met" if worst < BUDGET_CHART_MS else "MISSED"
        print(
            f"SUMMARY chart ready {label}: median {median:.0f} ms, max {worst:.0f} ms over"
            f" {len(rows)} loads; budget < {BUDGET_CHART_MS:.0f} ms (every load) {verdict}"
        )


if __name__ == "__main__":
    main()
