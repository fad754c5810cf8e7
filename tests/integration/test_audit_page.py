"""The audit log page: Admin only (anonymous → sign in, others → 403), newest first, with
filters, changed fields and paging."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import TEST_AUTH_SETTINGS, make_user
from tests.support.auth import sign_in as api_sign_in
from tests.support.web import BROWSER, web_sign_in
from vigil.core.auth import audit
from vigil.core.auth.permissions import Role


@pytest.fixture
def client(db: TransactionalDatabase) -> Iterator[TestClient]:
    test_client, _ = api(db, **TEST_AUTH_SETTINGS)
    with test_client:
        yield test_client


def test_only_an_admin_sees_the_audit_log(client: TestClient, db: TransactionalDatabase) -> None:
    anonymous = client.get("/audit", headers=BROWSER, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/audit"
    api_sign_in(client, db, Role.OPERATOR)
    denied = client.get("/audit", headers=BROWSER)
    assert denied.status_code == 403
    assert "audit.read" in denied.text


def test_entries_newest_first_with_filters_and_changes(
    client: TestClient, db: TransactionalDatabase
) -> None:
    with db.session(write=True) as session:
        audit.record(session, "create", "markets.asset", 7, after={"code": "BTC"})
        audit.record(
            session, "update", "markets.alert_rule", 3,
            before={"threshold_pct": "5"}, after={"threshold_pct": "7.5"},
        )  # fmt: skip
    admin = api_sign_in(client, db, Role.ADMIN)
    page = client.get("/audit", headers=BROWSER)
    assert page.status_code == 200
    text = page.text
    assert text.index("markets.alert_rule") < text.index("markets.asset #7")  # newest first
    assert "<code>threshold_pct</code>: 5 → 7.5" in text
    assert admin["email"] in text  # its own sign-in is in the log too
    only_assets = client.get("/audit?entity=markets.asset", headers=BROWSER).text
    assert "markets.asset #7" in only_assets
    assert "markets.alert_rule" not in only_assets.split('id="audit-table"')[1]
    partial = client.get("/audit?action=update", headers={**BROWSER, "HX-Request": "true"})
    assert partial.text.lstrip().startswith('<section id="audit-table">')
    assert "1 entry" in partial.text


def test_paging_and_bad_dates(client: TestClient, db: TransactionalDatabase) -> None:
    with db.session(write=True) as session:
        for i in range(60):
            audit.record(session, "create", "test.thing", i)
    api_sign_in(client, db, Role.ADMIN)
    first = client.get("/audit?entity=test.thing", headers=BROWSER).text
    assert "60 entries, 1–50 shown" in first  # noqa: RUF001
    assert 'href="/audit?entity=test.thing&amp;offset=50">Older' in first
    second = client.get("/audit?entity=test.thing&offset=50", headers=BROWSER).text
    assert "test.thing #9<" in second
    assert "Newer" in second
    bad = client.get("/audit?since=2026-02-01&until=2026-01-01", headers=BROWSER)
    assert bad.status_code == 422


def test_the_menu_shows_audit_to_admins_only(client: TestClient, db: TransactionalDatabase) -> None:
    viewer = make_user(db, client.app.state.auth, Role.VIEWER)  # type: ignore[attr-defined]
    assert viewer.id is not None
    admin = make_user(db, client.app.state.auth, Role.ADMIN)  # type: ignore[attr-defined]
    web_sign_in(client, admin.email)
    assert 'href="/audit"' in client.get("/", headers=BROWSER).text
    client.cookies.clear()
    web_sign_in(client, viewer.email)
    assert 'href="/audit"' not in client.get("/", headers=BROWSER).text
