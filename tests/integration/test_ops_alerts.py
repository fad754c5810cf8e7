"""Vigil's Alertmanager webhook receiver (POST /api/v1/alerts/alertmanager), the list of what it
stored (GET /api/v1/alerts) and the /ops/alerts page, on both databases: notifications in
Alertmanager's own format (version 4, as tests/integration/test_alertmanager.py sees a real
Alertmanager send them), upsert by fingerprint, idempotent re-delivery, firing -> resolved,
who may call, bad input refused whole, the page's roles and escaping."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import TransactionalDatabase, throwaway_postgres
from tests.support.app import api
from tests.support.auth import bearer, make_user
from tests.support.auth import sign_in as api_sign_in
from tests.support.web import BROWSER, web_sign_in
from vigil.core.auth.permissions import Role, permissions_of
from vigil.core.db import Database
from vigil.core.migrate import upgrade_to_head
from vigil.core.ops_alerts import api as ops_api
from vigil.core.ops_alerts import service
from vigil.core.ops_alerts.models import OpsAlert
from vigil.core.ops_alerts.schemas import MAX_ALERTS, Notification
from vigil.core.ops_alerts.web import safe_link

RECEIVE = "/api/v1/alerts/alertmanager"
ALERTS = "/api/v1/alerts"
TOKENS = "/api/v1/auth/service-tokens"
PAGE = "/ops/alerts"
ZERO = "0001-01-01T00:00:00Z"


def am_alert(
    name: str,
    severity: str,
    fingerprint: str,
    *,
    status: str = "firing",
    starts: str = "2026-12-04T13:58:30.123456789Z",
    ends: str = ZERO,
    summary: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One alert as Alertmanager 0.25 writes it (RFC 3339 times in nanoseconds, the zero time
    for no end, Prometheus's graph link)."""
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "namespace": "vigil", **labels},
        "annotations": {
            "summary": summary or f"{name} on vigil-api",
            "description": "5xx answers above 2 % of requests for 5 minutes.",
            "runbook_url": "https://example.org/runbooks/api-errors",
        },
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus-0:9090/graph?g0.expr=vigil_http_5xx_ratio+%3E+0.02"
        "&g0.tab=1",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    """A webhook body as Alertmanager posts it (group labels alertname and severity, as the
    shipped route groups)."""
    first = alerts[0]["labels"] if alerts else {}
    group = {k: first[k] for k in ("alertname", "severity") if k in first}
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": "vigil",
        "status": status or ("firing" if firing else "resolved"),
        "alerts": list(alerts),
        "groupLabels": group,
        "commonLabels": {**group, "namespace": "vigil"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager-0:9093",
        "version": "4",
        "groupKey": '{}/{}:{alertname="VigilApiErrorRate", severity="critical"}',
        "truncatedAlerts": 0,
    }


@pytest.fixture
def client(db: TransactionalDatabase) -> Iterator[TestClient]:
    test_client, _ = api(db, cache_ttl=0, rate_limit="")
    with test_client:
        yield test_client


def service_token(client: TestClient, db: TransactionalDatabase, scopes: list[str]) -> str:
    """A service token made through the API by a new Admin (as docs/observability.md says);
    the client is left signed out."""
    api_sign_in(client, db, Role.ADMIN)
    name = f"alertmanager-{'-'.join(scopes).replace('.', '_')}"
    created = client.post(TOKENS, json={"name": name, "scopes": scopes})
    assert created.status_code == 201, created.text
    client.headers.pop("Authorization")
    token: str = created.json()["token"]
    return token


@pytest.fixture
def am(client: TestClient, db: TransactionalDatabase) -> dict[str, str]:
    """The headers Alertmanager sends: its service token with alerts.receive."""
    return bearer(service_token(client, db, ["alerts.receive"]))


def stored(db: TransactionalDatabase) -> dict[str, OpsAlert]:
    with db.session() as session:
        return {a.fingerprint: a for a in session.scalars(select(OpsAlert))}


