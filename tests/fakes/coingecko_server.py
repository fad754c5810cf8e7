"""A fake CoinGecko API v3 server for tests and benchmarks, on 127.0.0.1.

It answers ``/simple/price``, ``/coins/markets``, ``/coins/{id}/market_chart`` and ``/ping``
under ``/api/v3`` in CoinGecko's shapes, from prices the test sets (and may move between
requests), leaves unknown ids out of ``/simple/price`` as CoinGecko does, answers 404
``{"error":"coin not found"}`` for an unknown coin's chart, and can require an API key
header. Faults are queued: the next answers can be any status, body and headers, such as the
recorded 429 (``tests/fixtures/coingecko/error_429_*``). Standard library only. In a test::

    with FakeCoinGecko({"bitcoin": {"usd": "7984.89"}}) as cg:
        client = CoinGeckoClient(cg.base_url)      # http://127.0.0.1:PORT/api/v3
        cg.set_price("bitcoin", "usd", "8100.5")   # the next poll sees the move
        cg.queue_rate_limit()                      # the next request gets the recorded 429

As a process (from the repository root)::

    python -m tests.fakes.coingecko_server --port 0 [--api-key KEY]

prints ``READY http://127.0.0.1:PORT/api/v3`` once listening and serves bitcoin and ethereum
at fixed prices until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.serving import ThreadedFake, serve_until_signal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "coingecko"
RATE_LIMIT_BODY = (FIXTURES / "error_429_body.json").read_bytes()
RATE_LIMIT_RETRY_AFTER = json.loads((FIXTURES / "error_429_headers.json").read_text())["headers"][
    "retry-after"
]
COIN_NOT_FOUND_BODY = b'{"error":"coin not found"}'
_JSON_TYPE = "application/json; charset=utf-8"
# Names and symbols of the coins the fake knows by default (bitcoin as in the recorded
# /coins/markets reply).
DEFAULT_COINS: dict[str, tuple[str, str]] = {
    "bitcoin": ("btc", "Bitcoin"),
    "ethereum": ("eth", "Ethereum"),
}


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", _JSON_TYPE),)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, payload: str | bytes) -> Reply:
    body = payload.encode() if isinstance(payload, str) else payload
    return Reply(status, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeCoinGecko) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeCoinGecko/1.0"
    sys_version = ""

    def do_GET(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.fake.answer(self.path, headers)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are logged in ``FakeCoinGecko.requests``."""


