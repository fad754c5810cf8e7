"""CoinGeckoClient against recorded real CoinGecko replies (tests/fixtures/coingecko/), served
by httpx.MockTransport or by the fake server on 127.0.0.1: parsing to Decimal and UTC, one
batched request per poll (chunked only for long URLs), missing ids, the API key header,
retries with backoff honouring the recorded 429's Retry-After (sleeps are recorded, never
slept), and the errors. Nothing here talks to the real CoinGecko."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.coingecko_server import FakeCoinGecko
from vigil.markets.sources import SOURCES, SeriesKind, create_source
from vigil.markets.sources.base import SourceError
from vigil.markets.sources.coingecko import (
    DEMO_KEY_HEADER,
    MAX_IDS_QUERY_CHARS,
    PRO_KEY_HEADER,
    USER_AGENT,
    CoinGeckoClient,
    CoinGeckoError,
    UnknownCoin,
    api_key_header,
    chunk_ids,
    parse_market_chart,
    parse_markets,
    parse_simple_price,
)
from vigil.settings import Settings

FIX = Path(__file__).parents[1] / "fixtures" / "coingecko"
SIMPLE_PRICE = FIX / "simple_price_ids=bitcoin_vs=usd.json"
MARKETS = FIX / "coins_markets_vs=usd.json"
CHART = FIX / "coins_bitcoin_market_chart_vs=usd_days=1.json"
RATE_LIMIT_BODY = FIX / "error_429_body.json"
RATE_LIMIT_HEADERS: dict[str, str] = json.loads((FIX / "error_429_headers.json").read_text())[
    "headers"
]

Handler = Callable[[httpx.Request], httpx.Response]


def load(path: Path) -> Any:
    return json.loads(path.read_bytes(), parse_float=Decimal)


def recorded(path: Path) -> httpx.Response:
    return httpx.Response(
        200, content=path.read_bytes(), headers={"content-type": "application/json"}
    )


def recorded_429() -> httpx.Response:
    """The real 429: its body and headers (content-type, retry-after: 119, server)."""
    return httpx.Response(429, content=RATE_LIMIT_BODY.read_bytes(), headers=RATE_LIMIT_HEADERS)


class Recorder:
    """A transport that records every request and answers with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._handler(request)


def client(
    handler: Handler | Recorder, sleeps: list[float] | None = None, **kwargs: Any
) -> CoinGeckoClient:
    recorder = handler if isinstance(handler, Recorder) else Recorder(handler)
    sleep_log = sleeps if sleeps is not None else []
    kwargs.setdefault("backoff_initial", 0.5)
    return CoinGeckoClient(
        "https://cg.test/api/v3",
        transport=httpx.MockTransport(recorder),
        sleep=sleep_log.append,
        **kwargs,
    )


def replies(*responses: httpx.Response | Exception) -> Handler:
    pending: Iterator[httpx.Response | Exception] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        reply = next(pending)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return handler