def count(db: TransactionalDatabase) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(OpsAlert)) or 0


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_a_notification_is_stored_by_fingerprint(
    client: TestClient, db: TransactionalDatabase, am: dict[str, str]
) -> None:
    body = notification(
        am_alert("VigilApiErrorRate", "critical", "5f2d4c1e9b8a7d63", pod="vigil-api-7c9d"),
        am_alert("VigilApiErrorRate", "critical", "0a1b2c3d4e5f6071", pod="vigil-api-8f2a"),
    )
    answer = client.post(RECEIVE, json=body, headers=am)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 2, "stored": 2}
    rows = stored(db)
    assert set(rows) == {"5f2d4c1e9b8a7d63", "0a1b2c3d4e5f6071"}
    row = rows["5f2d4c1e9b8a7d63"]
    assert (row.status, row.alertname, row.severity) == ("firing", "VigilApiErrorRate", "critical")
    assert row.labels["pod"] == "vigil-api-7c9d"
    assert row.annotations["summary"] == "VigilApiErrorRate on vigil-api"
    assert row.starts_at == datetime(2026, 12, 4, 13, 58, 30, 123456, tzinfo=UTC)
    assert row.ends_at is None  # Alertmanager's zero time
    assert row.generator_url.startswith("http://prometheus-0:9090/graph?")
    assert (row.receiver, row.external_url) == ("vigil", "http://alertmanager-0:9093")
    assert row.times_received == 1
    assert row.first_received_at == row.last_received_at


def test_a_redelivery_changes_nothing_but_the_count(
    client: TestClient, db: TransactionalDatabase, am: dict[str, str]
) -> None:
    body = notification(am_alert("VigilJobFailing", "warning", "77aa00bb11cc22dd"))
    for _ in range(3):
        assert client.post(RECEIVE, json=body, headers=am).status_code == 200
    (row,) = stored(db).values()
    assert row.times_received == 3
    assert row.status == "firing"
    assert row.last_received_at >= row.first_received_at


def test_firing_then_resolved_and_a_late_retry_of_an_older_episode(
    client: TestClient, db: TransactionalDatabase, am: dict[str, str]
) -> None:
    fp = "c0ffee0000000001"
    firing = am_alert("VigilNetworkDeviceDown", "critical", fp, device="core-sw1")
    assert client.post(RECEIVE, json=notification(firing), headers=am).status_code == 200
    resolved = {**firing, "status": "resolved", "endsAt": "2026-12-04T14:20:00.5Z"}
    answer = client.post(RECEIVE, json=notification(resolved), headers=am)
    assert answer.json() == {"received": 1, "stored": 1}
    row = stored(db)[fp]
    assert row.status == "resolved"
    assert row.ends_at == datetime(2026, 12, 4, 14, 20, 0, 500000, tzinfo=UTC)
    assert row.times_received == 2

    # It fires again: a new episode (a later startsAt) replaces the resolved one...
    again = am_alert("VigilNetworkDeviceDown", "critical", fp, starts="2026-12-04T15:00:00Z")
    client.post(RECEIVE, json=notification(again), headers=am)
    row = stored(db)[fp]
    assert (row.status, row.ends_at) == ("firing", None)
    assert row.starts_at == datetime(2026, 12, 4, 15, tzinfo=UTC)
    # ...and a late notice about the earlier episode changes nothing.
    late = client.post(RECEIVE, json=notification(resolved), headers=am)
    assert late.json() == {"received": 1, "stored": 0}
    row = stored(db)[fp]
    assert (row.status, row.times_received) == ("firing", 3)


def test_one_alert_twice_in_a_notification_is_stored_once(
    client: TestClient, db: TransactionalDatabase, am: dict[str, str]
) -> None:
    fp = "dddd000000000001"
    first = am_alert("VigilSourceStale", "warning", fp)
    later = am_alert("VigilSourceStale", "warning", fp, starts="2026-12-04T14:30:00Z")
    answer = client.post(RECEIVE, json=notification(later, first), headers=am)
    assert answer.json() == {"received": 1, "stored": 1}
    assert stored(db)[fp].starts_at == datetime(2026, 12, 4, 14, 30, tzinfo=UTC)


