"""The Miner page and the crypto board through the real app on both databases: what each
page lists, the HTMX panel alone, the pickers, and the board's forms (add an asset, add and
delete alert rules) with the API's validation, nothing written on a refusal, and the
markets.write permission (anonymous 401, viewer 403, operator allowed)."""

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
from tests.support.web import csrf_of
from vigil.core.auth.permissions import Role
from vigil.core.auth.policy import route_policies
from vigil.core.models import JobLog
from vigil.core.runtime import Runtime
from vigil.markets import alerting, crypto
from vigil.markets.models import AlertRuleRow, Asset

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


# --- the crypto board ------------------------------------------------------------------------


def test_crypto_board_lists_assets_chart_alerts_and_rules(
    client: TestClient, board: datetime
) -> None:
    page = client.get("/markets/crypto", headers=BROWSER)
    assert page.status_code == 200, page.text
    html = page.text
    assert 'href="/markets/crypto" title="Markets (Charon)" aria-current="page"' in html

    assets = table(html, "crypto-assets")
    assert assets.count("<tr data-asset=") == 2
    btc = assets[assets.index('data-asset="BTC"') : assets.index('data-asset="ETH"')]
    assert "110 USD" in btc or "110.0 USD" in btc
    assert '<td class="num up">+10.00 %</td>' in btc
    assert '<svg class="sparkline"' in btc
    assert "<polyline" in btc
    assert "48 prices in the last 24 hours" in btc  # the sparkline is the last 24 h
    eth = assets[assets.index('data-asset="ETH"') :]
    assert '<td class="num down">-1.00 %</td>' in eth

    spec = chart_spec(html, "crypto-chart")  # BTC, first in the list, over 24 h
    (series,) = spec["panes"][0]["series"]
    assert series["name"] == "price"
    assert series["title"] == "BTC"
    assert len(series["data"]) == 48  # (now - 24 h, now]
    assert series["data"][-1][1] == pytest.approx(110)
    assert '<option value="BTC" selected>' in html
    assert '<option value="24h" selected>' in html

    alerts = table(html, "alerts-table")
    assert alerts.count("<tr data-alert=") == 1
    assert "BTC</td>" in alerts
    assert '<td class="up">+' in alerts

    rules = table(html, "rules-table")
    assert rules.count("<tr data-rule=") == 2
    assert "every asset (default)" in rules
    assert 'action="/markets/crypto/rules/' in rules

    for form in ('id="asset-form"', 'id="rule-form"', 'id="crypto-picker"'):
        assert form in html


def test_crypto_panel_for_htmx_leaves_the_forms_alone(client: TestClient, board: datetime) -> None:
    panel = client.get("/markets/crypto", params={"asset": "ETH", "window": "1h"}, headers=HTMX)
    assert panel.status_code == 200
    text = panel.text
    assert "<html" not in text
    assert text.lstrip().startswith('<section id="crypto-panel"')
    assert 'hx-include="#crypto-picker"' in text
    assert "every 60s" in text
    for form in ('id="asset-form"', 'id="rule-form"', 'id="crypto-picker"'):
        assert form not in text
    series = chart_spec(text, "crypto-chart")["panes"][0]["series"][0]
    assert series["title"] == "ETH"
    assert len(series["data"]) == 2


def test_the_window_picker(client: TestClient, board: datetime) -> None:
    def points(window: str) -> int:
        page = client.get(
            "/markets/crypto", params={"asset": "btc", "window": window}, headers=HTMX
        )
        assert page.status_code == 200
        return len(chart_spec(page.text, "crypto-chart")["panes"][0]["series"][0]["data"])

    assert points("1h") == 2  # now and 30 min ago
    assert points("24h") == 48
    assert points("7d") == points("30d") == 61
    for bad in ("2h", "1w", "24H", ""):
        answer = client.get("/markets/crypto", params={"window": bad}, headers=BROWSER)
        assert answer.status_code == 422, bad
        assert "1h, 24h, 7d, 30d" in answer.text
    unknown = client.get("/markets/crypto", params={"asset": "DOGE"}, headers=BROWSER)
    assert unknown.status_code == 404
    assert "no crypto asset DOGE" in unknown.text


