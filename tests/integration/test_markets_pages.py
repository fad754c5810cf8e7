"""The Miner page through the real app on both databases: what it lists, the HTMX panel
alone, the pickers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import TransactionalDatabase
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.support.app import api
from tests.support.auth import TEST_AUTH_SETTINGS, login, make_user
from vigil.core.auth.permissions import Role
from vigil.core.models import JobLog
from vigil.core.runtime import Runtime
from vigil.markets import alerting, crypto
from vigil.markets.models import Asset

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HTMX = {**BROWSER, "HX-Request": "true"}
T0 = 1_764_000_000
CHART = [((T0 - 3600 + 300 * i) * 1000, f"9{i}000.5") for i in range(12)]


@pytest.fixture
def coingecko() -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko(
        {"bitcoin": {"usd": "91000.25"}, "ethereum": {"usd": "3000.5"}},
        last_updated_at=T0,
        charts={"bitcoin": CHART, "ethereum": CHART[:3]},
    ) as fake:
        yield fake


@pytest.fixture
def app(
    db: TransactionalDatabase, coingecko: FakeCoinGecko
) -> Iterator[tuple[TestClient, Runtime]]:
    client, runtime = api(
        db,
        coingecko_base_url=coingecko.base_url,
        coingecko_max_attempts=2,
        coingecko_backoff_initial_seconds=0,
        coingecko_backoff_max_seconds=0,
        ui_refresh_seconds=60,
        **TEST_AUTH_SETTINGS,
    )
    with client:
        yield client, runtime


@pytest.fixture
def client(app: tuple[TestClient, Runtime]) -> TestClient:
    return app[0]


@pytest.fixture
def tokens(db: TransactionalDatabase, client: TestClient) -> dict[Role, str]:
    """An access token of a signed-in operator and of a viewer."""
    auth = client.app.state.auth  # type: ignore[attr-defined]
    out = {}
    for role in (Role.OPERATOR, Role.VIEWER):
        out[role] = login(client, make_user(db, auth, role).email)["access_token"]
    return out


def as_role(tokens: dict[Role, str], role: Role, **headers: str) -> dict[str, str]:
    return {**headers, "Authorization": f"Bearer {tokens[role]}"}


# --- data ------------------------------------------------------------------------------------


def add_crypto(db: TransactionalDatabase, code: str, prices: list[tuple[datetime, str]]) -> None:
    now = datetime.now(UTC)
    with db.session(write=True) as session:
        asset = Asset(
            code=code,
            name=code.lower() + "-coin",
            kind="crypto",
            source="coingecko",
            quote="USD",
            source_ref=code.lower() + "-coin",
            created_at=now,
        )
        session.add(asset)
        session.flush()
        rows = [crypto.PriceRow(asset.id, ts, Decimal(p)) for ts, p in prices]
        crypto.store_prices(session, rows, "coingecko", now)


@pytest.fixture
def board(db: TransactionalDatabase) -> datetime:
    """BTC: a price every 30 min for 30 h, 100 → 110 over the last day (+10 %); ETH: two
    prices a few minutes old. A BTC rule that fired, and a default rule."""
    now = datetime.now(UTC).replace(microsecond=0)
    btc = [(now - timedelta(minutes=30 * k), "100") for k in range(60, 48, -1)]
    btc += [
        (now - timedelta(minutes=30 * k), str(100 + (48 - k) * 10 / 48)) for k in range(48, -1, -1)
    ]
    add_crypto(db, "BTC", btc)
    add_crypto(
        db, "ETH", [(now - timedelta(minutes=10), "3000"), (now - timedelta(minutes=5), "2970")]
    )
    with db.session(write=True) as session:
        alerting.create_rule(
            session, alerting.RuleInput("BTC", Decimal("5"), 1440, "up", 60), now=now
        )
        alerting.create_rule(
            session, alerting.RuleInput(None, Decimal("50"), 60, "both", 60), now=now
        )
        fired = alerting.evaluate_assets(session, ["BTC"], now + timedelta(seconds=1))
        assert len(fired.fired) == 1
    return now


def count(db: TransactionalDatabase, model: Any) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def table(page: str, table_id: str) -> str:
    start = page.index(f'id="{table_id}"')
    return page[start : page.index("</table>", start)]


def chart_spec(page: str, chart_id: str) -> dict[str, Any]:
    match = re.search(
        rf'<script type="application/json" id="{chart_id}-data">(.*?)</script>', page, re.S
    )
    assert match, f"no chart {chart_id} in the page"
    return json.loads(match.group(1))


# --- the Miner page --------------------------------------------------------------------------


@pytest.fixture
def runs(db: TransactionalDatabase) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)

    def run(job: str, status: str, minutes_ago: int, rows: int, **extra: Any) -> JobLog:
        started = now - timedelta(minutes=minutes_ago)
        finished = None if status == "running" else started + timedelta(seconds=2)
        return JobLog(
            job_type=job,
            status=status,
            started_at=started,
            finished_at=finished,
            duration_seconds=None if finished is None else 2.0,
            rows_written=rows,
            parameters={},
            worker="host-a:101",
            **extra,
        )

    with db.session(write=True) as session:
        session.add_all(
            [
                run("markets.backfill", "ok", 300, 21_600, message="153 requests"),
                run("markets.sync", "ok", 120, 35, message="2 days"),
                run("markets.sync", "skipped", 60, 0, message="no new quotes"),
                run("markets.crypto.poll", "failed", 3, 0, error="CoinGecko did not answer (429)"),
                run("markets.crypto.poll", "ok", 2, 2),
                run("markets.crypto.poll", "running", 0, 0),
                run("other.job", "ok", 1, 7),
            ]
        )
    return now


def test_miner_page_lists_runs_jobs_sources_and_schedule(
    client: TestClient, runs: datetime
) -> None:
    page = client.get("/markets/miner", headers=BROWSER)
    assert page.status_code == 200, page.text
    html = page.text
    assert "<title>Miner · Vigil</title>" in html
    assert 'href="/markets/miner" title="Markets (Charon)" aria-current="page"' in html
    log = table(html, "jobs-log")
    assert log.count("<tr data-run=") == 6  # the markets runs only, not other.job
    assert "other.job" not in html
    assert '<td class="status-failed">failed</td>' in log
    assert '<td class="status-running">running</td>' in log
    assert '<td class="status-ok">ok</td>' in log
    assert "CoinGecko did not answer (429)" in log
    assert "21,600" in log
    assert "2.00 s" in log
    assert "host-a:101" in log
    # newest first
    assert log.index("markets.crypto.poll") < log.index("markets.backfill")

    jobs = table(html, "jobs-table")
    assert (
        '<tr data-job="markets.sync"><td>markets.sync</td><td>nbp</td><td class="num">2</td>'
        in jobs
    )
    assert (
        '<tr data-job="markets.crypto.poll"><td>markets.crypto.poll</td><td>coingecko</td>' in jobs
    )

    sources = table(html, "sources-table")
    sync_ok = (runs - timedelta(minutes=120) + timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    assert re.search(rf'data-source="nbp">.*{sync_ok}', sources)
    assert 'data-source="coingecko"' in sources

    upcoming = table(html, "upcoming-table")
    assert (
        '<tr data-job="markets.sync"><td>markets.sync</td><td><code>0 * * * *</code></td>'
        in upcoming
    )
    assert "@every 60s" in upcoming  # the crypto poll
    assert upcoming.count("<time") >= 6  # three next runs of each

    spec = chart_spec(html, "rows-chart")
    assert spec["intraday"] is True
    series = {s["name"]: s for pane in spec["panes"] for s in pane["series"]}
    assert set(series) == {"markets.backfill", "markets.sync", "markets.crypto.poll"}
    assert [p[1] for p in series["markets.sync"]["data"]] == [35, 0]
    assert all(s["type"] == "histogram" for s in series.values())


def test_miner_panel_for_htmx_and_its_pickers(client: TestClient, runs: datetime) -> None:
    panel = client.get("/markets/miner", headers=HTMX)
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert panel.text.lstrip().startswith('<section id="miner-panel"')
    assert 'hx-include="#miner-picker"' in panel.text
    assert "every 60s" in panel.text
    assert 'id="miner-picker"' not in panel.text  # the picker stays as the user set it

    only_sync = client.get(
        "/markets/miner", params={"job": "markets.sync", "runs": 20}, headers=HTMX
    )
    log = table(only_sync.text, "jobs-log")
    assert log.count("<tr data-run=") == 2
    assert "markets.crypto.poll</td>" not in log
    assert {
        s["name"] for p in chart_spec(only_sync.text, "rows-chart")["panes"] for s in p["series"]
    } == {"markets.sync"}

    full = client.get(
        "/markets/miner", params={"job": "markets.sync", "runs": 100}, headers=BROWSER
    )
    assert '<option value="markets.sync" selected>' in full.text
    assert '<option value="100" selected>' in full.text

    for bad in ({"job": "markets.nope"}, {"runs": 7}, {"job": "other.job"}):
        answer = client.get("/markets/miner", params=bad, headers=BROWSER)
        assert answer.status_code == 422, bad
        assert 'class="error-page"' in answer.text


def test_miner_page_without_runs(client: TestClient) -> None:
    page = client.get("/markets/miner", headers=BROWSER)
    assert page.status_code == 200
    assert "No markets job has run yet." in page.text
    assert 'id="rows-chart"' not in page.text