class FakeCoinGecko(ThreadedFake):
    """``prices``: coin id → {quote currency → price as decimal text}. ``charts``: coin id →
    ``[(ms timestamp, price text), …]`` served by market_chart whatever ``days`` says.
    ``api_key`` (with ``key_header``): requests without it get 401."""

    api_path: ClassVar[str] = "/api/v3"

    def __init__(
        self,
        prices: Mapping[str, Mapping[str, str]] | None = None,
        *,
        last_updated_at: int = 1_535_460_000,
        charts: Mapping[str, Sequence[tuple[int, str]]] | None = None,
        coins: Mapping[str, tuple[str, str]] | None = None,
        api_key: str | None = None,
        key_header: str = "x-cg-demo-api-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.prices: dict[str, dict[str, str]] = {k: dict(v) for k, v in (prices or {}).items()}
        self.last_updated_at = last_updated_at
        self.charts = {k: list(v) for k, v in (charts or {}).items()}
        self.coins = dict(DEFAULT_COINS if coins is None else coins)
        self.api_key = api_key
        self.key_header = key_header.lower()
        super().__init__(host, port)
        self.requests: list[LoggedRequest] = []
        self.faults: list[Reply] = []
        self._lock = threading.Lock()

    def make_server(self) -> ThreadingHTTPServer:
        return _Server((self.host, self.port), self)

    # --- control ---------------------------------------------------------------------------
    def set_price(self, coin_id: str, vs_currency: str, price: str, at: int | None = None) -> None:
        """Moves a price (decimal text); ``at`` is the new ``last_updated_at`` (unix seconds)."""
        with self._lock:
            self.prices.setdefault(coin_id, {})[vs_currency] = price
            if at is not None:
                self.last_updated_at = at

    def queue_fault(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        """The next unanswered request gets this reply instead (faults are used in order)."""
        merged = {"content-type": _JSON_TYPE, **(headers or {})}
        with self._lock:
            self.faults.append(Reply(status, body, tuple(merged.items())))

    def queue_rate_limit(self, retry_after: str = RATE_LIMIT_RETRY_AFTER) -> None:
        """The next request gets CoinGecko's recorded 429 body and ``Retry-After`` header."""
        self.queue_fault(429, RATE_LIMIT_BODY, {"retry-after": retry_after})

    # --- answering -------------------------------------------------------------------------
    def answer(self, raw_path: str, headers: Mapping[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self._lock:
            self.requests.append(LoggedRequest(parts.path, query, dict(headers)))
            if self.faults:
                return self.faults.pop(0)
            if self.api_key is not None and headers.get(self.key_header) != self.api_key:
                return _json(
                    401,
                    '{"status":{"error_code":10002,"error_message":"API Key Missing"}}',
                )
            return self._route(parts.path, query)

    def _route(self, path: str, query: dict[str, str]) -> Reply:
        prefix = "/api/v3/"
        if not path.startswith(prefix):
            return _json(404, '{"error":"Not Found"}')
        route = [unquote(p) for p in path[len(prefix) :].strip("/").split("/")]
        if route == ["ping"]:
            return _json(200, '{"gecko_says":"(V3) To the Moon!"}')
        if route == ["simple", "price"]:
            return self._simple_price(query)
        if route == ["coins", "markets"]:
            return self._markets(query)
        if len(route) == 3 and route[0] == "coins" and route[2] == "market_chart":
            return self._market_chart(route[1], query)
        return _json(404, '{"error":"Not Found"}')

    def _simple_price(self, query: dict[str, str]) -> Reply:
        if "ids" not in query or "vs_currencies" not in query:
            return _json(400, '{"error":"Missing parameter ids or vs_currencies"}')
        currencies = [c for c in query["vs_currencies"].split(",") if c]
        with_time = query.get("include_last_updated_at") == "true"
        items = []
        for coin_id in query["ids"].split(","):
            known = self.prices.get(coin_id)
            if known is None:
                continue  # CoinGecko leaves unknown ids out
            fields = [f'"{c}":{known[c]}' for c in currencies if c in known]
            if with_time:
                fields.append(f'"last_updated_at":{self.last_updated_at}')
            items.append(f'"{coin_id}":{{{",".join(fields)}}}')
        return _json(200, "{" + ",".join(items) + "}")

    def _markets(self, query: dict[str, str]) -> Reply:
        vs = query.get("vs_currency")
        if not vs:
            return _json(400, '{"error":"Missing parameter vs_currency"}')
        ids = query["ids"].split(",") if query.get("ids") else list(self.prices)
        per_page = int(query.get("per_page", "100"))
        page = int(query.get("page", "1"))
        rows = []
        for coin_id in ids:
            price = self.prices.get(coin_id, {}).get(vs)
            if price is None:
                continue
            symbol, name = self.coins.get(coin_id, (coin_id[:4], coin_id.title()))
            rows.append(
                f'{{"id":"{coin_id}","symbol":"{symbol}","name":"{name}",'
                f'"current_price":{price},"market_cap":null,"total_volume":null,'
                f'"high_24h":null,"low_24h":null,"price_change_24h":null,'
                f'"price_change_percentage_24h":null,"last_updated":"'
                f'{_iso_ms(self.last_updated_at * 1000)}"}}'
            )
        rows = rows[(page - 1) * per_page : page * per_page]
        return _json(200, "[" + ",".join(rows) + "]")

    def _market_chart(self, coin_id: str, query: dict[str, str]) -> Reply:
        if not query.get("vs_currency") or not query.get("days"):
            return _json(400, '{"error":"Missing parameter vs_currency or days"}')
        if coin_id not in self.prices and coin_id not in self.charts:
            return _json(404, COIN_NOT_FOUND_BODY)
        points = ",".join(f"[{ms},{price}]" for ms, price in self.charts.get(coin_id, []))
        return _json(200, f'{{"prices":[{points}],"market_caps":[],"total_volumes":[]}}')


def _iso_ms(ms: int) -> str:
    stamp = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.coingecko_server", description="Fake CoinGecko API server."
    )
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--api-key", default=None, help="require this demo API key")
    args = parser.parse_args(argv)
    fake = FakeCoinGecko(
        {"bitcoin": {"usd": "7984.89"}, "ethereum": {"usd": "289.14"}},
        api_key=args.api_key,
        port=args.port,
    )
    return serve_until_signal(fake)


if __name__ == "__main__":
    sys.exit(main())