def simple_price_echo(prices: dict[str, str]) -> Handler:
    """Answers /simple/price like CoinGecko: the known ids of the request, unknown ones left
    out. Synthetic values (the recorded reply has one coin and no last_updated_at)."""

    def handler(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        body = ",".join(
            f'"{i}":{{"usd":{prices[i]},"last_updated_at":1535460000}}' for i in ids if i in prices
        )
        return httpx.Response(200, text="{" + body + "}")

    return handler


# --- parsing the recorded replies ---------------------------------------------------------------


def test_parse_recorded_simple_price_exact_decimal_and_missing_ids() -> None:
    answer = parse_simple_price(load(SIMPLE_PRICE), ["bitcoin", "not-a-coin"], "usd")
    (btc,) = answer.prices
    assert btc.coin_id == "bitcoin"
    assert btc.vs_currency == "usd"
    assert btc.price == Decimal("7984.89")
    assert str(btc.price) == "7984.89"
    assert btc.last_updated is None  # recorded without include_last_updated_at
    assert answer.missing == ("not-a-coin",)


def test_parse_recorded_markets_numbers_strings_and_utc_time() -> None:
    (btc,) = parse_markets(load(MARKETS), "usd")
    assert (btc.coin_id, btc.symbol, btc.name, btc.vs_currency) == (
        "bitcoin",
        "btc",
        "Bitcoin",
        "usd",
    )
    assert str(btc.current_price) == "7015.11823787848"
    assert btc.current_price != Decimal(float("7015.11823787848"))  # not through a binary float
    assert btc.market_cap == Decimal("120934444800.105")
    assert btc.total_volume == Decimal("6121170828.21792")
    assert btc.high_24h == Decimal("7054.21193531031")
    assert btc.low_24h == Decimal("6668.29100755648")
    # sent as JSON strings in the recorded reply
    assert btc.price_change_24h == Decimal("299.72373285508")
    assert btc.price_change_percentage_24h == Decimal("4.46323343521924")
    assert btc.last_updated == datetime(2018, 8, 28, 12, 12, 53, 390000, tzinfo=UTC)
    assert btc.last_updated is not None
    assert btc.last_updated.utcoffset() is not None


def test_parse_recorded_market_chart_points_in_utc() -> None:
    points = parse_market_chart(load(CHART))
    assert len(points) == 6
    assert points[0].ts == datetime(2018, 8, 27, 12, 44, 59, 623000, tzinfo=UTC)  # 1535373899623
    assert str(points[0].price) == "6756.942910425894"
    assert points[4].price == Decimal("6703.7499879964")
    assert points[-1].ts == datetime(2018, 8, 27, 13, 9, 44, 209000, tzinfo=UTC)  # 1535375384209
    assert points[-1].price == Decimal("6706.898948451269")
    assert all(p.ts.tzinfo is UTC for p in points)
    assert [p.ts for p in points] == sorted(p.ts for p in points)


def test_simple_price_last_updated_at_is_utc() -> None:
    payload = json.loads(
        '{"bitcoin":{"usd":7984.89,"last_updated_at":1535460000}}', parse_float=Decimal
    )
    (btc,) = parse_simple_price(payload, ["bitcoin"], "usd").prices
    assert btc.last_updated == datetime(2018, 8, 28, 12, 40, tzinfo=UTC)


def test_known_coin_without_a_price_in_that_currency_is_missing() -> None:
    payload = load(SIMPLE_PRICE)  # bitcoin has usd only
    answer = parse_simple_price(payload, ["bitcoin"], "eur")
    assert answer.prices == ()
    assert answer.missing == ("bitcoin",)
    null_price = parse_simple_price({"bitcoin": {"usd": None}}, ["bitcoin"], "usd")
    assert null_price.missing == ("bitcoin",)


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        (lambda p: parse_simple_price(p, ["bitcoin"], "usd"), ["not", "an", "object"]),
        (lambda p: parse_simple_price(p, ["bitcoin"], "usd"), {"bitcoin": 5}),
        (lambda p: parse_simple_price(p, ["bitcoin"], "usd"), {"bitcoin": {"usd": "abc"}}),
        (lambda p: parse_simple_price(p, ["bitcoin"], "usd"), {"bitcoin": {"usd": -1}}),
        (lambda p: parse_simple_price(p, ["bitcoin"], "usd"), {"bitcoin": {"usd": True}}),
        (
            lambda p: parse_simple_price(p, ["bitcoin"], "usd"),
            {"bitcoin": {"usd": 1, "last_updated_at": "yesterday"}},
        ),
        (lambda p: parse_markets(p, "usd"), {"not": "a list"}),
        (lambda p: parse_markets(p, "usd"), [{"symbol": "btc", "name": "Bitcoin"}]),  # no id
        (
            lambda p: parse_markets(p, "usd"),
            [{"id": "bitcoin", "symbol": "btc", "name": "B", "last_updated": "soon"}],
        ),
        (parse_market_chart, {"market_caps": []}),
        (parse_market_chart, {"prices": [[1535373899623]]}),
        (parse_market_chart, {"prices": [["then", 1]]}),
    ],
)
def test_malformed_replies_are_source_errors(
    parse: Callable[[Any], object], payload: object
) -> None:
    with pytest.raises(SourceError):
        parse(payload)


# --- batching ----------------------------------------------------------------------------------


def test_simple_price_is_one_request_for_all_ids_and_reports_missing() -> None:
    recorder = Recorder(simple_price_echo({"bitcoin": "7984.89", "ethereum": "289.14"}))
    answer = client(recorder).simple_price(["bitcoin", "not-a-coin", "ethereum", "bitcoin"], "USD")
    (request,) = recorder.requests
    assert request.url.path == "/api/v3/simple/price"
    assert dict(request.url.params) == {
        "ids": "bitcoin,not-a-coin,ethereum",  # duplicates asked once, order kept
        "vs_currencies": "usd",
        "include_last_updated_at": "true",
    }
    assert [(p.coin_id, p.price) for p in answer.prices] == [
        ("bitcoin", Decimal("7984.89")),
        ("ethereum", Decimal("289.14")),
    ]
    assert answer.missing == ("not-a-coin",)
    assert answer.by_id()["ethereum"].last_updated == datetime(2018, 8, 28, 12, 40, tzinfo=UTC)