def test_who_may_deliver(client: TestClient, db: TransactionalDatabase) -> None:
    body = notification(am_alert("VigilApiErrorRate", "critical", "1111222233334444"))
    reader = service_token(client, db, ["ops.read"])
    assert "alerts.receive" not in permissions_of(Role.OPERATOR)  # Admin only, of the roles
    assert "alerts.receive" in permissions_of(Role.ADMIN)

    anonymous = problem(client.post(RECEIVE, json=body), 401)
    assert "Sign in" in anonymous["detail"]
    problem(client.post(RECEIVE, json=body, headers=bearer("vst_never-issued")), 401)
    forbidden = problem(client.post(RECEIVE, json=body, headers=bearer(reader)), 403)
    assert "alerts.receive" in forbidden["detail"]
    operator = api_sign_in(client, db, Role.OPERATOR)
    problem(client.post(RECEIVE, json=body, headers=bearer(operator["access_token"])), 403)
    assert count(db) == 0
    # The reader's token lists what was received (ops.read), and cannot deliver.
    assert client.get(ALERTS, headers=bearer(reader)).json()["total"] == 0


def _bad_bodies() -> list[tuple[str, Any]]:
    good = notification(
        am_alert("VigilApiErrorRate", "critical", "aaaa000000000001"),
        am_alert("VigilApiErrorRate", "critical", "aaaa000000000002"),
    )

    def with_second(**change: Any) -> dict[str, Any]:
        body = copy.deepcopy(good)
        body["alerts"][1].update(change)
        return body

    def with_label(key: str, value: str) -> dict[str, Any]:
        body = copy.deepcopy(good)
        body["alerts"][1]["labels"][key] = value
        return body

    many = copy.deepcopy(good)
    many["alerts"] = [
        am_alert("VigilApiErrorRate", "critical", f"{i:016x}") for i in range(MAX_ALERTS + 1)
    ]
    return [
        ("version 3", {**good, "version": "3"}),
        ("no alerts list", {k: v for k, v in good.items() if k != "alerts"}),
        ("unknown status", with_second(status="pending")),
        ("no fingerprint", with_second(fingerprint="")),
        ("fingerprint with a quote", with_second(fingerprint="ab'cd")),
        ("no startsAt", {**good, "alerts": [good["alerts"][0], {
            k: v for k, v in good["alerts"][1].items() if k != "startsAt"}]}),
        ("startsAt without a zone", with_second(startsAt="2026-12-04T13:58:30")),
        ("startsAt not a time", with_second(startsAt="yesterday")),
        ("startsAt past year 9999 in UTC", with_second(startsAt="9999-12-31T23:00:00-05:00")),
        ("no labels", with_second(labels={})),
        ("labels not strings", with_second(labels={"alertname": 5})),
        ("label key too long", with_label("k" * 201, "v")),
        ("label value too long", with_label("pod", "v" * 1025)),
        ("alertname too long", with_label("alertname", "A" * 201)),
        ("severity too long", with_label("severity", "s" * 65)),
        ("too many labels", with_second(labels={f"l{i}": "v" for i in range(65)})),
        ("NUL in a label", with_label("pod", "vigil\x00api")),
        ("NUL in an annotation", with_second(annotations={"summary": "a\x00b"})),
        ("annotation too long", with_second(annotations={"summary": "s" * 10_001})),
        ("generatorURL too long", with_second(generatorURL="http://x/" + "a" * 2000)),
        ("too many alerts", many),
        ("alerts not a list", {**good, "alerts": {"0": good["alerts"][0]}}),
        ("a list, not an object", [good]),
        ("negative truncatedAlerts", {**good, "truncatedAlerts": -1}),
    ]  # fmt: skip


def test_bad_input_is_a_422_problem_and_stores_nothing(
    client: TestClient, db: TransactionalDatabase, am: dict[str, str]
) -> None:
    for what, body in _bad_bodies():
        answer = client.post(RECEIVE, json=body, headers=am)
        assert answer.status_code == 422, f"{what}: {answer.status_code} {answer.text[:300]}"
        assert answer.headers["content-type"] == "application/problem+json", what
        assert answer.json()["detail"], what
        assert count(db) == 0, what
    for raw in (b"", b"{", b"null", b"\xff\xfe", b'{"version": "4"'):
        answer = client.post(
            RECEIVE, content=raw, headers={**am, "Content-Type": "application/json"}
        )
        problem(answer, 422)
    named = problem(client.post(RECEIVE, json=_bad_bodies()[11][1], headers=am), 422)
    assert "body field 'alerts.1.labels" in named["detail"]
    assert count(db) == 0


