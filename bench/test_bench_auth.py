"""Issue #7's targets: "Authorization overhead on a cached GET: < 1 ms per request; argon2
parameters chosen so one login takes 50-200 ms here (record both)."

    .venv/bin/python -m pytest bench/test_bench_auth.py -p no:cacheprovider --benchmark-only

The app is the real one (``create_app``) on a migrated SQLite file, in memory cache, no rate
limit, called in-process through ASGI (no sockets, no HTTP parsing), BATCH requests per round
on one event loop; each figure is per request (the round's time / BATCH):

- ``cached public GET``: ``/api/v1/markets/rates?code=USD`` answered from the cache before
  routing (the policy ran on the first request only: its answer is learned as public);
- ``public GET`` / ``protected GET``: two routes that differ only in their policy,
  ``Depends(public)`` against ``Depends(require("audit.read"))`` with an Admin's Bearer JWT
  (decode, signature, expiry, the revoked-session lookup); their difference is the
  authorization overhead of a protected route;
- ``argon2 login``: ``POST /api/v1/auth/token`` with the default argon2id parameters
  (t=3, 64 MiB, 2 lanes): hash check, audit row, refresh token, JWT.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import Depends
from pytest_benchmark.fixture import BenchmarkFixture

from vigil.core.api import create_app
from vigil.core.auth import service as auth_service
from vigil.core.auth.permissions import Role
from vigil.core.auth.policy import public, require
from vigil.core.runtime import Runtime
from vigil.markets import service
from vigil.markets.sources.base import Quote, SeriesKind
from vigil.settings import Settings

BATCH = 500
ROUNDS = 20
TARGET_OVERHEAD_SECONDS = 0.001
LOGIN_RANGE_SECONDS = (0.050, 0.200)
PASSWORD = "a benchmark password"


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[Any, str]]:
    with tempfile.TemporaryDirectory(prefix="vigil_bench_auth_") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            rate_limit="",
            jwt_secret="bench-signing-key-that-is-at-least-32-bytes",
            login_rate_limit_account="1000000/minute",
            login_rate_limit_ip="1000000/minute",
        )
        runtime = Runtime.create(settings)
        runtime.migrate()
        with runtime.db.session(write=True) as session:
            days = [date(2024, 1, 1) + timedelta(days=i) for i in range(30)]
            quotes = [Quote("USD", "USD", d, Decimal("4.0")) for d in days]
            service.store_quotes(session, quotes, SeriesKind.CURRENCY, "nbp")
        application = create_app(runtime)

        @application.get("/bench/public", dependencies=[Depends(public)])
        async def open_route() -> dict[str, int]:
            return {"ok": 1}

        @application.get("/bench/protected", dependencies=[Depends(require("audit.read"))])
        async def protected_route() -> dict[str, int]:
            return {"ok": 1}

        auth = application.state.auth
        with runtime.db.session(write=True) as session:
            auth_service.create_user(
                session, auth.passwords, "bench@example.org", PASSWORD, role=Role.ADMIN
            )
        token = auth.login(runtime.db, "bench@example.org", PASSWORD, "127.0.0.1").access_token
        yield application, token
        runtime.close()


async def _call(
    app: Any,
    path: str,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "GET",
    body: bytes = b"",
) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return status


def _per_request(
    benchmark: BenchmarkFixture, app: Any, path: str, query: bytes = b"", token: str = ""
) -> float:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(_call(app, path, query, headers)) == 200  # warm, learn

        def batch() -> None:
            for _ in range(BATCH):
                loop.run_until_complete(_call(app, path, query, headers))

        benchmark.pedantic(batch, rounds=ROUNDS, warmup_rounds=2)
    finally:
        loop.close()
    per_request = float(benchmark.stats.stats.median) / BATCH
    benchmark.extra_info["per_request_us"] = round(per_request * 1e6, 1)
    print(f"\n{path}: {per_request * 1e6:.1f} us per request")
    return per_request


def test_cached_public_get(benchmark: BenchmarkFixture, app: tuple[Any, str]) -> None:
    application, _ = app
    query = b"code=USD&limit=10"
    per = _per_request(benchmark, application, "/api/v1/markets/rates", query)
    assert per < TARGET_OVERHEAD_SECONDS


def test_public_get(benchmark: BenchmarkFixture, app: tuple[Any, str]) -> None:
    _per_request(benchmark, app[0], "/bench/public")


def test_protected_get(benchmark: BenchmarkFixture, app: tuple[Any, str]) -> None:
    application, token = app
    per = _per_request(benchmark, application, "/bench/protected", token=token)
    assert per < TARGET_OVERHEAD_SECONDS * 2  # the whole request; the overhead is the gap


def test_argon2_login(benchmark: BenchmarkFixture, app: tuple[Any, str]) -> None:
    application, _ = app
    body = urlencode({"username": "bench@example.org", "password": PASSWORD}).encode()
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    loop = asyncio.new_event_loop()

    def login() -> None:
        status = loop.run_until_complete(
            _call(application, "/api/v1/auth/token", b"", headers, "POST", body)
        )
        assert status == 200

    try:
        benchmark.pedantic(login, rounds=15, warmup_rounds=1)
    finally:
        loop.close()
    median = float(benchmark.stats.stats.median)
    print(f"\nlogin: {median * 1000:.1f} ms")
    low, high = LOGIN_RANGE_SECONDS
    assert low <= median <= high