def test_many_ids_are_split_by_url_length_one_request_per_chunk() -> None:
    ids = [f"coin-{n:07d}" for n in range(700)]  # 12 characters each
    recorder = Recorder(simple_price_echo(dict.fromkeys(ids, "1.5")))
    answer = client(recorder).simple_price(ids, "usd")
    # 12 characters + 3 for the encoded comma: 266 ids fit in 4000 characters
    assert len(recorder.requests) == 3
    sent: list[str] = []
    for request in recorder.requests:
        encoded_ids = request.url.query.decode().split("ids=")[1].split("&")[0]
        assert len(encoded_ids) <= MAX_IDS_QUERY_CHARS
        sent.extend(request.url.params["ids"].split(","))
    assert sent == ids
    assert [p.coin_id for p in answer.prices] == ids
    assert answer.missing == ()


def test_chunk_ids_boundaries() -> None:
    assert chunk_ids([], 10) == []
    # "%2C" counts 3: "aaa%2Cbbb" is 9 characters
    assert chunk_ids(["aaa", "bbb"], 9) == [["aaa", "bbb"]]
    assert chunk_ids(["aaa", "bbb"], 8) == [["aaa"], ["bbb"]]
    assert chunk_ids(["a-very-long-id", "b"], 5) == [["a-very-long-id"], ["b"]]


def test_ids_are_checked_before_any_request() -> None:
    recorder = Recorder(simple_price_echo({}))
    cg = client(recorder)
    with pytest.raises(TypeError, match=r"\['bitcoin'\]"):
        cg.simple_price("bitcoin", "usd")
    with pytest.raises(ValueError, match="not a CoinGecko coin id"):
        cg.simple_price(["bitcoin", "eth,btc"], "usd")
    with pytest.raises(ValueError, match="quote currency"):
        cg.simple_price(["bitcoin"], "us dollar")
    assert recorder.requests == []


# --- the other endpoints -----------------------------------------------------------------------


def test_markets_request_and_recorded_reply() -> None:
    recorder = Recorder(lambda r: recorded(MARKETS))
    quotes = client(recorder).markets("usd", ids=["bitcoin", "ethereum"], per_page=50, page=2)
    (request,) = recorder.requests
    assert request.url.path == "/api/v3/coins/markets"
    assert request.url.params["ids"] == "bitcoin,ethereum"
    assert request.url.params["vs_currency"] == "usd"
    assert request.url.params["per_page"] == "50"
    assert request.url.params["page"] == "2"
    assert [q.current_price for q in quotes] == [Decimal("7015.11823787848")]


def test_markets_refuses_more_ids_than_one_page() -> None:
    cg = client(lambda r: recorded(MARKETS))
    with pytest.raises(ValueError, match="do not fit one /coins/markets request"):
        cg.markets("usd", ids=[f"coin-{n}" for n in range(11)], per_page=10)
    with pytest.raises(ValueError, match="per_page"):
        cg.markets("usd", per_page=251)


def test_market_chart_request_and_recorded_reply() -> None:
    recorder = Recorder(lambda r: recorded(CHART))
    points = client(recorder).market_chart("bitcoin", "usd", days=1)
    (request,) = recorder.requests
    assert request.url.path == "/api/v3/coins/bitcoin/market_chart"
    assert dict(request.url.params) == {"vs_currency": "usd", "days": "1"}
    assert len(points) == 6


def test_market_chart_of_an_unknown_coin_is_unknown_coin_not_retried() -> None:
    sleeps: list[float] = []
    recorder = Recorder(lambda r: httpx.Response(404, json={"error": "coin not found"}))
    with pytest.raises(UnknownCoin, match="does not know the coin id 'btc'") as caught:
        client(recorder, sleeps).market_chart("btc", "usd")
    assert caught.value.coin_id == "btc"
    assert isinstance(caught.value, SourceError)
    assert len(recorder.requests) == 1
    assert sleeps == []