def test_a_body_past_the_size_limit_is_a_413(
    client: TestClient,
    db: TransactionalDatabase,
    am: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ops_api, "MAX_BODY_BYTES", 2048)
    body = notification(am_alert("VigilApiErrorRate", "critical", "bbbb000000000001"))
    assert len(json.dumps(body)) < 2048
    assert client.post(RECEIVE, json=body, headers=am).status_code == 200
    body["alerts"][0]["annotations"]["description"] = "x" * 3000
    problem(client.post(RECEIVE, json=body, headers=am), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        raw = json.dumps(body).encode()
        for start in range(0, len(raw), 512):
            yield raw[start : start + 512]

    chunked = client.post(
        RECEIVE, content=chunks(), headers={**am, "Content-Type": "application/json"}
    )
    problem(chunked, 413)
    assert stored(db)["bbbb000000000001"].times_received == 1


def test_the_list_filters_orders_and_pages(
    client: TestClient, db: TransactionalDatabase, am: dict[str, str]
) -> None:
    alerts = [
        am_alert("VigilJobFailing", "warning", "e000000000000001", starts="2026-12-04T10:00:00Z"),
        am_alert("VigilApiErrorRate", "critical", "e000000000000002",
                 starts="2026-12-04T09:00:00Z"),
        am_alert("VigilSourceStale", "warning", "e000000000000003", status="resolved",
                 starts="2026-12-04T12:00:00Z", ends="2026-12-04T12:30:00Z"),
        am_alert("VigilApiLatency", "info", "e000000000000004", starts="2026-12-04T11:00:00Z"),
    ]  # fmt: skip
    assert client.post(RECEIVE, json=notification(*alerts), headers=am).status_code == 200
    viewer = api_sign_in(client, db, Role.VIEWER)
    everything = client.get(ALERTS, headers=bearer(viewer["access_token"])).json()
    # Firing first, the most severe first, then the newest; resolved last.
    assert [a["fingerprint"][-1] for a in everything["items"]] == ["2", "1", "4", "3"]
    assert everything["total"] == 4
    assert everything["next_offset"] is None
    first = everything["items"][0]
    assert first["labels"]["alertname"] == "VigilApiErrorRate"
    assert first["starts_at"].startswith("2026-12-04T09:00:00")
    assert first["ends_at"] is None
    assert "id" not in first

    def names(query: str) -> list[str]:
        page = client.get(f"{ALERTS}?{query}")
        assert page.status_code == 200, page.text
        return [a["alertname"] for a in page.json()["items"]]

    assert names("status=resolved") == ["VigilSourceStale"]
    assert names("status=firing&severity=warning") == ["VigilJobFailing"]
    assert names("alertname=VigilApiLatency") == ["VigilApiLatency"]
    assert names("alertname=Nope") == []
    paged = client.get(f"{ALERTS}?limit=2&offset=1").json()
    assert [a["alertname"] for a in paged["items"]] == ["VigilJobFailing", "VigilApiLatency"]
    assert (paged["total"], paged["next_offset"]) == (4, 3)
    for bad in ("status=pending", "limit=0", "limit=1001", "offset=-1", f"severity={'s' * 65}"):
        problem(client.get(f"{ALERTS}?{bad}"), 422)
    user = api_sign_in(client, db, Role.USER)
    problem(client.get(ALERTS, headers=bearer(user["access_token"])), 403)
    client.headers.pop("Authorization")
    problem(client.get(ALERTS), 401)


def test_safe_link_allows_only_http_and_https() -> None:
    assert safe_link("http://prometheus:9090/graph?g0.expr=up") == (
        "http://prometheus:9090/graph?g0.expr=up"
    )
    assert safe_link("HTTPS://grafana.example.org/d/x") == "HTTPS://grafana.example.org/d/x"
    for bad in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>x</b>",
                "//evil.example/x", "/graph?x", "", "http:///nohost", "vbscript:msgbox(1)",
                "http://[::1"):  # fmt: skip
        assert safe_link(bad) is None, bad


