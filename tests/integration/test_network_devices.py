"""The device inventory through the API on SQLite and PostgreSQL: roles, validation,
credentials encrypted and never returned, filters and paging, audit rows, CSV export and an
all-or-nothing CSV import."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import bearer, login, make_user
from vigil.core.auth.models import AuditEntry
from vigil.network.credentials import Vault
from vigil.network.models import Device

URL = "/api/v1/devices"
KEY = "test network key"


@pytest.fixture
def app(db: TransactionalDatabase) -> TestClient:
    client, _ = api(db, as_role="operator", cache_ttl=0, rate_limit="", network_secret_key=KEY)
    return client


def as_role(client: TestClient, db: TransactionalDatabase, role: str) -> dict[str, str]:
    user = make_user(db, client.app.state.auth, role)  # type: ignore[attr-defined]
    return bearer(login(client, user.email)["access_token"])


def add(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "core-1", "address": "10.0.0.1", **fields}
    response = client.post(URL, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_crud_with_roles_and_audit(app: TestClient, db: TransactionalDatabase) -> None:
    device = add(app, type="router", site="waw", tags=["core", "lab"], vendor="Cisco")
    assert device["status"] == "unknown"
    assert device["tags"] == ["core", "lab"]
    viewer = as_role(app, db, "viewer")
    assert app.get(f"{URL}/{device['id']}", headers=viewer).json()["name"] == "core-1"
    refused = app.post(URL, json={"name": "x", "address": "10.0.0.2"}, headers=viewer)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"

    changed = app.patch(f"{URL}/{device['id']}", json={"site": "krk", "enabled": False})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["site"], changed.json()["enabled"]) == ("krk", False)

    assert app.delete(f"{URL}/{device['id']}").status_code == 403  # an Operator
    admin = as_role(app, db, "admin")
    assert app.delete(f"{URL}/{device['id']}", headers=admin).status_code == 204
    assert app.get(f"{URL}/{device['id']}").status_code == 404

    with db.session() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "network_device").order_by(AuditEntry.id)
        ).all()
        assert [r.action for r in rows] == ["create", "update", "delete"]
        assert rows[1].changes == {
            "enabled": {"before": True, "after": False},
            "site": {"before": "waw", "after": "krk"},
        }
        assert rows[0].actor.startswith("operator")
        assert rows[2].actor.startswith("admin")


def test_credentials_are_stored_encrypted_and_never_returned(
    app: TestClient, db: TransactionalDatabase
) -> None:
    secret = "community-s3cret"
    device = add(app, credentials={"version": "2c", "community": secret})
    assert device["credentials"] == "snmp-v2c"
    for response in (app.get(f"{URL}/{device['id']}"), app.get(URL), app.get(f"{URL}/export")):
        assert secret not in response.text
    v3 = {
        "version": "3",
        "user": "ops",
        "auth_protocol": "SHA256",
        "auth_key": "auth-pass-123",
        "priv_protocol": "AES",
        "priv_key": "priv-pass-123",
    }
    response = app.patch(f"{URL}/{device['id']}", json={"credentials": v3})
    assert response.json()["credentials"] == "snmp-v3"
    assert "priv-pass-123" not in response.text
    with db.session() as session:
        stored = session.get(Device, device["id"])
        assert stored is not None
        assert stored.credentials is not None
        assert "priv-pass-123" not in stored.credentials
        vault = Vault.from_settings(app.app.state.runtime.settings)  # type: ignore[attr-defined]
        assert vault.open(stored.credentials)["priv_key"] == "priv-pass-123"
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "network_device")
        ).all()
        assert all("priv-pass-123" not in str(a.changes) + str(a.detail) for a in audit)
        assert audit[-1].detail == "credentials replaced"
    cleared = app.patch(f"{URL}/{device['id']}", json={"credentials": None})
    assert cleared.json()["credentials"] is None


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": "a", "address": "999.1.1.1"}, 422, "neither"),
        ({"name": "a", "address": "10.0.0.9", "icmp_interval_seconds": 0}, 422, "icmp_interval"),
        ({"name": "a", "address": "10.0.0.9", "parent_id": 999999}, 422, "no such device"),
        ({"name": "a", "address": "10.0.0.9", "colour": "red"}, 422, "colour"),
        ({"name": "CORE-1", "address": "10.0.0.9"}, 409, "exists already"),
        (
            {
                "name": "a",
                "address": "::1",
                "credentials": {
                    "version": "3",
                    "user": "u",
                    "priv_protocol": "AES",
                    "priv_key": "12345678",
                },
            },
            422,
            "priv",
        ),
        (
            {
                "name": "a",
                "address": "::1",
                "maintenance": [{"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}],
            },
            422,
            "end after",
        ),
    ],
)
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    app: TestClient, body: dict[str, Any], status: int, says: str
) -> None:
    add(app)
    response = app.post(URL, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"]
    assert app.get(URL).json()["total"] == 1


def test_parents_cannot_make_a_cycle(app: TestClient) -> None:
    a = add(app, name="a")
    b = add(app, name="b", address="10.0.0.2", parent_id=a["id"])
    response = app.patch(f"{URL}/{a['id']}", json={"parent_id": b["id"]})
    assert response.status_code == 422
    assert "cycle" in response.json()["detail"]
    assert app.patch(f"{URL}/{a['id']}", json={"parent_id": a["id"]}).status_code == 422


def test_filters_and_paging(app: TestClient) -> None:
    for i in range(7):
        add(
            app,
            name=f"sw-{i}",
            address=f"10.0.1.{i + 1}",
            type="switch" if i % 2 else "router",
            site="waw" if i < 4 else "krk",
            tags=["edge"] if i in (2, 5) else [],
        )
    page = app.get(URL, params={"limit": 3, "offset": 3}).json()
    assert [d["name"] for d in page["items"]] == ["sw-3", "sw-4", "sw-5"]
    assert (page["total"], page["next_offset"]) == (7, 6)
    assert app.get(URL, params={"site": "krk"}).json()["total"] == 3
    assert app.get(URL, params={"type": "switch"}).json()["total"] == 3
    assert [d["name"] for d in app.get(URL, params={"tag": "edge"}).json()["items"]] == [
        "sw-2",
        "sw-5",
    ]
    assert app.get(URL, params={"q": "10.0.1.7"}).json()["items"][0]["name"] == "sw-6"
    assert app.get(URL, params={"status": "unknown"}).json()["total"] == 7
    assert app.get(URL, params={"limit": 0}).status_code == 422
    assert app.get(URL, params={"status": "sideways"}).status_code == 422
    assert app.get(URL, params={"q": "a\x00"}).status_code == 422  # PostgreSQL refuses NUL


CSV = """name,address,type,site,tags,parent,enabled,icmp_interval_seconds
edge-1,10.0.2.1,router,waw,core;edge,,true,30
host-1,host-1.example.org,server,waw,,edge-1,true,60
host-2,2001:db8::2,server,krk,,edge-1,false,
"""


def test_csv_import_then_export_round_trips(app: TestClient) -> None:
    dry = app.post(
        f"{URL}/import", params={"dry_run": "true"}, content=CSV,
        headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    assert dry.json() == {"created": 3, "updated": 0, "dry_run": True}
    assert app.get(URL).json()["total"] == 0
    done = app.post(f"{URL}/import", content=CSV, headers={"Content-Type": "text/csv"})
    assert done.json() == {"created": 3, "updated": 0, "dry_run": False}
    devices = {d["name"]: d for d in app.get(URL).json()["items"]}
    assert devices["host-1"]["parent_id"] == devices["edge-1"]["id"]
    assert devices["host-2"]["enabled"] is False
    assert devices["edge-1"]["tags"] == ["core", "edge"]
    exported = app.get(f"{URL}/export")
    assert exported.headers["content-type"].startswith("text/csv")
    again = app.post(f"{URL}/import", content=exported.text, headers={"Content-Type": "text/csv"})
    assert again.json() == {"created": 0, "updated": 3, "dry_run": False}
    assert app.get(f"{URL}/export").text == exported.text
    assert "host-1,host-1.example.org,server,,,waw,,edge-1,true,60,,161" in exported.text
    with app.app.state.runtime.db.session() as session:  # type: ignore[attr-defined]
        actors = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.entity == "network_device")
        ).all()
    assert len(actors) == 3 + 2  # three created, two parents set; the re-import changed nothing
    assert all(a.startswith("operator") for a in actors)


def test_csv_import_is_all_or_nothing_with_every_wrong_row(app: TestClient) -> None:
    bad = (
        CSV
        + "broken,300.1.1.1,server,,,,,\n"
        + "orphan,10.0.2.9,server,,,nobody,,\n"
        + "edge-1,10.0.2.10,,,,,,\n"
        + "slow,10.0.2.11,,,,,,5\n"
    )
    response = app.post(f"{URL}/import", content=bad, headers={"Content-Type": "text/csv"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["row"] for e in errors] == [5, 6, 7, 8]
    assert "neither" in errors[0]["message"]
    assert "nobody" in errors[1]["message"]
    assert "repeats line 2" in errors[2]["message"]
    assert "icmp_interval_seconds" in errors[3]["message"]
    assert app.get(URL).json()["total"] == 0


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (CSV, "application/json", 415),
        ("nom,adresse\nx,y\n", "text/csv", 422),
        ("name,address\n", "text/csv", 422),
        (b"name,address\n\xff\xfe,1\n", "text/csv", 422),
        ("name,address\nx,10.0.0.1,extra\n", "text/csv", 422),
        ('name,address\n"unclosed,10.0.0.1\n', "text/csv", 422),
        ("name,address\na\rb,10.0.0.1\n", "text/csv", 422),
        ("name,address\nx\x00,10.0.0.1\n", "text/csv", 422),
    ],
)
def test_csv_import_refuses_what_is_not_a_device_file(
    app: TestClient, content: str | bytes, content_type: str, status: int
) -> None:
    response = app.post(f"{URL}/import", content=content, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
