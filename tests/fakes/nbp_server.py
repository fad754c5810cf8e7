"""A fake NBP (Narodowy Bank Polski) API server for tests and benchmarks.

It imitates ``https://api.nbp.pl/api`` for table A exchange rates and gold prices, with
deterministic synthetic values (a seeded random walk per currency), the real publication
calendar (Monday to Friday minus Polish public holidays), NBP's byte-for-byte error bodies,
and fault injection (delay, a queue of error statuses, every Nth request failing).

Standard library only. In a test::

    with FakeNBP(today=date(2024, 6, 28)) as nbp:
        client = NbpClient(base_url=nbp.base_url)   # http://127.0.0.1:PORT/api
        ...
        assert stored == nbp.expected_rates()

As a process (from the repository root)::

    python -m tests.fakes.nbp_server --port 0 [--delay S] [--fault-every N] [--seed N]
                                     [--today YYYY-MM-DD]

prints one line ``READY http://127.0.0.1:PORT/api`` once listening and serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import re
import socket
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate
from typing import Any, ClassVar

from tests.fakes.serving import ThreadedFake, serve_until_signal

__all__ = [
    "BAD_PARAM_BODY",
    "CURRENCIES",
    "GOLD_START",
    "INVALID_RANGE_BODY",
    "NOT_FOUND_BODY",
    "RANGE_LIMIT_BODY",
    "TABLE_A_START",
    "FakeNBP",
    "is_publication_day",
    "main",
    "polish_holidays",
    "publication_days",
]

# Table A of 2022-12-30 (the last one with HRK): code, Polish name exactly as NBP writes it,
# and the mid of 2022-11-02 (tests/fixtures/nbp/tables_A_2022-11-02_2023-01-31.json), used
# as the starting level of the synthetic walk on 2002-01-02.
CURRENCIES: tuple[tuple[str, str, str], ...] = (
    ("THB", "bat (Tajlandia)", "0.1264"),
    ("USD", "dolar amerykański", "4.7485"),
    ("AUD", "dolar australijski", "3.0526"),
    ("HKD", "dolar Hongkongu", "0.6050"),
    ("CAD", "dolar kanadyjski", "3.4930"),
    ("NZD", "dolar nowozelandzki", "2.7954"),
    ("SGD", "dolar singapurski", "3.3645"),
    ("EUR", "euro", "4.7039"),
    ("HUF", "forint (Węgry)", "0.011520"),
    ("CHF", "frank szwajcarski", "4.7656"),
    ("GBP", "funt szterling", "5.4601"),
    ("UAH", "hrywna (Ukraina)", "0.1258"),
    ("JPY", "jen (Japonia)", "0.032269"),
    ("CZK", "korona czeska", "0.1921"),
    ("DKK", "korona duńska", "0.6319"),
    ("ISK", "korona islandzka", "0.032780"),
    ("NOK", "korona norweska", "0.4597"),
    ("SEK", "korona szwedzka", "0.4314"),
    ("HRK", "kuna (Chorwacja)", "0.6244"),
    ("RON", "lej rumuński", "0.9579"),
    ("BGN", "lew (Bułgaria)", "2.4050"),
    ("TRY", "lira turecka", "0.2550"),
    ("ILS", "nowy izraelski szekel", "1.3427"),
    ("CLP", "peso chilijskie", "0.005033"),
    ("PHP", "peso filipińskie", "0.0814"),
    ("MXN", "peso meksykańskie", "0.2411"),
    ("ZAR", "rand (Republika Południowej Afryki)", "0.2621"),
    ("BRL", "real (Brazylia)", "0.9232"),
    ("MYR", "ringgit (Malezja)", "1.0022"),
    ("IDR", "rupia indonezyjska", "0.00030347"),
    ("INR", "rupia indyjska", "0.057363"),
    ("KRW", "won południowokoreański", "0.003356"),
    ("CNY", "yuan renminbi (Chiny)", "0.6525"),
    ("XDR", "SDR (MFW)", "6.0801"),
)
# Currencies that left table A: code -> last day they were published.
LAST_PUBLISHED: dict[str, date] = {"HRK": date(2022, 12, 30)}

TABLE_A_START = date(2002, 1, 2)
GOLD_START = date(2013, 1, 2)
GOLD_START_PRICE = 165.83
DAILY_SIGMA = 0.004
MAX_RANGE_DAYS = 93
MAX_LAST_TABLES = 67
MAX_LAST_SERIES = 255
RESPONSE_CACHE_LIMIT = 20_000

NOT_FOUND_BODY = "404 NotFound - Not Found - Brak danych"
INVALID_RANGE_BODY = "400 BadRequest - Błędny zakres dat / Invalid date range"
RANGE_LIMIT_BODY = "400 BadRequest - Przekroczony limit 93 dni / Limit of 93 days has been exceeded"
BAD_PARAM_BODY = "400 BadRequest - Bad Request - Nieprawidłowa wartość parametru"
LAST_LIMIT_BODY = (
    "400 BadRequest - Przekroczony limit {n} wyników / Maximum size of {n} data series "
    "has been exceeded"
)
TOO_MANY_REQUESTS_BODY = "429 Too Many Requests"

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NO_CACHE_HEADERS: tuple[tuple[str, str], ...] = (
    ("cache-control", "no-cache"),
    ("pragma", "no-cache"),
    ("expires", "-1"),
)
_JSON_TYPE = "application/json; charset=utf-8"
_TEXT_TYPE = "text/plain; charset=utf-8"


# --------------------------------------------------------------------------- calendar


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * shift) // 451
    month, day = divmod(h + shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def polish_holidays(year: int) -> frozenset[date]:
    """Polish public holidays on which NBP publishes no table (weekdays or not)."""
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1),
        easter + timedelta(days=1),  # Easter Monday
        date(year, 5, 1),
        date(year, 5, 3),
        easter + timedelta(days=60),  # Corpus Christi
        date(year, 8, 15),
        date(year, 11, 1),
        date(year, 11, 11),
        date(year, 12, 25),
        date(year, 12, 26),
    }
    if year >= 2011:
        days.add(date(year, 1, 6))  # Epiphany, a holiday again from 2011
    if year >= 2025:
        days.add(date(year, 12, 24))  # Christmas Eve, a holiday from 2025
    return frozenset(days)


def is_publication_day(day: date) -> bool:
    """Whether NBP publishes table A (and the gold price) on ``day``."""
    return day.weekday() < 5 and day not in polish_holidays(day.year)


def publication_days(start: date, end: date) -> list[date]:
    """Publication days from ``start`` to ``end``, both included."""
    out: list[date] = []
    holidays: frozenset[date] = frozenset()
    holidays_year = 0
    day = start
    one = timedelta(days=1)
    while day <= end:
        if day.year != holidays_year:
            holidays_year = day.year
            holidays = polish_holidays(day.year)
        if day.weekday() < 5 and day not in holidays:
            out.append(day)
        day += one
    return out


# --------------------------------------------------------------------------- data


def _format_mids(values: Iterable[float]) -> list[str]:
    """NBP's text of mids: 4 decimals, or 6 below 0.1 (``5.1230``, ``0.011520``)."""
    return [f"{v:.6f}" if v < 0.1 else f"{v:.4f}" for v in values]