def test_the_page_lists_firing_first_escapes_and_links_only_http(
    client: TestClient, db: TransactionalDatabase, am: dict[str, str]
) -> None:
    hostile = am_alert(
        "VigilXss", "critical", "f000000000000001", summary="<img src=x onerror=alert(1)>",
        pod="<script>alert('pod')</script>",
    )  # fmt: skip
    hostile["generatorURL"] = "javascript:alert(document.cookie)"
    resolved = am_alert(
        "VigilOldNews", "warning", "f000000000000002", status="resolved",
        starts="2026-12-04T08:00:00Z", ends="2026-12-04T08:10:00Z",
    )  # fmt: skip
    linked = am_alert("VigilLinked", "warning", "f000000000000003")
    body = notification(resolved, hostile, linked)
    assert client.post(RECEIVE, json=body, headers=am).status_code == 200

    viewer = make_user(db, client.app.state.auth, Role.VIEWER)  # type: ignore[attr-defined]
    web_sign_in(client, viewer.email)
    page = client.get(PAGE, headers=BROWSER)
    assert page.status_code == 200
    html = page.text
    table = html.split('id="ops-alerts-table"')[1]
    # Firing first (critical, then warning), resolved last.
    assert table.index("VigilXss") < table.index("VigilLinked") < table.index("VigilOldNews")
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#39;pod&#39;)&lt;/script&gt;" in table
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in table
    assert 'href="javascript:' not in html
    assert "javascript:alert(document.cookie)" in table  # shown as text, not a link
    assert 'href="http://prometheus-0:9090/graph?g0.expr=vigil_http_5xx_ratio+%3E+0.02&amp;' in (
        table
    )
    assert "3 alerts." in table
    assert 'href="/ops/alerts" aria-current="page"' in html  # the menu entry

    only_resolved = client.get(f"{PAGE}?status=resolved", headers={**BROWSER, "HX-Request": "true"})
    assert only_resolved.text.lstrip().startswith('<section id="ops-alerts-table">')
    assert "VigilOldNews" in only_resolved.text
    assert "VigilXss" not in only_resolved.text
    assert client.get(f"{PAGE}?status=pending", headers=BROWSER).status_code == 422


def test_the_page_needs_ops_read(client: TestClient, db: TransactionalDatabase) -> None:
    anonymous = client.get(PAGE, headers=BROWSER, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/ops/alerts"
    reader = make_user(db, client.app.state.auth, Role.USER)  # type: ignore[attr-defined]
    web_sign_in(client, reader.email)
    denied = client.get(PAGE, headers=BROWSER)
    assert denied.status_code == 403
    assert "ops.read" in denied.text
    home = client.get("/", headers=BROWSER).text
    assert 'href="/ops/alerts"' not in home  # no menu entry without ops.read
    client.cookies.clear()
    operator = make_user(db, client.app.state.auth, Role.OPERATOR)  # type: ignore[attr-defined]
    web_sign_in(client, operator.email)
    empty = client.get(PAGE, headers=BROWSER)
    assert empty.status_code == 200
    assert "No alert received yet." in empty.text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_deliveries_racing_on_new_alerts_store_each_once(backend: str, tmp_path: Path) -> None:
    """Eight deliveries of the same new alerts at once, each in its own transaction on a real
    (committing) database: one row per fingerprint, every delivery counted, none failed."""

    def race(url: str) -> None:
        db = Database.from_url(url)
        upgrade_to_head(db.engine)
        body = Notification.model_validate(
            notification(*(am_alert("VigilRace", "warning", f"7ace{i:012x}") for i in range(50)))
        )

        def deliver(_: int) -> int:
            with db.session(write=True) as session:
                return service.receive(session, body)

        try:
            with ThreadPoolExecutor(8) as pool:
                written = list(pool.map(deliver, range(8)))
            assert written == [50] * 8
            with db.session() as session:
                rows = list(session.scalars(select(OpsAlert)))
            assert len(rows) == 50
            assert {r.times_received for r in rows} == {8}
        finally:
            db.engine.dispose()

    if backend == "sqlite":
        race(f"sqlite:///{tmp_path / 'race.db'}")
        return
    with throwaway_postgres("vigil_race") as url:
        race(url)