def test_an_empty_board(client: TestClient) -> None:
    page = client.get("/markets/crypto", headers=BROWSER)
    assert page.status_code == 200
    assert "No crypto asset is tracked yet" in page.text
    assert "No alert rule" in page.text
    assert "No alert has fired." in page.text
    assert 'id="crypto-chart"' not in page.text


# --- adding an asset -------------------------------------------------------------------------

ADD = "/markets/crypto/assets"
RULES = "/markets/crypto/rules"


def test_adding_an_asset_with_htmx_answers_the_form_and_the_refreshed_panel(
    db: TransactionalDatabase, client: TestClient, tokens: dict[Role, str], board: datetime
) -> None:
    here = "http://testserver/markets/crypto?asset=ETH&window=1h"
    answer = client.post(
        ADD,
        data={"symbol": "sol", "source_ref": "bitcoin", "quote": "usd"},
        headers=as_role(tokens, Role.OPERATOR, **HTMX, **{"HX-Current-URL": here}),
    )
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "<html" not in text
    assert text.lstrip().startswith('<form id="asset-form"')
    assert 'id="asset-form-notice"' in text
    assert "Added SOL (bitcoin, in USD): 12 prices" in text
    form = text[: text.index("</form>")]
    assert 'name="symbol" value=""' in form  # a fresh form
    panel = text[text.index('<section id="crypto-panel"') :]
    assert 'hx-swap-oob="true"' in panel[:200]
    assert 'data-asset="SOL"' in panel
    # the user's picks (from the page's URL) are kept
    assert chart_spec(panel, "crypto-chart")["panes"][0]["series"][0]["title"] == "ETH"
    with db.session() as session:
        assert session.scalar(select(Asset.source_ref).where(Asset.code == "SOL")) == "bitcoin"


def test_adding_an_asset_without_javascript_redirects_with_a_flash(
    db: TransactionalDatabase, client: TestClient, tokens: dict[Role, str]
) -> None:
    answer = client.post(
        ADD,
        data={"symbol": "BTC", "source_ref": "bitcoin", "quote": "usd"},
        headers=as_role(tokens, Role.OPERATOR, **BROWSER),
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/markets/crypto?window=24h"
    page = client.get(answer.headers["location"], headers=BROWSER)
    assert 'class="flash flash-success"' in page.text
    assert "Added BTC" in page.text
    assert 'data-asset="BTC"' in page.text
    assert count(db, Asset) == 1


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"symbol": "SOL", "source_ref": "no-such-coin", "quote": "usd"}, "no price for coin id"),
        ({"symbol": "S", "source_ref": "ethereum", "quote": "usd"}, "is not valid"),
        ({"symbol": "SOL", "source_ref": "", "quote": "usd"}, "coin id"),
        ({"symbol": "SOL", "source_ref": "ethereum", "quote": "u$d"}, "quote currency"),
        ({"symbol": "BTC", "source_ref": "ethereum", "quote": "usd"}, "exists already"),  # 409
    ],
)
def test_a_refused_asset_shows_the_message_next_to_the_form_and_writes_nothing(
    db: TransactionalDatabase,
    client: TestClient,
    tokens: dict[Role, str],
    board: datetime,
    data: dict[str, str],
    needle: str,
) -> None:
    before = count(db, Asset)
    answer = client.post(ADD, data=data, headers=as_role(tokens, Role.OPERATOR, **HTMX))
    assert answer.status_code == 422, answer.text
    text = answer.text
    assert text.lstrip().startswith('<form id="asset-form"')
    error = re.search(
        r'<p id="asset-form-error" class="field-error" role="alert">(.*?)</p>', text, re.S
    )
    assert error, text
    assert needle in error.group(1)
    assert f'name="symbol" value="{data["symbol"]}"' in text  # the user's input is kept
    assert f'name="source_ref" value="{data["source_ref"]}"' in text
    assert "crypto-panel" not in text  # nothing changed, nothing to refresh
    assert count(db, Asset) == before

    page = client.post(
        ADD, data=data, headers=as_role(tokens, Role.OPERATOR, **BROWSER)
    )  # without JavaScript
    assert page.status_code == 422
    assert "<html" in page.text
    assert 'id="asset-form-error"' in page.text
    assert 'id="crypto-panel"' in page.text
    assert count(db, Asset) == before