def _walk(rng: random.Random, start: float, count: int) -> list[float]:
    """``count`` values: ``start``, then each day multiplied by exp(N(0, DAILY_SIGMA)).

    Normal steps by Box-Muller from ``rng.random()`` (4x faster than ``rng.gauss``), and the
    walk as exp of the cumulative sum of the log-steps.
    """
    if count <= 0:
        return []
    random_ = rng.random
    log, sqrt, cos, sin, exp = math.log, math.sqrt, math.cos, math.sin, math.exp
    steps: list[float] = []
    append = steps.append
    for _ in range(count // 2):
        radius = DAILY_SIGMA * sqrt(-2.0 * log(1.0 - random_()))
        angle = math.tau * random_()
        append(radius * cos(angle))
        append(radius * sin(angle))
    return [start * exp(x) for x in accumulate(steps[: count - 1], initial=0.0)]


@dataclass(frozen=True, slots=True)
class _Series:
    code: str
    name_json: str  # the name as a JSON string literal, quotes included
    mids: list[str]  # mid text per publication day index, up to ``end``
    end: int  # number of publication days (from 2002-01-02) on which it is published


@dataclass(frozen=True, slots=True)
class Response:
    """One rendered answer: status, body and headers (besides Content-Length)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


def _text_response(status: int, text: str, *extra: tuple[str, str]) -> Response:
    return Response(
        status, text.encode("utf-8"), (("content-type", _TEXT_TYPE), *_NO_CACHE_HEADERS, *extra)
    )


def _json_response(text: str) -> Response:
    return Response(200, text.encode("utf-8"), (("content-type", _JSON_TYPE),))


_NOT_FOUND = _text_response(404, NOT_FOUND_BODY)
_INVALID_RANGE = _text_response(400, INVALID_RANGE_BODY)
_RANGE_LIMIT = _text_response(400, RANGE_LIMIT_BODY)
_BAD_PARAM = _text_response(400, BAD_PARAM_BODY)


def fault_response(status: int) -> Response:
    """The answer to an injected fault with HTTP status ``status``."""
    if status == 429:
        return _text_response(429, TOO_MANY_REQUESTS_BODY, ("Retry-After", "1"))
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return _text_response(status, f"{status} {phrase}")


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeNBP) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away (timeouts in the code under test): not our bug
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            sockets = list(self.connections)
            self.connections.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeNBP/1.0"
    sys_version = ""
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        response = self.server.fake.answer(self.path)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep stderr quiet: requests are logged in ``FakeNBP.requests``."""


class FakeNBP(ThreadedFake):
    """A fake NBP API with deterministic data from 2002-01-02 (gold: 2013-01-02) to ``today``.

    ``delay``, ``faults``, ``fault_every`` and ``fault_status`` may be changed while serving.
    ``requests`` logs ``(path with query, status)`` of every answered request.
    """

    api_path: ClassVar[str] = "/api"

    def __init__(
        self,
        *,
        today: date | None = None,
        seed: int = 42,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
        faults: Iterable[int] = (),
        fault_every: int = 0,
        fault_status: int = 500,
    ) -> None:
        self.today = today if today is not None else date.today()
        self.seed = seed
        super().__init__(host, port)
        self.delay = delay
        self.faults: list[int] = list(faults)
        self.fault_every = fault_every
        self.fault_status = fault_status
        self.requests: list[tuple[str, int]] = []
        self.request_count = 0
        self._lock = threading.Lock()
        self._cache: dict[str, Response] = {}
        self._expected_rates: dict[tuple[str, date], Decimal] | None = None
        self._expected_gold: dict[date, Decimal] | None = None

        days = publication_days(TABLE_A_START, self.today)
        self._days = days
        self._iso = [d.isoformat() for d in days]
        numbers: list[str] = []
        year, count = 0, 0
        for d in days:
            if d.year != year:
                year, count = d.year, 0
            count += 1
            numbers.append(f"{count:03d}/A/NBP/{year}")
        self._numbers = numbers

        n = len(days)
        self._series: list[_Series] = []
        for code, name, start_mid in CURRENCIES:
            rng = random.Random(f"nbp:{seed}:{code}")
            last = LAST_PUBLISHED.get(code)
            end = n if last is None else bisect_right(days, last)
            mids = _format_mids(_walk(rng, float(start_mid), end))
            name_json = json.dumps(name, ensure_ascii=False)
            self._series.append(_Series(code, name_json, mids, end))
        self._series_by_code = {s.code: s for s in self._series}

        self._gold_start = bisect_left(days, GOLD_START)
        gold_rng = random.Random(f"nbp:{seed}:gold")
        self._gold = [f"{v:.2f}" for v in _walk(gold_rng, GOLD_START_PRICE, n - self._gold_start)]
        self._tables: list[str | None] = [None] * n

    # ------------------------------------------------------------------ lifecycle

    def make_server(self) -> ThreadingHTTPServer:
        return _Server((self.host, self.port), self)

    def after_shutdown(self, server: ThreadingHTTPServer) -> None:
        assert isinstance(server, _Server)
        server.close_connections()  # keep-alive clients must not hang on a dead fake

    def reset(self) -> None:
        """Forget logged requests, the request counter and all fault settings."""
        with self._lock:
            self.requests.clear()
            self.request_count = 0
            self.faults.clear()
            self.fault_every = 0
            self.fault_status = 500
            self.delay = 0.0

    # ------------------------------------------------------------------ expectations

    def table_dates(self) -> list[date]:
        """Every date with a table A, in order."""
        return list(self._days)

    def expected_rates(self) -> dict[tuple[str, date], Decimal]:
        """Every table A mid the server serves, keyed by (code, effective date)."""
        if self._expected_rates is None:
            days = self._days
            self._expected_rates = {
                (s.code, days[i]): Decimal(mid)
                for s in self._series
                for i, mid in enumerate(s.mids)
            }
        return dict(self._expected_rates)

    def expected_gold(self) -> dict[date, Decimal]:
        """Every gold price the server serves, keyed by date."""
        if self._expected_gold is None:
            days = self._days[self._gold_start :]
            self._expected_gold = {d: Decimal(p) for d, p in zip(days, self._gold, strict=True)}
        return dict(self._expected_gold)

    # ------------------------------------------------------------------ answering

    def answer(self, raw_path: str) -> Response:
        """Answer one GET of ``raw_path`` (path and query), with faults, delay and logging."""
        fault = 0
        with self._lock:
            self.request_count += 1
            if self.faults:
                fault = self.faults.pop(0)
            elif self.fault_every > 0 and self.request_count % self.fault_every == 0:
                fault = self.fault_status
            delay = self.delay
        if delay > 0:
            time.sleep(delay)
        response = fault_response(fault) if fault else self.render(raw_path)
        with self._lock:
            self.requests.append((raw_path, response.status))
        return response

    def render(self, raw_path: str) -> Response:
        """The answer to ``raw_path`` without faults: rendered once, then cached."""
        key = raw_path.split("?", 1)[0].split("#", 1)[0].lower().rstrip("/")
        response = self._cache.get(key)
        if response is None:
            response = self._route(key)
            if len(self._cache) < RESPONSE_CACHE_LIMIT:
                self._cache[key] = response
        return response

    def _route(self, path: str) -> Response:
        parts = path.split("/")
        if parts[:1] == [""]:
            parts = parts[1:]
        if len(parts) < 2 or parts[0] != "api":
            return _BAD_PARAM
        n = len(self._days)
        if parts[1] == "cenyzlota":
            return self._select(parts[2:], self._gold_start, n, self._render_gold)
        if len(parts) < 4 or parts[1] != "exchangerates" or parts[3] != "a":
            return _BAD_PARAM
        if parts[2] == "tables":
            return self._select(parts[4:], 0, n, self._render_tables, MAX_LAST_TABLES)
        if parts[2] == "rates" and len(parts) >= 5:
            series = self._series_by_code.get(parts[4].upper())
            if series is None:
                return _NOT_FOUND

            def render(lo: int, hi: int) -> str:
                return self._render_rates(series, lo, hi)

            return self._select(parts[5:], 0, series.end, render)
        return _BAD_PARAM

    def _select(
        self,
        rest: Sequence[str],
        lo_bound: int,
        hi_bound: int,
        render: Callable[[int, int], str],
        last_limit: int = MAX_LAST_SERIES,
    ) -> Response:
        """Pick publication-day indexes ``[lo, hi)`` for the path tail ``rest`` and render."""
        days = self._days
        if not rest:  # the current table / rate / price: the latest published
            lo, hi = hi_bound - 1, hi_bound
        elif rest[0] == "last":
            if len(rest) != 2 or not rest[1].isdigit() or int(rest[1]) < 1:
                return _BAD_PARAM
            count = int(rest[1])
            if count > last_limit:
                return _text_response(400, LAST_LIMIT_BODY.format(n=last_limit))
            lo, hi = hi_bound - count, hi_bound
        elif len(rest) == 1 and rest[0] == "today":
            lo = bisect_left(days, self.today)
            hi = lo + 1 if lo < len(days) and days[lo] == self.today else lo
        elif len(rest) <= 2:
            dates = [_parse_date(text) for text in rest]
            first, last = dates[0], dates[-1]
            if first is None or last is None:
                return _BAD_PARAM
            if first > last or last > self.today:
                return _INVALID_RANGE
            if (last - first).days + 1 > MAX_RANGE_DAYS:
                return _RANGE_LIMIT
            lo, hi = bisect_left(days, first), bisect_right(days, last)
        else:
            return _BAD_PARAM
        lo, hi = max(lo, lo_bound), min(hi, hi_bound)
        if lo >= hi:
            return _NOT_FOUND
        return _json_response(render(lo, hi))

    def _table(self, i: int) -> str:
        text = self._tables[i]
        if text is None:
            rates = ",".join(
                f'{{"currency":{s.name_json},"code":"{s.code}","mid":{s.mids[i]}}}'
                for s in self._series
                if i < s.end
            )
            text = (
                f'{{"table":"A","no":"{self._numbers[i]}","effectiveDate":"{self._iso[i]}",'
                f'"rates":[{rates}]}}'
            )
            self._tables[i] = text
        return text

    def _render_tables(self, lo: int, hi: int) -> str:
        return "[" + ",".join(self._table(i) for i in range(lo, hi)) + "]"

    def _render_rates(self, series: _Series, lo: int, hi: int) -> str:
        numbers, iso, mids = self._numbers, self._iso, series.mids
        rates = ",".join(
            f'{{"no":"{numbers[i]}","effectiveDate":"{iso[i]}","mid":{mids[i]}}}'
            for i in range(lo, hi)
        )
        return (
            f'{{"table":"A","currency":{series.name_json},"code":"{series.code}",'
            f'"rates":[{rates}]}}'
        )

    def _render_gold(self, lo: int, hi: int) -> str:
        iso, gold, offset = self._iso, self._gold, self._gold_start
        return (
            "["
            + ",".join(f'{{"data":"{iso[i]}","cena":{gold[i - offset]}}}' for i in range(lo, hi))
            + "]"
        )


def _parse_date(text: str) -> date | None:
    if not _DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- process


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.nbp_server", description="Fake NBP API server."
    )
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds slept per request")
    parser.add_argument("--fault-every", type=int, default=0, help="every Nth request fails")
    parser.add_argument("--fault-status", type=int, default=500, help="status of those failures")
    parser.add_argument("--seed", type=int, default=42, help="seed of the synthetic data")
    parser.add_argument(
        "--today", type=date.fromisoformat, default=None, help="last data day (YYYY-MM-DD)"
    )
    args = parser.parse_args(argv)

    fake = FakeNBP(
        today=args.today,
        seed=args.seed,
        port=args.port,
        delay=args.delay,
        fault_every=args.fault_every,
        fault_status=args.fault_status,
    )
    return serve_until_signal(fake)


if __name__ == "__main__":
    sys.exit(main())