def test_coin_exists_asks_simple_price_for_that_id_only() -> None:
    recorder = Recorder(simple_price_echo({"bitcoin": "7984.89"}))
    cg = client(recorder)
    assert cg.coin_exists("bitcoin") is True
    assert cg.coin_exists("not-a-coin") is False
    assert [r.url.params["ids"] for r in recorder.requests] == ["bitcoin", "not-a-coin"]
    assert all(r.url.path == "/api/v3/simple/price" for r in recorder.requests)
    assert cg.coin_exists("") is False
    assert cg.coin_exists("bitcoin/../x") is False
    assert len(recorder.requests) == 2  # impossible ids cost no request


def test_coin_exists_on_an_outage_raises_rather_than_saying_no() -> None:
    cg = client(lambda r: httpx.Response(503, text="down"), max_attempts=2)
    with pytest.raises(CoinGeckoError, match="still failing"):
        cg.coin_exists("bitcoin")


# --- headers and the API key -------------------------------------------------------------------


def test_no_key_means_no_key_header_and_a_descriptive_user_agent() -> None:
    recorder = Recorder(lambda r: recorded(SIMPLE_PRICE))
    client(recorder).simple_price(["bitcoin"], "usd")
    (request,) = recorder.requests
    assert request.headers["user-agent"] == USER_AGENT
    assert "Vigil/" in USER_AGENT
    assert "CoinGecko" in USER_AGENT
    assert request.headers["accept"] == "application/json"
    assert not [name for name in request.headers if name.lower().startswith("x-cg-")]
    assert "x_cg_" not in str(request.url)


def test_demo_key_goes_in_the_demo_header_never_in_the_url() -> None:
    recorder = Recorder(lambda r: recorded(SIMPLE_PRICE))
    client(recorder, api_key="CG-demo-secret").simple_price(["bitcoin"], "usd")
    (request,) = recorder.requests
    assert request.headers[DEMO_KEY_HEADER] == "CG-demo-secret"
    assert PRO_KEY_HEADER not in request.headers
    assert "secret" not in str(request.url)


def test_key_header_follows_the_key_type_or_the_base_url() -> None:
    assert api_key_header("https://api.coingecko.com/api/v3") == DEMO_KEY_HEADER
    assert api_key_header("https://pro-api.coingecko.com/api/v3") == PRO_KEY_HEADER
    assert api_key_header("http://127.0.0.1:9/api/v3", "pro") == PRO_KEY_HEADER
    assert api_key_header("https://pro-api.coingecko.com/api/v3", "demo") == DEMO_KEY_HEADER
    recorder = Recorder(lambda r: recorded(SIMPLE_PRICE))
    client(recorder, api_key="k", api_key_type="pro").simple_price(["bitcoin"], "usd")
    assert recorder.requests[0].headers[PRO_KEY_HEADER] == "k"


def test_from_settings_key_is_secret_and_base_url_is_stripped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_COINGECKO_BASE_URL", "https://pro-api.coingecko.com/api/v3/")
    monkeypatch.setenv("VIGIL_COINGECKO_API_KEY", "CG-top-secret")
    settings = Settings(_env_file=None)
    assert settings.coingecko_base_url == "https://pro-api.coingecko.com/api/v3"
    assert "CG-top-secret" not in repr(settings)
    assert "CG-top-secret" not in str(settings.model_dump())
    assert settings.coingecko_poll_seconds == 60
    with CoinGeckoClient.from_settings(settings) as cg:
        assert cg.base_url == "https://pro-api.coingecko.com/api/v3"
        assert cg.api_key_header == PRO_KEY_HEADER  # auto: the pro host wants the pro header
        assert "CG-top-secret" not in repr(cg)


def test_defaults_have_no_key() -> None:
    settings = Settings(_env_file=None)
    assert settings.coingecko_base_url == "https://api.coingecko.com/api/v3"
    with CoinGeckoClient.from_settings(settings) as cg:
        assert cg.api_key_header is None


def test_401_is_not_retried_and_says_how_to_fix_the_key() -> None:
    sleeps: list[float] = []
    body = {"status": {"error_code": 10011, "error_message": "Invalid API Key"}}
    recorder = Recorder(lambda r: httpx.Response(401, json=body))
    with pytest.raises(CoinGeckoError, match="VIGIL_COINGECKO_API_KEY") as caught:
        client(recorder, sleeps, api_key="wrong").simple_price(["bitcoin"], "usd")
    assert "Invalid API Key" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert len(recorder.requests) == 1
    assert sleeps == []


# --- retries -----------------------------------------------------------------------------------