def test_a_source_that_does_not_answer_is_shown_on_the_form(
    db: TransactionalDatabase, client: TestClient, tokens: dict[Role, str], coingecko: FakeCoinGecko
) -> None:
    for _ in range(2):
        coingecko.queue_fault(500, b'{"error":"boom"}')
    answer = client.post(
        ADD,
        data={"symbol": "BTC", "source_ref": "bitcoin", "quote": "usd"},
        headers=as_role(tokens, Role.OPERATOR, **HTMX),
    )
    assert answer.status_code == 422
    assert "did not answer" in answer.text
    assert "try again later" in answer.text
    assert count(db, Asset) == 0


# --- permissions -----------------------------------------------------------------------------


def test_writes_need_the_operator_permission(
    db: TransactionalDatabase, client: TestClient, tokens: dict[Role, str], board: datetime
) -> None:
    rule_id = 1
    with db.session() as session:
        rule_id = session.scalar(select(func.min(AlertRuleRow.id))) or 1
    writes = [
        (ADD, {"symbol": "SOL", "source_ref": "bitcoin", "quote": "usd"}),
        ("/markets/crypto/rules", {"asset": "BTC", "threshold_pct": "3", "window_minutes": "60"}),
        (f"/markets/crypto/rules/{rule_id}/delete", {}),
    ]
    assets, rules = count(db, Asset), count(db, AlertRuleRow)
    for path, data in writes:
        page = client.post(path, data=data, headers=BROWSER, follow_redirects=False)
        assert page.status_code == 303, path  # a browser is sent to sign in, and back
        assert page.headers["location"].startswith("/login?next=")
        htmx = client.post(path, data=data, headers=HTMX)
        assert htmx.status_code == 401, path
        assert htmx.headers["hx-redirect"].startswith("/login")
        script = client.post(path, data=data)
        assert script.status_code == 401, path
        assert script.headers["content-type"] == "application/problem+json"
        viewer = client.post(path, data=data, headers=as_role(tokens, Role.VIEWER, **HTMX))
        assert viewer.status_code == 403, path
        assert "markets.write" in viewer.text
    assert (count(db, Asset), count(db, AlertRuleRow)) == (assets, rules)


def test_a_signed_in_browser_posts_the_form_with_its_csrf_token(
    db: TransactionalDatabase, client: TestClient, tokens: dict[Role, str], board: datetime
) -> None:
    client.cookies.set("vigil_access", tokens[Role.OPERATOR])
    page = client.get("/markets/crypto", headers=BROWSER).text
    form = page[page.index('<form id="rule-form"') :]
    token = csrf_of(form)  # the rule form carries the CSRF token
    data = {"asset": "BTC", "threshold_pct": "3", "window_minutes": "60", "direction": "up"}
    refused = client.post(RULES, data=data, headers=BROWSER)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    sent = client.post(
        RULES, data={**data, "csrf_token": token}, headers=BROWSER, follow_redirects=False
    )
    assert sent.status_code == 303, sent.text
    assert count(db, AlertRuleRow) == 3


def test_every_page_route_declares_its_policy(client: TestClient) -> None:
    found = {
        (method, r.path): [str(p) for p in r.policies]
        for r in route_policies(client.app.routes)  # type: ignore[attr-defined]
        if r.path.startswith(("/markets/miner", "/markets/crypto"))
        for method in r.methods
    }
    write = ["require('markets.write')"]
    assert found == {
        ("GET", "/markets/miner"): ["public"],
        ("GET", "/markets/crypto"): ["public"],
        ("POST", "/markets/crypto/assets"): write,
        ("POST", "/markets/crypto/rules"): write,
        ("POST", "/markets/crypto/rules/{rule_id}/delete"): write,
    }


# --- alert rules -----------------------------------------------------------------------------


