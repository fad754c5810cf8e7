"""The HTTP API through the real app (both backends): data, pagination, filters, problem+json
errors for bad input, health, readiness and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import TransactionalDatabase
from vigil.core.api import create_app
from vigil.core.db import Database
from vigil.core.models import JobLog
from vigil.core.runtime import Runtime
from vigil.markets import service
from vigil.markets.sources.base import Quote, SeriesKind
from vigil.settings import Settings

PROBLEM = "application/problem+json"
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(40)]


@pytest.fixture
def client(db: TransactionalDatabase) -> Iterator[TestClient]:
    with db.session() as session:
        service.store_quotes(
            session,
            [
                Quote("USD", "dolar amerykański", d, Decimal("4.0000") + Decimal(i) / 1000)
                for i, d in enumerate(DAYS)
            ]
            + [
                Quote("EUR", "euro", d, Decimal("4.3") + Decimal(i) / 100)
                for i, d in enumerate(DAYS[:10])
            ],
            SeriesKind.CURRENCY,
            "nbp",
        )
        service.store_quotes(
            session,
            [Quote("XAU", "złoto", d, Decimal("250.43")) for d in DAYS[:5]],
            SeriesKind.GOLD,
            "nbp",
        )
    app = create_app(Runtime.create(Settings(), db=db))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_problem(response: Response, status: int, *needles: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    for needle in needles:
        assert needle in body["detail"], body["detail"]
    return body  # type: ignore[no-any-return]


def test_rates_for_one_currency_in_date_order(client: TestClient) -> None:
    body = client.get("/api/v1/markets/rates", params={"code": "usd"}).json()
    assert body["total"] == 40
    assert body["next_offset"] is None
    assert [i["effective_date"] for i in body["items"]] == [d.isoformat() for d in DAYS]
    first = body["items"][0]
    assert first["code"] == "USD"
    assert first["rate_mid"] == "4.0000"
    assert first["source"] == "nbp"
    assert Decimal(body["items"][-1]["rate_mid"]) == Decimal("4.039")


def test_fetched_at_is_utc_iso_text_whatever_the_session_time_zone(
    db: TransactionalDatabase,
) -> None:
    fetched = datetime(2024, 1, 2, 23, 4, 5, 678901, tzinfo=UTC)
    with db.session() as session:
        service.store_quotes(
            session,
            [Quote("CHF", "frank szwajcarski", date(2024, 1, 2), Decimal("4.5"))],
            SeriesKind.CURRENCY,
            "nbp",
            fetched_at=fetched,
        )
    if db.engine.dialect.name == "postgresql":  # a server whose zone is not UTC
        db.connection.exec_driver_sql("SET TIME ZONE 'America/New_York'")
    client = TestClient(create_app(Runtime.create(Settings(cache_ttl=0), db=db)))
    for path, params in (("rates", {"code": "CHF"}), ("rates", {})):
        [item] = client.get(f"/api/v1/markets/{path}", params=params).json()["items"]
        assert item["fetched_at"] == "2024-01-02T23:04:05.678901Z"
        assert datetime.fromisoformat(item["fetched_at"]) == fetched


def test_price_pages_are_compact_json_whatever_the_text_inside(
    db: TransactionalDatabase,
) -> None:
    odd_source = 'n"b\\p ąę zł'  # a quote, a backslash and non-ASCII, all escaped or kept
    with db.session() as session:
        service.store_quotes(
            session,
            [Quote("CHF", "frank", d, Decimal("4.50")) for d in DAYS[:3]],
            SeriesKind.CURRENCY,
            odd_source,
        )
    client = TestClient(create_app(Runtime.create(Settings(cache_ttl=0), db=db)))
    response = client.get("/api/v1/markets/rates", params={"code": "CHF", "limit": 2})
    body = response.json()
    assert response.content == orjson.dumps(body)  # exactly what orjson would write
    assert [i["source"] for i in body["items"]] == [odd_source, odd_source]
    assert [i["rate_mid"] for i in body["items"]] == ["4.50", "4.50"]
    assert (body["total"], body["next_offset"]) == (3, 2)
    empty = client.get("/api/v1/markets/rates", params={"code": "CHF", "from": "2030-01-01"})
    assert empty.content == orjson.dumps(
        {"items": [], "total": 0, "limit": 1000, "offset": 0, "next_offset": None}
    )


def test_rates_date_filter_is_inclusive(client: TestClient) -> None:
    body = client.get(
        "/api/v1/markets/rates", params={"code": "USD", "from": "2024-01-05", "to": "2024-01-07"}
    ).json()
    assert [i["effective_date"] for i in body["items"]] == [
        "2024-01-05",
        "2024-01-06",
        "2024-01-07",
    ]
    assert body["total"] == 3


def test_rates_pagination(client: TestClient) -> None:
    page = client.get(
        "/api/v1/markets/rates", params={"code": "USD", "limit": 15, "offset": 30}
    ).json()
    assert (page["total"], page["limit"], page["offset"]) == (40, 15, 30)
    assert len(page["items"]) == 10
    assert page["next_offset"] is None
    page = client.get("/api/v1/markets/rates", params={"code": "USD", "limit": 15}).json()
    assert page["next_offset"] == 15
    assert page["items"][0]["effective_date"] == "2024-01-01"


def test_rates_without_code_list_every_currency(client: TestClient) -> None:
    body = client.get("/api/v1/markets/rates", params={"to": "2024-01-01"}).json()
    assert [(i["code"], i["effective_date"]) for i in body["items"]] == [
        ("EUR", "2024-01-01"),
        ("USD", "2024-01-01"),
    ]


def test_gold(client: TestClient) -> None:
    body = client.get("/api/v1/markets/gold", params={"from": "2024-01-02"}).json()
    assert body["total"] == 4
    assert body["items"][0] == {
        **body["items"][0],
        "effective_date": "2024-01-02",
        "price": "250.43",
    }


def test_currencies_list_with_coverage(client: TestClient) -> None:
    body = client.get("/api/v1/markets/currencies").json()
    assert body["total"] == 2
    usd = next(i for i in body["items"] if i["code"] == "USD")
    assert usd["first_date"] == "2024-01-01"
    assert usd["last_date"] == "2024-02-09"
    assert usd["kind"] == "currency"
    assert usd["name"] == "dolar amerykański"
    assert all(i["code"] != "XAU" for i in body["items"])


def test_sources_describe_the_installed_plugins(client: TestClient) -> None:
    coingecko, nbp = client.get("/api/v1/markets/sources").json()
    assert (coingecko["name"], coingecko["kinds"]) == ("coingecko", ["crypto"])
    assert coingecko["base_url"] == "https://api.coingecko.com/api/v3"
    assert nbp["name"] == "nbp"
    assert nbp["kinds"] == ["currency", "gold"]
    assert nbp["max_range_days"] == 93
    assert nbp["base_url"] == "https://api.nbp.pl/api"
    assert nbp["history_start"] == {"currency": "2002-01-02", "gold": "2013-01-02"}


def test_upcoming_runs_follow_the_cron(client: TestClient) -> None:
    upcoming = {
        u["job_type"]: u
        for u in client.get("/api/v1/markets/stats/upcoming", params={"count": 3}).json()
    }
    assert set(upcoming) == {"markets.sync", "markets.signals.watchdog", "markets.crypto.poll"}
    assert upcoming["markets.signals.watchdog"]["cron"] == "15 * * * *"
    sync = upcoming["markets.sync"]
    assert sync["job_type"] == "markets.sync"
    assert sync["cron"] == "0 * * * *"
    runs = [r.replace("Z", "+00:00") for r in sync["next_runs"]]
    times = [datetime.fromisoformat(r) for r in runs]
    assert len(times) == 3
    assert all(t.minute == 0 and t.second == 0 for t in times)
    assert times[1] - times[0] == timedelta(hours=1)


def test_miner_stats_summarise_jobs_log(client: TestClient, db: TransactionalDatabase) -> None:
    assert client.get("/api/v1/markets/stats/miner").json() == {"jobs": [], "recent": []}
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    with db.session() as session:
        session.add_all(
            [
                JobLog(
                    job_type="markets.sync",
                    status="ok",
                    started_at=start,
                    finished_at=start + timedelta(seconds=2),
                    duration_seconds=2.0,
                    rows_written=33,
                    parameters={},
                ),
                JobLog(
                    job_type="markets.sync",
                    status="failed",
                    started_at=start + timedelta(hours=1),
                    finished_at=start + timedelta(hours=1, seconds=4),
                    duration_seconds=4.0,
                    rows_written=0,
                    error="SourceError: NBP still failing",
                    parameters={},
                ),
                JobLog(
                    job_type="other.job",
                    status="ok",
                    started_at=start,
                    rows_written=1,
                    parameters={},
                ),
            ]
        )
    body = client.get("/api/v1/markets/stats/miner", params={"recent": 1}).json()
    (sync,) = body["jobs"]
    assert (sync["job_type"], sync["runs"], sync["ok"], sync["failed"]) == ("markets.sync", 2, 1, 1)
    assert sync["rows_written"] == 33
    assert sync["avg_duration_seconds"] == 3.0
    assert sync["last_success_at"].startswith("2024-01-01T12:00:02")
    assert sync["last_started_at"].startswith("2024-01-01T13:00:00")
    (latest,) = body["recent"]
    assert latest["status"] == "failed"
    assert latest["error"].startswith("SourceError")
    assert latest["duration_seconds"] == 4.0


# --- bad input: a clear 4xx problem, never a 500 -------------------------------------------------


def test_unknown_currency_is_404_and_lists_known_codes(client: TestClient) -> None:
    body = assert_problem(
        client.get("/api/v1/markets/rates", params={"code": "XYZ"}), 404, "XYZ", "EUR, USD"
    )
    assert body["instance"] == "/api/v1/markets/rates"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"from": "2024-02-01", "to": "2024-01-01"}, "after"),
        ({"from": "2024-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"code": "US$"}, "code"),
        ({"code": "DOLLARS"}, "code"),
    ],
)
def test_bad_rate_queries_are_422_problems(
    client: TestClient, params: dict[str, str], needle: str
) -> None:
    assert_problem(client.get("/api/v1/markets/rates", params=params), 422, needle)


def test_gold_rejects_reversed_range(client: TestClient) -> None:
    assert_problem(
        client.get("/api/v1/markets/gold", params={"from": "2024-02-01", "to": "2024-01-01"}),
        422,
        "from",
    )


def test_unknown_path_is_a_problem(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/nope"), 404, "/docs")


def test_wrong_method_is_a_problem(client: TestClient) -> None:
    assert_problem(client.post("/api/v1/markets/rates"), 405)


# --- platform endpoints ------------------------------------------------------------------------


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_ready_is_503_when_the_schema_is_not_migrated(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(Runtime.create(Settings(), db=db))
    with TestClient(app) as fresh:
        assert_problem(fresh.get("/health/ready"), 503, "vigil migrate")
    db.dispose()


def test_metrics_count_requests_by_route(client: TestClient) -> None:
    client.get("/api/v1/markets/rates", params={"code": "USD"})
    client.get("/api/v1/markets/rates", params={"code": "XYZ"})
    text = client.get("/metrics").text
    assert (
        'vigil_http_requests_total{method="GET",route="/api/v1/markets/rates",status="200"}' in text
    )
    assert (
        'vigil_http_request_errors_total{method="GET",route="/api/v1/markets/rates",'
        'status="404"}' in text
    )
    assert "vigil_http_request_duration_seconds_bucket" in text


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32
    problem = client.get(
        "/api/v1/markets/rates", params={"code": "XYZ"}, headers={"X-Request-ID": "trace-1"}
    )
    assert problem.json()["request_id"] == "trace-1"


def test_openapi_documents_the_defaults(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/v1/markets/rates"]["get"]["parameters"]}
    assert params["limit"]["schema"]["default"] == 1000
    assert params["limit"]["schema"]["maximum"] == 10000
    assert {"code", "from", "to", "limit", "offset"} <= set(params)
    assert client.get("/docs").status_code == 200


def test_cors_allows_only_the_configured_origins(db: TransactionalDatabase) -> None:
    settings = Settings(cors_origins=["https://dash.example.org"])
    with TestClient(create_app(Runtime.create(settings, db=db))) as cors_client:
        allowed = cors_client.get("/health", headers={"Origin": "https://dash.example.org"})
        assert allowed.headers["access-control-allow-origin"] == "https://dash.example.org"
        other = cors_client.get("/health", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_by_default(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": "https://dash.example.org"})
    assert "access-control-allow-origin" not in response.headers