def test_500_is_retried_with_backoff_then_succeeds() -> None:
    sleeps: list[float] = []
    recorder = Recorder(
        replies(httpx.Response(500, text="Internal Server Error"), recorded(SIMPLE_PRICE))
    )
    answer = client(recorder, sleeps, backoff_initial=0.5).simple_price(["bitcoin"], "usd")
    assert answer.prices[0].price == Decimal("7984.89")
    assert len(recorder.requests) == 2
    assert len(sleeps) == 1
    assert 0.5 <= sleeps[0] <= 1.0  # initial backoff + up to initial of jitter


def test_recorded_429_waits_exactly_its_retry_after_then_succeeds() -> None:
    assert RATE_LIMIT_HEADERS["retry-after"] == "119"
    sleeps: list[float] = []
    recorder = Recorder(replies(recorded_429(), recorded(SIMPLE_PRICE)))
    answer = client(recorder, sleeps, backoff_max=120).simple_price(["bitcoin"], "usd")
    assert [p.coin_id for p in answer.prices] == ["bitcoin"]
    assert sleeps == [119.0]  # never sooner than CoinGecko asked
    assert len(recorder.requests) == 2


def test_retry_after_longer_than_the_cap_gives_up_at_once_with_advice() -> None:
    sleeps: list[float] = []
    recorder = Recorder(lambda r: recorded_429())
    cg = client(recorder, sleeps, backoff_max=60)
    with pytest.raises(CoinGeckoError) as caught:
        cg.simple_price(["bitcoin"], "usd")
    message = str(caught.value)
    assert "wait 119s" in message
    assert "VIGIL_COINGECKO_BACKOFF_MAX_SECONDS" in message
    assert "VIGIL_COINGECKO_API_KEY" in message
    assert len(recorder.requests) == 1
    assert sleeps == []


def test_retry_after_as_an_http_date() -> None:
    sleeps: list[float] = []
    now = datetime(2022, 9, 29, 10, 0, 0, tzinfo=UTC)
    limited = httpx.Response(429, headers={"retry-after": "Thu, 29 Sep 2022 10:00:30 GMT"})
    recorder = Recorder(replies(limited, recorded(SIMPLE_PRICE)))
    client(recorder, sleeps, now=lambda: now).simple_price(["bitcoin"], "usd")
    assert sleeps == [30.0]


def test_429_until_attempts_run_out_says_what_to_do() -> None:
    sleeps: list[float] = []
    recorder = Recorder(lambda r: recorded_429())
    cg = client(recorder, sleeps, max_attempts=3, backoff_max=120)
    with pytest.raises(SourceError) as caught:
        cg.simple_price(["bitcoin"], "usd")
    message = str(caught.value)
    assert "still rate-limiting" in message
    assert "after 3 attempts" in message
    assert "You've exceeded the Rate Limit" in message  # CoinGecko's own words
    assert "VIGIL_COINGECKO_API_KEY" in message
    assert "VIGIL_COINGECKO_POLL_SECONDS" in message
    assert len(recorder.requests) == 3
    assert sleeps == [119.0, 119.0]


def test_5xx_until_attempts_run_out_with_growing_capped_waits() -> None:
    sleeps: list[float] = []
    recorder = Recorder(lambda r: httpx.Response(502, text="<html>Bad gateway</html>"))
    cg = client(recorder, sleeps, max_attempts=5, backoff_initial=1, backoff_max=5)
    with pytest.raises(CoinGeckoError, match="still failing for /simple/price after 5 attempts"):
        cg.simple_price(["bitcoin"], "usd")
    assert len(recorder.requests) == 5
    assert len(sleeps) == 4
    # exponential 1, 2, 4, (8 →) capped at 5, each plus up to 1 s of jitter below the cap
    assert 1 <= sleeps[0] <= 2
    assert 2 <= sleeps[1] <= 3
    assert 4 <= sleeps[2] <= 5
    assert sleeps[3] == 5


def test_timeouts_and_connection_errors_are_retried() -> None:
    sleeps: list[float] = []
    recorder = Recorder(
        replies(httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), recorded(CHART))
    )
    points = client(recorder, sleeps).market_chart("bitcoin", "usd")
    assert len(points) == 6
    assert len(sleeps) == 2


