"""The network alerts pages on SQLite and PostgreSQL, as signed-in browsers (cookie
sessions, CSRF tokens): the alert list with its state filter and HTMX partial, the
Acknowledge button for Operators only, the rules list and the add/edit/delete forms with
the API's validation and audit rows."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import make_user
from tests.support.web import BROWSER, csrf_of, web_sign_in
from vigil.core.auth.models import AuditEntry
from vigil.core.auth.permissions import Role
from vigil.core.db import utcnow
from vigil.network.models import AlertRule, Device, NetworkAlert

PAGE = "/network/alerts"
RULES = "/network/alerts/rules"
HTMX = {**BROWSER, "HX-Request": "true"}


def _browser(db: TransactionalDatabase, role: Role) -> TestClient:
    client, _ = api(db, cache_ttl=0, rate_limit="", network_secret_key="k", ui_refresh_seconds=30)
    account = make_user(db, client.app.state.auth, role)  # type: ignore[attr-defined]
    web_sign_in(client, account.email, PAGE)
    return client


def _alerts(db: TransactionalDatabase) -> tuple[int, int]:
    """A device with a firing and a resolved alert; returns their ids."""
    now = utcnow()
    with db.session(write=True) as session:
        device = Device(name="core-1", address="10.0.0.1", tags=",core,", maintenance=[])
        session.add(device)
        session.flush()
        firing = NetworkAlert(device_id=device.id, rule="device_down", state="firing",
                              started_at=now - timedelta(minutes=5), fired_at=now,
                              message="not answering ICMP", updated_at=now)  # fmt: skip
        resolved = NetworkAlert(device_id=device.id, rule="cpu", state="resolved",
                                started_at=now - timedelta(hours=1), resolved_at=now,
                                message="high cpu: 95%", updated_at=now)  # fmt: skip
        session.add_all([firing, resolved])
        session.flush()
        return firing.id, resolved.id


def _post(client: TestClient, page: str, action: str, **fields: str) -> tuple[int, str, str]:
    token = csrf_of(client.get(page, headers=BROWSER).text)
    answer = client.post(action, data={**fields, "csrf_token": token}, headers=BROWSER,
                         follow_redirects=False)  # fmt: skip
    text = answer.text
    if answer.status_code == 303:
        text = client.get(answer.headers["location"], headers=BROWSER).text
    return answer.status_code, answer.headers.get("location", ""), text


def test_the_alert_list_filters_and_an_operator_acknowledges(db: TransactionalDatabase) -> None:
    firing, resolved = _alerts(db)
    operator = _browser(db, Role.OPERATOR)
    page = operator.get(PAGE, headers=BROWSER)
    assert page.status_code == 200
    assert f'id="alert-{firing}"' in page.text  # open alerts by default
    assert f'id="alert-{resolved}"' not in page.text
    assert "Acknowledge" in page.text
    assert 'hx-trigger="every 30s"' in page.text  # the panel refreshes itself
    every = operator.get(PAGE, params={"state": "all"}, headers=HTMX)
    assert every.text.lstrip().startswith('<section id="alerts-panel"')  # the partial only
    assert 'hx-get="/network/alerts?state=all&amp;kind=&amp;device_id=&amp;page=1"' in every.text
    assert f'id="alert-{resolved}"' in every.text
    cpu = operator.get(PAGE, params={"state": "all", "kind": "cpu"}, headers=BROWSER).text
    assert f'id="alert-{firing}"' not in cpu
    assert f'id="alert-{resolved}"' in cpu
    assert operator.get(PAGE, params={"state": "bogus"}, headers=BROWSER).status_code == 422

    status, where, text = _post(operator, PAGE, f"{PAGE}/{firing}/ack")
    assert (status, where) == (303, PAGE)
    assert "acknowledged" in text
    with db.session() as session:
        alert = session.get(NetworkAlert, firing)
        assert alert is not None
        assert alert.state == "acknowledged"
        assert alert.acknowledged_by
        assert alert.acknowledged_at
    # Again: nothing to acknowledge (and no button left); a resolved one is refused.
    assert "Acknowledge</button>" not in operator.get(PAGE, headers=BROWSER).text
    _, _, text = _post(operator, PAGE, f"{PAGE}/{resolved}/ack")
    assert "only a firing alert can be acknowledged" in text

    viewer = _browser(db, Role.VIEWER)
    assert viewer.get(PAGE, headers=BROWSER).status_code == 200
    assert (
        "Acknowledge</button>"
        not in viewer.get(PAGE, params={"state": "all"}, headers=BROWSER).text
    )
    status, _, _ = _post(viewer, PAGE, f"{PAGE}/{firing}/ack")
    assert status == 403
    forged = operator.post(f"{PAGE}/{firing}/ack", data={"csrf_token": "00" * 32},
                           headers=BROWSER, follow_redirects=False)  # fmt: skip
    assert forged.status_code == 403


def test_the_rule_forms(db: TransactionalDatabase) -> None:
    _alerts(db)
    operator = _browser(db, Role.OPERATOR)
    assert "No rules yet" in operator.get(RULES, headers=BROWSER).text
    form = operator.get(f"{RULES}/new", headers=BROWSER)
    assert form.status_code == 200
    assert 'id="rule-form"' in form.text

    # Refused: a threshold out of range; the form comes back with the message and the input.
    status, _, text = _post(operator, f"{RULES}/new", RULES, name="hot", kind="cpu",
                            scope="tag", tag="core", threshold="150", enabled="on")  # fmt: skip
    assert status == 422
    assert "out of range" in text
    assert 'value="hot"' in text
    status, _, text = _post(operator, f"{RULES}/new", RULES, name="x", kind="cpu",
                            scope="device", device_id="", threshold="50")  # fmt: skip
    assert status == 422
    assert "exactly one" in text

    status, where, text = _post(operator, f"{RULES}/new", RULES, name="hot", kind="cpu",
                                scope="tag", tag="core", threshold="90", for_seconds="300",
                                recover_after="3", severity="critical", enabled="on")  # fmt: skip
    assert (status, where) == (303, RULES)
    assert "Rule &#39;hot&#39; added." in text or "Rule 'hot' added." in text
    with db.session() as session:
        rule = session.scalars(select(AlertRule)).one()
        assert (rule.kind, rule.tag, rule.threshold, rule.for_seconds, rule.recover_after) == (
            "cpu", "core", 90.0, 300, 3,
        )  # fmt: skip
    assert 'id="rule-' in operator.get(RULES, headers=BROWSER).text
    edit = operator.get(f"{RULES}/{rule.id}/edit", headers=BROWSER)
    assert 'value="90"' in edit.text
    status, _, _ = _post(operator, f"{RULES}/{rule.id}/edit", f"{RULES}/{rule.id}", name="hot",
                         scope="tag", tag="core", threshold="80", for_seconds="0",
                         recover_after="2", severity="warning")  # fmt: skip
    assert status == 303
    with db.session() as session:
        saved = session.get(AlertRule, rule.id)
        assert saved is not None
        assert (saved.threshold, saved.enabled, saved.severity) == (80.0, False, "warning")

    # Only Admins delete.
    status, _, _ = _post(operator, RULES, f"{RULES}/{rule.id}/delete")
    assert status == 403
    admin = _browser(db, Role.ADMIN)
    status, _, text = _post(admin, RULES, f"{RULES}/{rule.id}/delete")
    assert status == 303
    assert "deleted" in text
    with db.session() as session:
        assert session.scalars(select(AlertRule)).all() == []
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity == "network_alert_rule")
        ).all()
    assert actions == ["create", "update", "delete"]
    viewer = _browser(db, Role.VIEWER)
    assert viewer.get(RULES, headers=BROWSER).status_code == 200
    assert viewer.get(f"{RULES}/new", headers=BROWSER).status_code == 403
