"""NBPClient against recorded real NBP replies served by httpx.MockTransport: parsing,
93-day chunking, no future ranges, 404 as no data, retries with backoff (no real sleeping)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from vigil.markets.sources.base import SourceError
from vigil.markets.sources.nbp import USER_AGENT, NBPClient, parse_gold, parse_tables

FIX = Path(__file__).parents[1] / "fixtures" / "nbp"
RNBP = FIX / "recorded" / "rnbp" / "api"
ERRORS = FIX / "recorded" / "errors"
TODAY = date(2023, 1, 31)

Handler = Callable[[httpx.Request], httpx.Response]


def text_reply(status: int, name: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = (ERRORS / name).read_bytes()
    return httpx.Response(
        status,
        content=body,
        headers={"content-type": "text/plain; charset=utf-8", **(headers or {})},
    )


def json_reply(path: Path) -> httpx.Response:
    return httpx.Response(
        200, content=path.read_bytes(), headers={"content-type": "application/json; charset=utf-8"}
    )


class Recorder:
    """A transport that records every request and answers with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._handler(request)

    def ranges(self) -> list[tuple[date, date]]:
        out = []
        for request in self.requests:
            found = re.findall(r"\d{4}-\d{2}-\d{2}", request.url.path)
            out.append((date.fromisoformat(found[0]), date.fromisoformat(found[-1])))
        return out


def client(handler: Handler, sleeps: list[float] | None = None, **kwargs: object) -> NBPClient:
    recorder = handler if isinstance(handler, Recorder) else Recorder(handler)
    sleep_log = sleeps if sleeps is not None else []
    return NBPClient(
        "https://nbp.test/api",
        transport=httpx.MockTransport(recorder),
        sleep=sleep_log.append,
        today=lambda: TODAY,
        **kwargs,  # type: ignore[arg-type]
    )


# --- parsing ------------------------------------------------------------------------------------


def test_parse_tables_keeps_decimal_text_and_every_currency() -> None:
    payload = json.loads(
        (FIX / "tables_A_2022-11-02_2023-01-31.json").read_bytes(), parse_float=Decimal
    )
    quotes = parse_tables(payload)
    first_day = [q for q in quotes if q.effective_date == date(2022, 11, 2)]
    assert len(first_day) == 34
    usd = next(q for q in first_day if q.code == "USD")
    assert usd.value == Decimal("4.7485")
    assert usd.name == "dolar amerykański"
    huf = next(q for q in first_day if q.code == "HUF")
    assert str(huf.value) == "0.011520"  # NBP's scale is kept, not float-rounded
    # HRK left table A on 2023-01-02
    assert not [q for q in quotes if q.code == "HRK" and q.effective_date >= date(2023, 1, 2)]
    assert len({q.effective_date for q in quotes}) == len(payload) == 62


def test_parse_tables_recorded_rnbp_reply() -> None:
    payload = json.loads(
        (RNBP / "exchangerates/tables/a/2019-07-08/2019-07-09-7315b4.json").read_bytes(),
        parse_float=Decimal,
    )
    quotes = parse_tables(payload)
    assert {q.effective_date for q in quotes} == {date(2019, 7, 8), date(2019, 7, 9)}
    assert all(isinstance(q.value, Decimal) and q.value > 0 for q in quotes)


def test_parse_gold_recorded_reply() -> None:
    payload = json.loads(
        (RNBP / "cenyzlota/2019-07-15/2019-07-16-7315b4.json").read_bytes(), parse_float=Decimal
    )
    quotes = parse_gold(payload)
    assert [q.effective_date for q in quotes] == [date(2019, 7, 15), date(2019, 7, 16)]
    assert all(q.code == "XAU" for q in quotes)
    assert quotes[0].value == Decimal(str(payload[0]["cena"]))


@pytest.mark.parametrize(
    "payload",
    [
        {"not": "a list"},
        [{"effectiveDate": "2024-01-02"}],  # no rates
        [{"effectiveDate": "yesterday", "rates": []}],
        [{"effectiveDate": "2024-01-02", "rates": [{"code": "USD", "mid": "abc"}]}],
        [{"effectiveDate": "2024-01-02", "rates": [{"code": "USD", "mid": -1}]}],
    ],
)
def test_parse_tables_rejects_unexpected_shapes(payload: object) -> None:
    with pytest.raises(SourceError):
        parse_tables(payload)


# --- requests -----------------------------------------------------------------------------------