def test_invalid_json_is_a_source_error_not_retried() -> None:
    sleeps: list[float] = []
    recorder = Recorder(lambda r: httpx.Response(200, text="<html>Just a moment...</html>"))
    with pytest.raises(SourceError, match="invalid JSON for /simple/price"):
        client(recorder, sleeps).simple_price(["bitcoin"], "usd")
    assert len(recorder.requests) == 1
    assert sleeps == []


def test_other_4xx_quotes_coingecko() -> None:
    recorder = Recorder(lambda r: httpx.Response(400, json={"error": "invalid vs_currency"}))
    with pytest.raises(CoinGeckoError, match="refused /coins/markets with 400: invalid vs_cur"):
        client(recorder).markets("zzz")
    assert len(recorder.requests) == 1


def test_retry_log_lines_never_show_the_key(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(replies(recorded_429(), recorded(SIMPLE_PRICE)))
    with caplog.at_level(logging.DEBUG):
        client(recorder, api_key="CG-log-secret").simple_price(["bitcoin"], "usd")
    assert "attempt 1 of 4" in caplog.text
    assert "CG-log-secret" not in caplog.text


# --- over real HTTP, against the fake server on 127.0.0.1 -----------------------------------


def test_fake_server_key_batching_moves_and_recorded_429() -> None:
    with FakeCoinGecko(
        {"bitcoin": {"usd": "7984.89"}, "ethereum": {"usd": "289.14"}}, api_key="CG-key"
    ) as fake:
        with (
            CoinGeckoClient(fake.base_url, max_attempts=1) as keyless,
            pytest.raises(CoinGeckoError, match="VIGIL_COINGECKO_API_KEY"),
        ):
            keyless.simple_price(["bitcoin"], "usd")

        sleeps: list[float] = []
        with CoinGeckoClient(fake.base_url, api_key="CG-key", sleep=sleeps.append) as cg:
            first = cg.simple_price(["bitcoin", "ethereum", "dogecoin"], "usd")
            fake.set_price("bitcoin", "usd", "8100.5", at=1535460060)
            fake.queue_rate_limit()
            second = cg.simple_price(["bitcoin", "ethereum", "dogecoin"], "usd")

        assert first.by_id()["bitcoin"].price == Decimal("7984.89")
        assert first.missing == ("dogecoin",)
        assert second.by_id()["bitcoin"].price == Decimal("8100.5")
        assert second.by_id()["bitcoin"].last_updated == datetime(2018, 8, 28, 12, 41, tzinfo=UTC)
        assert sleeps == [119.0]  # the recorded Retry-After, through real HTTP headers
        polls = [r for r in fake.requests if r.headers.get("x-cg-demo-api-key") == "CG-key"]
        # one request per poll, plus the retry after the 429
        assert [r.query["ids"] for r in polls] == ["bitcoin,ethereum,dogecoin"] * 3
        assert all(r.headers["user-agent"] == USER_AGENT for r in fake.requests)


def test_fake_server_chart_and_unknown_coin() -> None:
    chart = [(1535373899623, "6756.942910425894"), (1535374183927, "6696.894541693875")]
    with (
        FakeCoinGecko({"bitcoin": {"usd": "7984.89"}}, charts={"bitcoin": chart}) as fake,
        CoinGeckoClient(fake.base_url) as cg,
    ):
        points = cg.market_chart("bitcoin", "usd", days=1)
        assert [(p.ts, p.price) for p in points] == [
            (datetime(2018, 8, 27, 12, 44, 59, 623000, tzinfo=UTC), Decimal("6756.942910425894")),
            (datetime(2018, 8, 27, 12, 49, 43, 927000, tzinfo=UTC), Decimal("6696.894541693875")),
        ]
        with pytest.raises(UnknownCoin):
            cg.market_chart("no-such-coin", "usd")
        assert cg.coin_exists("bitcoin")
        assert not cg.coin_exists("no-such-coin")
        (quote,) = cg.markets("usd", ids=["bitcoin"])
        assert (quote.symbol, quote.current_price) == ("btc", Decimal("7984.89"))


def test_coingecko_is_a_registered_crypto_source_without_date_range_fetch() -> None:
    assert SOURCES["coingecko"] is CoinGeckoClient
    with create_source(
        "coingecko", Settings(coingecko_base_url="http://127.0.0.1:9/api/v3")
    ) as src:
        assert src.kinds == frozenset({SeriesKind.CRYPTO})
        with pytest.raises(SourceError, match="no date-range fetch for crypto"):
            src.fetch(SeriesKind.CRYPTO, date(2024, 1, 1), date(2024, 1, 2))
