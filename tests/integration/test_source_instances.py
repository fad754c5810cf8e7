"""Configured source instances: created, validated, listed and removed over the API, and
really used: their base URL by the jobs, their on/off switch, their schedule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.fakes.nbp_server import FakeNBP
from tests.support.app import api
from vigil.core.runtime import Runtime
from vigil.markets.sources import nbp

SOURCES = "/api/v1/markets/sources"
NOWHERE = "http://127.0.0.1:9/api"  # nothing listens: only a configured source can work
TODAY = date(2024, 3, 8)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeNBP]:
    with FakeNBP(today=TODAY) as server:
        yield server


@pytest.fixture
def app(db: TransactionalDatabase, monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, Runtime]:
    monkeypatch.setattr(nbp, "warsaw_today", lambda: TODAY)
    return api(
        db,
        as_role="operator",
        nbp_base_url=NOWHERE,
        nbp_max_attempts=1,
        nbp_currency_start=TODAY - timedelta(days=10),
        nbp_gold_start=TODAY - timedelta(days=10),
    )


def configure(client: TestClient, **body: Any) -> Any:
    return client.post(SOURCES, json={"name": "nbp-mirror", "kind": "nbp", **body})


def test_an_instance_is_listed_under_its_plugin_and_removed(
    app: tuple[TestClient, Runtime], fake: FakeNBP
) -> None:
    client, _ = app
    created = configure(client, base_url=fake.base_url, schedule="*/30 * * * *")
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == "nbp"
    by_plugin = {p["name"]: p for p in client.get(SOURCES).json()}
    assert [i["name"] for i in by_plugin["nbp"]["instances"]] == ["nbp-mirror"]
    assert by_plugin["coingecko"]["instances"] == []
    assert client.delete(f"{SOURCES}/nbp-mirror").status_code == 204
    assert client.delete(f"{SOURCES}/nbp-mirror").status_code == 404
    assert client.get(SOURCES).json()[1]["instances"] == []


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"kind": "yahoo"}, 422, "installed source plug-ins are coingecko, nbp"),
        ({"base_url": "not a url"}, 422, "base_url"),
        ({"schedule": "every hour"}, 422, "invalid cron expression"),
        ({"name": "NBP mirror!"}, 422, "name 'NBP mirror!' is not valid"),
    ],
)
def test_a_bad_instance_is_a_422_and_nothing_is_stored(
    app: tuple[TestClient, Runtime], body: dict[str, Any], status: int, needle: str
) -> None:
    client, _ = app
    response = configure(client, **{"base_url": "https://api.nbp.pl/api", **body})
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]
    assert all(p["instances"] == [] for p in client.get(SOURCES).json())


def test_a_taken_name_is_a_conflict(app: tuple[TestClient, Runtime]) -> None:
    client, _ = app
    assert configure(client, base_url="https://api.nbp.pl/api").status_code == 201
    again = configure(client, base_url="https://mirror.example/api")
    assert again.status_code == 409


def test_jobs_call_the_instance_and_stop_when_it_is_off(
    app: tuple[TestClient, Runtime], fake: FakeNBP
) -> None:
    client, runtime = app
    failed = runtime.runner.run("markets.sync")  # the setting's URL: nothing there
    assert failed.status == "failed"

    assert configure(client, base_url=fake.base_url).status_code == 201
    synced = runtime.runner.run("markets.sync")
    assert synced.status == "ok", synced.error
    assert synced.rows_written > 0

    client.delete(f"{SOURCES}/nbp-mirror")
    off_source = configure(client, name="nbp-off", base_url=fake.base_url, enabled=False)
    assert off_source.status_code == 201
    off = runtime.runner.run("markets.sync")
    assert off.status == "skipped"
    assert "switched off (configured source 'nbp-off')" in (off.message or "")


def test_an_instance_schedule_replaces_its_jobs_schedule(
    app: tuple[TestClient, Runtime],
) -> None:
    client, runtime = app
    configure(client, base_url="https://api.nbp.pl/api", schedule="*/30 * * * *")
    client.post(
        SOURCES,
        json={
            "name": "cg",
            "kind": "coingecko",
            "base_url": "https://api.coingecko.com/api/v3",
            "schedule": "*/5 * * * *",
        },
    )
    upcoming = {
        u["job_type"]: u["cron"] for u in client.get(f"{SOURCES[:-8]}/stats/upcoming").json()
    }
    assert upcoming["markets.sync"] == "*/30 * * * *"
    assert upcoming["markets.crypto.poll"] == "*/5 * * * *"
    assert runtime.schedule_overrides() == {
        "markets.sync": "*/30 * * * *",
        "markets.crypto.poll": "*/5 * * * *",
    }