def test_long_range_is_split_into_chunks_of_at_most_93_days() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=[]))
    nbp = client(recorder)
    assert nbp.fetch_rates(date(2022, 1, 1), date(2022, 12, 31)) == []
    ranges = recorder.ranges()
    assert len(ranges) == 4
    assert ranges[0][0] == date(2022, 1, 1)
    assert ranges[-1][1] == date(2022, 12, 31)
    for (start, end), following in zip(ranges, [*ranges[1:], None], strict=True):
        assert (end - start).days + 1 <= 93
        if following:
            assert following[0] == end + timedelta(days=1)


def test_requests_say_who_we_are_and_ask_for_json() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=[]))
    client(recorder).fetch_gold(date(2023, 1, 2), date(2023, 1, 3))
    (request,) = recorder.requests
    assert request.headers["user-agent"] == USER_AGENT
    assert request.url.params["format"] == "json"
    assert request.url.path == "/api/cenyzlota/2023-01-02/2023-01-03/"


def test_range_is_clamped_to_today_in_warsaw_never_the_future() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=[]))
    nbp = client(recorder)
    nbp.fetch_rates(date(2023, 1, 20), date(2023, 3, 1))
    assert recorder.ranges() == [(date(2023, 1, 20), TODAY)]
    assert nbp.fetch_rates(date(2023, 2, 1), date(2023, 2, 5)) == []  # starts after today
    assert len(recorder.requests) == 1


def test_404_brak_danych_is_an_empty_result() -> None:
    nbp = client(lambda r: text_reply(404, "404_tables_a_today_2019-07-09.txt"))
    assert nbp.fetch_rates(date(2023, 1, 28), date(2023, 1, 29)) == []


def test_400_is_not_retried_and_says_what_nbp_said() -> None:
    sleeps: list[float] = []
    recorder = Recorder(lambda r: text_reply(400, "400_invalid_date_range.txt"))
    with pytest.raises(SourceError, match="Błędny zakres dat"):
        client(recorder, sleeps).fetch_rates(date(2023, 1, 2), date(2023, 1, 3))
    assert len(recorder.requests) == 1
    assert sleeps == []


def test_429_and_5xx_are_retried_with_backoff_then_succeed() -> None:
    replies = iter(
        [
            text_reply(429, "404_tables_a_today_2019-07-09.txt", {"retry-after": "7"}),
            httpx.Response(503, text="busy"),
            json_reply(RNBP / "cenyzlota/2019-07-15/2019-07-16-7315b4.json"),
        ]
    )
    sleeps: list[float] = []
    nbp = client(lambda r: next(replies), sleeps, backoff_initial=0.5, backoff_max=30)
    quotes = nbp.fetch_gold(date(2019, 7, 15), date(2019, 7, 16))
    assert len(quotes) == 2
    assert len(sleeps) == 2
    assert sleeps[0] >= 7  # Retry-After honoured
    assert 0.5 <= sleeps[1] <= 30


def test_gives_up_after_max_attempts_with_growing_waits() -> None:
    sleeps: list[float] = []
    recorder = Recorder(lambda r: httpx.Response(500, text="Internal Server Error"))
    nbp = client(recorder, sleeps, max_attempts=5, backoff_initial=1, backoff_max=100)
    with pytest.raises(SourceError, match="after 5 attempts"):
        nbp.fetch_rates(date(2023, 1, 2), date(2023, 1, 3))
    assert len(recorder.requests) == 5
    assert len(sleeps) == 4
    # exponential: 1, 2, 4, 8 (+ up to 1 s of jitter each)
    for attempt, wait in enumerate(sleeps):
        assert 2**attempt <= wait <= 2**attempt + 1


def test_backoff_is_capped() -> None:
    sleeps: list[float] = []
    nbp = client(
        lambda r: httpx.Response(429, headers={"retry-after": "3600"}),
        sleeps,
        max_attempts=3,
        backoff_initial=1,
        backoff_max=5,
    )
    with pytest.raises(SourceError):
        nbp.fetch_gold(date(2023, 1, 2), date(2023, 1, 2))
    assert sleeps == [5, 5]


def test_timeouts_and_connection_errors_are_retried() -> None:
    calls = iter([httpx.ConnectTimeout("slow"), httpx.ConnectError("refused"), None])

    def handler(request: httpx.Request) -> httpx.Response:
        error = next(calls)
        if error is not None:
            raise error
        return httpx.Response(200, json=[{"data": "2023-01-02", "cena": 250.5}])

    sleeps: list[float] = []
    quotes = client(handler, sleeps).fetch_gold(date(2023, 1, 2), date(2023, 1, 2))
    assert [q.value for q in quotes] == [Decimal("250.5")]
    assert len(sleeps) == 2


def test_invalid_json_is_a_source_error() -> None:
    nbp = client(lambda r: httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(SourceError, match="invalid JSON"):
        nbp.fetch_gold(date(2023, 1, 2), date(2023, 1, 2))