def test_the_rule_form_creates_a_rule(
    db: TransactionalDatabase, client: TestClient, tokens: dict[Role, str], board: datetime
) -> None:
    data = {
        "asset": "eth",
        "threshold_pct": "2.5",
        "window_minutes": "30",
        "direction": "down",
        "cooldown_minutes": "15",
        "enabled": "on",
    }
    answer = client.post(RULES, data=data, headers=as_role(tokens, Role.OPERATOR, **HTMX))
    assert answer.status_code == 200, answer.text
    assert answer.text.lstrip().startswith('<form id="rule-form"')
    assert 'id="rule-form-notice"' in answer.text
    assert "ETH, 2.5 % in 30 min, down" in answer.text
    panel = answer.text[answer.text.index('<section id="crypto-panel"') :]
    assert panel.count("<tr data-rule=") == 3
    with db.session() as session:
        rule = session.scalars(select(AlertRuleRow).where(AlertRuleRow.asset_code == "ETH")).one()
        assert (Decimal(rule.threshold_pct), rule.window_minutes, rule.direction) == (
            Decimal("2.5"),
            30,
            "down",
        )
        assert (rule.cooldown_minutes, rule.enabled) == (15, True)

    # no checkbox sent: a disabled rule; no asset: the default of every asset
    plain = client.post(
        RULES,
        data={
            "threshold_pct": "7",
            "window_minutes": "5",
            "direction": "both",
            "cooldown_minutes": "60",
        },
        headers=as_role(tokens, Role.OPERATOR, **BROWSER),
        follow_redirects=False,
    )
    assert plain.status_code == 303
    with db.session() as session:
        rule = session.scalars(
            select(AlertRuleRow).where(AlertRuleRow.threshold_pct == Decimal("7"))
        ).one()
        assert (rule.asset_code, rule.enabled) == (None, False)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"threshold_pct": "0"}, "Threshold %: Input should be greater than 0"),
        ({"threshold_pct": "lots"}, "Threshold %: Input should be a valid decimal"),
        ({"window_minutes": "0"}, "Window (minutes): Input should be greater than or equal to 1"),
        (
            {"direction": "sideways"},
            "Direction: Input should be &#39;up&#39;, &#39;down&#39; or &#39;both&#39;",
        ),
        ({"asset": "DOGE"}, "no asset &#39;DOGE&#39; to watch"),
        ({"asset": "B-T-C"}, "Asset: String should match pattern"),
    ],
)
def test_a_refused_rule_shows_the_message_and_writes_nothing(
    db: TransactionalDatabase,
    client: TestClient,
    tokens: dict[Role, str],
    board: datetime,
    change: dict[str, str],
    needle: str,
) -> None:
    data = {
        "asset": "BTC",
        "threshold_pct": "3",
        "window_minutes": "60",
        "direction": "up",
        **change,
    }
    before = count(db, AlertRuleRow)
    answer = client.post(RULES, data=data, headers=as_role(tokens, Role.OPERATOR, **HTMX))
    assert answer.status_code == 422, answer.text
    assert answer.text.lstrip().startswith('<form id="rule-form"')
    assert needle in answer.text, answer.text
    field, value = next(iter(change.items()))
    if field != "direction":
        assert f'name="{field}" value="{value}"' in answer.text  # the input is kept
    assert 'aria-invalid="true"' in answer.text
    assert count(db, AlertRuleRow) == before


def test_the_delete_button_removes_a_rule(
    db: TransactionalDatabase, client: TestClient, tokens: dict[Role, str], board: datetime
) -> None:
    with db.session() as session:
        rule_id = session.scalar(select(AlertRuleRow.id).where(AlertRuleRow.asset_code.is_(None)))
    here = "http://testserver/markets/crypto?asset=ETH&window=7d"
    answer = client.post(
        f"{RULES}/{rule_id}/delete",
        headers=as_role(tokens, Role.OPERATOR, **HTMX, **{"HX-Current-URL": here}),
    )
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert text.lstrip().startswith('<section id="crypto-panel"')
    assert f"Rule {rule_id} deleted." in text
    assert text.count("<tr data-rule=") == 1
    assert chart_spec(text, "crypto-chart")["panes"][0]["series"][0]["title"] == "ETH"
    assert '<option value="7d" selected>' not in text  # the picker is not in the panel
    assert count(db, AlertRuleRow) == 1

    again = client.post(
        f"{RULES}/{rule_id}/delete", headers=as_role(tokens, Role.OPERATOR, **BROWSER)
    )
    assert again.status_code == 404
    assert f"no alert rule {rule_id}" in again.text

    others = client.post(
        f"{RULES}/{rule_id + 1000}/delete",
        headers=as_role(tokens, Role.OPERATOR, **BROWSER),
        follow_redirects=False,
    )
    assert others.status_code == 404
    huge = client.post(
        f"{RULES}/99999999999/delete", headers=as_role(tokens, Role.OPERATOR, **BROWSER)
    )
    assert huge.status_code == 422
