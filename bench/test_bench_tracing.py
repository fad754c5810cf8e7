"""Issue #10: the cost of traces on the cached rates GET, with tracing off (must be ~0: nothing
is installed) and on.

    .venv/bin/python -m pytest bench/test_bench_tracing.py -p no:cacheprovider --benchmark-only -s

As bench/test_bench_auth.py: the real app on a migrated SQLite file with 30 USD rates,
in-memory cache, no rate limit, called in-process through ASGI, BATCH requests per round
(the figure: the fastest of ROUNDS rounds / BATCH, the median beside it);
logging configured as the roles do (JSON lines at INFO, written to /dev/null), so the access
line and its formatting are part of each request.

- ``off``: the default (OTEL_TRACES_EXPORTER unset). Run this file on a checkout from before
  vigil.core.tracing existed for the baseline (``on`` skips itself there).
- ``on``: tracing set up as OTEL_TRACES_EXPORTER=otlp does (BatchSpanProcessor), with an
  exporter that drops the spans, so the figure is the in-process cost (server span, SQL
  spans on a miss, context for the log line, queueing for export); the OTLP encoding and
  sending happen on the exporter's own thread.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from vigil.core.api import create_app
from vigil.core.logging import configure_logging
from vigil.core.runtime import Runtime
from vigil.markets import service
from vigil.markets.sources.base import Quote, SeriesKind
from vigil.settings import Settings

BATCH = 500
ROUNDS = 30
PATH, QUERY = "/api/v1/markets/rates", b"code=USD&limit=10"


@pytest.fixture(autouse=True)
def json_logs_to_devnull() -> Iterator[None]:
    configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    with open(os.devnull, "w") as sink:
        handler.setStream(sink)
        yield
    logging.getLogger().handlers[:] = []


def make_app(tmp: str) -> tuple[Any, Runtime]:
    runtime = Runtime.create(Settings(data_dir=Path(tmp), rate_limit="", log_level="INFO"))
    runtime.migrate()
    with runtime.db.session(write=True) as session:
        days = [date(2024, 1, 1) + timedelta(days=i) for i in range(30)]
        quotes = [Quote("USD", "USD", d, Decimal("4.0")) for d in days]
        service.store_quotes(session, quotes, SeriesKind.CURRENCY, "nbp")
    return create_app(runtime), runtime


async def _call(app: Any) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": QUERY,
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return status


def per_request(benchmark: BenchmarkFixture, app: Any, label: str) -> float:
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(_call(app)) == 200  # fills the cache

        def batch() -> None:
            for _ in range(BATCH):
                loop.run_until_complete(_call(app))

        benchmark.pedantic(batch, rounds=ROUNDS, warmup_rounds=2)
    finally:
        loop.close()
    # The fastest round is the least disturbed by other processes (a busy shared machine).
    per = float(benchmark.stats.stats.min) / BATCH
    median = float(benchmark.stats.stats.median) / BATCH
    benchmark.extra_info["per_request_us"] = round(per * 1e6, 1)
    print(
        f"\ncached rates GET, tracing {label}: {per * 1e6:.1f} us per request "
        f"(fastest round; median {median * 1e6:.1f} us)"
    )
    return per


def test_cached_rates_tracing_off(benchmark: BenchmarkFixture) -> None:
    with tempfile.TemporaryDirectory(prefix="vigil_bench_trace_") as tmp:
        app, runtime = make_app(tmp)
        per_request(benchmark, app, "off")
        runtime.close()


def test_cached_rates_tracing_on(benchmark: BenchmarkFixture) -> None:
    if importlib.util.find_spec("vigil.core.tracing") is None:
        pytest.skip("no vigil.core.tracing in this checkout (the baseline)")
    from opentelemetry.sdk.trace import ReadableSpan  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: PLC0415

    from vigil.core import tracing  # noqa: PLC0415

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracing.setup(Settings(), "api", exporter=Drop(), batch=True)
    try:
        with tempfile.TemporaryDirectory(prefix="vigil_bench_trace_") as tmp:
            app, runtime = make_app(tmp)
            per_request(benchmark, app, "on")
            runtime.close()
    finally:
        tracing.shutdown()
