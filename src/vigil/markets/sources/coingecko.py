"""CoinGecko public API v3: spot prices, market snapshots and recent history of crypto assets.

Registered as the source ``coingecko`` (kind ``crypto``); the telemetry board's poll job and
"add asset" use it (``markets/crypto.py``). What the API does, and what this client does
about it:

- ``/simple/price`` takes many ids in one request; ids it does not know are left out of its
  answer (``{}`` for a single unknown id, with status 200). The client asks for all ids at once
  (split only when the URL would get long, see ``MAX_IDS_QUERY_CHARS``) and reports the absent
  ones in :attr:`SpotPrices.missing` instead of failing the batch.
- An API key is optional. A demo key goes in the ``x-cg-demo-api-key`` header and works only
  with ``https://api.coingecko.com/api/v3``; a pro key goes in ``x-cg-pro-api-key`` and works
  only with ``https://pro-api.coingecko.com/api/v3``. Sources: CoinGecko's "Authentication
  (Demo API)" page (docs.coingecko.com/demo/reference/authentication, "Header (recommended):
  x-cg-demo-api-key"), "Authentication (Pro API)" (docs.coingecko.com/reference/authentication,
  "Header (Recommended): x-cg-pro-api-key") and "Errors & Rate Limits"
  (docs.coingecko.com/docs/errors-and-rate-limits: error codes 10010/10011, a key of the wrong
  type for the root URL). The key travels in a header, never in the URL, so it stays out of
  access logs.
- 429 (rate limited; the recorded one says ``retry-after: 119``), 408, 5xx, timeouts and
  connection errors are retried with exponential backoff and jitter, never sooner than
  ``Retry-After``, a bounded number of times; then :class:`CoinGeckoError` says what to do. A
  ``Retry-After`` longer than the backoff cap ends the call at once (waiting less would only
  earn another 429): the next poll tries again.
- Numbers are parsed as ``Decimal`` straight from the JSON text, never through binary floats.
  CoinGecko sometimes writes numbers as strings (``"price_change_percentage_24h":
  "4.46323343521924"`` in the recorded ``/coins/markets``); both forms are accepted.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote, urlsplit

import httpx
from tenacity import RetryCallState, RetryError

from vigil import __version__
from vigil.markets.sources.base import SeriesKind, SourceClient, SourceError, register_source
from vigil.markets.sources.retry import Backoff, retry_after_seconds
from vigil.markets.sources.retry import RetryableError as SourceRetryableError
from vigil.settings import Settings

log = logging.getLogger(__name__)

USER_AGENT = f"Vigil/{__version__} (self-hosted telemetry board; CoinGecko client; httpx)"
DEFAULT_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_HOST = "pro-api.coingecko.com"
DEMO_KEY_HEADER = "x-cg-demo-api-key"
PRO_KEY_HEADER = "x-cg-pro-api-key"

#: Budget for the URL-encoded ``ids`` value of one ``/simple/price`` request (ids joined by
#: ``%2C``, the encoded comma). RFC 9110 asks servers to accept request lines of at least 8000
#: octets and nginx's and Apache's defaults are about 8 KB (Cloudflare, in front of CoinGecko,
#: allows 32 KB); 4000 characters keep the whole URL near 4.1 KB, half the smallest of those,
#: with room for proxies on the way. That still fits about 250 typical ids (``bitcoin``,
#: ``ethereum``, ``usd-coin``: 8-12 characters, plus 3 for the comma), so a board of a few
#: hundred assets costs one request, one API credit, per tick.
MAX_IDS_QUERY_CHARS = 4000
#: ``/coins/markets`` returns at most 250 coins per page.
MAX_PER_PAGE = 250

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Characters that cannot be part of a coin id: they would split the ids list (","), change
# the path ("/", "?", "#") or the query ("&", "%"). CoinGecko ids are like "bitcoin",
# "usd-coin", "wrapped-bitcoin"; the rest of the checking is CoinGecko's.
_BAD_ID_CHARS = re.compile(r"[\s,/?#&%]")
_VS_CURRENCY = re.compile(r"[a-z0-9]{1,20}")
_RETRYABLE_STATUS = frozenset({408, 429})
_KEY_ERROR_CODES = frozenset({10002, 10010, 10011})
_PLAN_ERROR_CODE = 10005


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpotPrice:
    """``coin_id`` costs ``price`` ``vs_currency`` as of ``last_updated`` (CoinGecko's time,
    None when it did not say)."""

    coin_id: str
    vs_currency: str
    price: Decimal
    last_updated: datetime | None


@dataclass(frozen=True, slots=True)
class SpotPrices:
    """One ``/simple/price`` answer: the prices found, and the asked ids without a price
    (unknown to CoinGecko, or without a price in that currency), both in the asked order."""

    prices: tuple[SpotPrice, ...]
    missing: tuple[str, ...]

    def by_id(self) -> dict[str, SpotPrice]:
        return {price.coin_id: price for price in self.prices}


@dataclass(frozen=True, slots=True)
class MarketQuote:
    """One row of ``/coins/markets``. Any number CoinGecko sends as null is None."""

    coin_id: str
    symbol: str
    name: str
    vs_currency: str
    current_price: Decimal | None
    market_cap: Decimal | None
    total_volume: Decimal | None
    high_24h: Decimal | None
    low_24h: Decimal | None
    price_change_24h: Decimal | None
    price_change_percentage_24h: Decimal | None
    last_updated: datetime | None


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One point of ``/coins/{id}/market_chart``: the price at ``ts`` (UTC)."""

    ts: datetime
    price: Decimal


# --- errors ---------------------------------------------------------------------------------


class CoinGeckoError(SourceError):
    """CoinGecko did not give a usable answer; the message says what to do about it."""


class UnknownCoin(CoinGeckoError):
    """CoinGecko does not know ``coin_id`` (an "add asset" request should answer 4xx)."""

    def __init__(self, coin_id: str, message: str) -> None:
        super().__init__(message)
        self.coin_id = coin_id


class RetryableError(CoinGeckoError, SourceRetryableError):
    """A failure worth another try (429, 408, 5xx, timeout, connection error)."""


# --- helpers --------------------------------------------------------------------------------


def api_key_header(base_url: str, key_type: Literal["auto", "demo", "pro"] = "auto") -> str:
    """The header that carries the key: ``key_type``, or with "auto" the one the base URL's
    host expects (pro-api.coingecko.com: pro; anything else, the public API included: demo)."""
    if key_type == "pro":
        return PRO_KEY_HEADER
    if key_type == "demo":
        return DEMO_KEY_HEADER
    host = (urlsplit(base_url).hostname or "").lower()
    return PRO_KEY_HEADER if host == PRO_HOST else DEMO_KEY_HEADER


def check_coin_id(coin_id: str) -> str:
    """``coin_id`` stripped; ValueError when it cannot be a CoinGecko id at all."""
    if not isinstance(coin_id, str):
        raise TypeError(f"a CoinGecko coin id is a string, not {type(coin_id).__name__}")
    cleaned = coin_id.strip()
    if not cleaned or _BAD_ID_CHARS.search(cleaned):
        raise ValueError(
            f"{coin_id!r} is not a CoinGecko coin id (ids look like 'bitcoin' or 'usd-coin')"
        )
    return cleaned


def check_vs_currency(vs_currency: str) -> str:
    """``vs_currency`` lower-cased (CoinGecko's currency codes are: ``usd``, ``eur``, ``btc``)."""
    cleaned = vs_currency.strip().lower()
    if not _VS_CURRENCY.fullmatch(cleaned):
        raise ValueError(f"{vs_currency!r} is not a CoinGecko quote currency such as 'usd'")
    return cleaned


def _clean_ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise TypeError("ids is a sequence of coin ids: write ['bitcoin'], not 'bitcoin'")
    return list(dict.fromkeys(check_coin_id(coin_id) for coin_id in ids))


def _encoded_len(coin_id: str) -> int:
    return len(quote(coin_id, safe=""))


def chunk_ids(ids: Sequence[str], max_chars: int = MAX_IDS_QUERY_CHARS) -> list[list[str]]:
    """Splits ``ids`` into consecutive groups whose URL-encoded, comma-joined form is at most
    ``max_chars`` long (an id longer than that on its own gets a group of its own)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    used = 0
    for coin_id in ids:
        size = _encoded_len(coin_id)
        extra = size if not current else size + 3  # "%2C"
        if current and used + extra > max_chars:
            chunks.append(current)
            current, used = [], 0
            extra = size
        current.append(coin_id)
        used += extra
    if current:
        chunks.append(current)
    return chunks


def _number(value: Any, what: str) -> Decimal | None:
    """A JSON number (already a Decimal or an int) or numeric string; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise CoinGeckoError(f"CoinGecko sent a non-numeric {what}: {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise CoinGeckoError(f"CoinGecko sent a non-numeric {what}: {value!r}") from None
    if not number.is_finite():
        raise CoinGeckoError(f"CoinGecko sent an impossible {what}: {value!r}")
    return number


def _price(value: Any, what: str) -> Decimal | None:
    """A price: None when CoinGecko has none (null or 0, which it sends for dead markets);
    negative is an error."""
    number = _number(value, what)
    if number is None or number == 0:
        return None
    if number < 0:
        raise CoinGeckoError(f"CoinGecko sent a negative {what}: {value!r}")
    return number


def _epoch(value: Any, unit_ms: bool, what: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise CoinGeckoError(f"CoinGecko sent a non-numeric {what}: {value!r}")
    ms = Decimal(value) * (1 if unit_ms else 1000)
    if not ms.is_finite():
        raise CoinGeckoError(f"CoinGecko sent an impossible {what}: {value!r}")
    try:
        return _EPOCH + timedelta(microseconds=int(ms * 1000))
    except OverflowError:
        raise CoinGeckoError(f"CoinGecko sent an impossible {what}: {value!r}") from None


def _iso_datetime(value: Any, what: str) -> datetime | None:
    """``2018-08-28T12:12:53.390Z`` → an aware UTC datetime (a zone-less one is taken as UTC)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CoinGeckoError(f"CoinGecko sent a {what} that is not a date-time: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CoinGeckoError(
            f"CoinGecko sent a {what} that is not a date-time: {value!r}"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _error_details(response: httpx.Response) -> tuple[int | None, str]:
    """CoinGecko's error code and message from an error body. Its shapes:
    ``{"status": {"error_code": 429, "error_message": "..."}}`` (the recorded 429),
    ``{"error": "coin not found"}``, ``{"error": {"status": {...}}}``; else the text."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            return None, error
        status = error.get("status") if isinstance(error, dict) else body.get("status")
        if isinstance(status, dict):
            code = status.get("error_code")
            message = status.get("error_message")
            if message is not None:
                return (code if isinstance(code, int) else None), str(message)[:300]
    # A Cloudflare HTML page (reported for 429 and 1020 "Access denied"): keep it short.
    return None, " ".join(text.split())[:200] or "(empty body)"


# --- parsing ----------------------------------------------------------------------------------


def parse_simple_price(payload: Any, ids: Sequence[str], vs_currency: str) -> SpotPrices:
    """``/simple/price?ids=…&vs_currencies=…&include_last_updated_at=true``:
    ``{"bitcoin": {"usd": 7984.89, "last_updated_at": 1535460000}, …}``."""
    if not isinstance(payload, dict):
        raise CoinGeckoError("CoinGecko /simple/price reply is not a JSON object of coins")
    prices: list[SpotPrice] = []
    missing: list[str] = []
    for coin_id in ids:
        entry = payload.get(coin_id)
        if entry is None:
            missing.append(coin_id)
            continue
        if not isinstance(entry, dict):
            raise CoinGeckoError(
                f"CoinGecko /simple/price reply has an unexpected shape for {coin_id!r}: {entry!r}"
            )
        price = _price(entry.get(vs_currency), f"{coin_id} price in {vs_currency}")
        if price is None:
            missing.append(coin_id)
            continue
        stamp = entry.get("last_updated_at")
        updated = None if stamp is None else _epoch(stamp, False, f"{coin_id} last_updated_at")
        prices.append(SpotPrice(coin_id, vs_currency, price, updated))
    return SpotPrices(tuple(prices), tuple(missing))


def parse_markets(payload: Any, vs_currency: str) -> list[MarketQuote]:
    """``/coins/markets?vs_currency=…``: a list of coins with their market data."""
    if not isinstance(payload, list):
        raise CoinGeckoError("CoinGecko /coins/markets reply is not a list of coins")
    quotes: list[MarketQuote] = []
    try:
        for row in payload:
            coin_id = str(row["id"])

            def num(field: str, row: Any = row, coin_id: str = coin_id) -> Decimal | None:
                return _number(row.get(field), f"{coin_id} {field}")

            quotes.append(
                MarketQuote(
                    coin_id=coin_id,
                    symbol=str(row["symbol"]),
                    name=str(row["name"]),
                    vs_currency=vs_currency,
                    current_price=_price(row.get("current_price"), f"{coin_id} current_price"),
                    market_cap=num("market_cap"),
                    total_volume=num("total_volume"),
                    high_24h=num("high_24h"),
                    low_24h=num("low_24h"),
                    price_change_24h=num("price_change_24h"),
                    price_change_percentage_24h=num("price_change_percentage_24h"),
                    last_updated=_iso_datetime(row.get("last_updated"), f"{coin_id} last_updated"),
                )
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise CoinGeckoError(
            f"CoinGecko /coins/markets reply has an unexpected shape: {exc!r}"
        ) from None
    return quotes


def parse_market_chart(payload: Any) -> list[PricePoint]:
    """``/coins/{id}/market_chart``: ``{"prices": [[ms, price], …], …}`` in time order.
    Points without a price (null) are skipped."""
    if not isinstance(payload, dict) or not isinstance(payload.get("prices"), list):
        raise CoinGeckoError("CoinGecko market_chart reply has no list of prices")
    points: list[PricePoint] = []
    for pair in payload["prices"]:
        if not isinstance(pair, list) or len(pair) != 2:
            raise CoinGeckoError(
                f"CoinGecko market_chart reply has a point that is not [ms, price]: {pair!r}"
            )
        price = _price(pair[1], "market_chart price")
        if price is not None:
            points.append(PricePoint(_epoch(pair[0], True, "market_chart timestamp"), price))
    return points


# --- the client -----------------------------------------------------------------------------


@register_source
class CoinGeckoClient(SourceClient):
    """One ``httpx.Client`` per instance; close it (or use ``with``) when done. Intraday: it
    has no date-range ``fetch`` (the poll asks for the current prices, "add asset" for the
    last day's chart)."""

    name: ClassVar[str] = "coingecko"
    title: ClassVar[str] = "CoinGecko: crypto asset prices"
    kinds: ClassVar[frozenset[SeriesKind]] = frozenset({SeriesKind.CRYPTO})
    #: The Settings field holding this source's base URL.
    base_url_setting: ClassVar[str] = "coingecko_base_url"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        api_key_type: Literal["auto", "demo", "pro"] = "auto",
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_initial: float = 1.0,
        backoff_max: float = 120.0,
        max_ids_chars: int = MAX_IDS_QUERY_CHARS,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        key = (api_key or "").strip()
        self.api_key_header: str | None = None
        if key:
            self.api_key_header = api_key_header(self.base_url, api_key_type)
            headers[self.api_key_header] = key
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers=headers,
            transport=transport,
        )
        self._backoff = Backoff("CoinGecko", log, max_attempts, backoff_initial, backoff_max)
        self._max_ids_chars = max_ids_chars
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(cls, settings: Settings) -> CoinGeckoClient:
        return cls(
            settings.coingecko_base_url,
            api_key=settings.coingecko_api_key.get_secret_value(),
            api_key_type=settings.coingecko_api_key_type,
            timeout=settings.coingecko_timeout_seconds,
            max_attempts=settings.coingecko_max_attempts,
            backoff_initial=settings.coingecko_backoff_initial_seconds,
            backoff_max=settings.coingecko_backoff_max_seconds,
        )

    def __repr__(self) -> str:  # never the key
        keyed = f", key in {self.api_key_header}" if self.api_key_header else ""
        return f"CoinGeckoClient({self.base_url!r}{keyed})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- endpoints ------------------------------------------------------------------------------
    def simple_price(self, ids: Sequence[str], vs_currency: str) -> SpotPrices:
        """The current price of every id in ``vs_currency``: one request for all of them
        (more only when the URL would exceed ``MAX_IDS_QUERY_CHARS``). Ids CoinGecko has no
        price for are in ``missing``; duplicates are asked once."""
        vs = check_vs_currency(vs_currency)
        wanted = _clean_ids(ids)
        prices: list[SpotPrice] = []
        missing: list[str] = []
        for chunk in chunk_ids(wanted, self._max_ids_chars):
            payload = self._get(
                "simple/price",
                {"ids": ",".join(chunk), "vs_currencies": vs, "include_last_updated_at": "true"},
            )
            answer = parse_simple_price(payload, chunk, vs)
            prices.extend(answer.prices)
            missing.extend(answer.missing)
        return SpotPrices(tuple(prices), tuple(missing))

    def markets(
        self,
        vs_currency: str,
        ids: Sequence[str] | None = None,
        per_page: int = MAX_PER_PAGE,
        page: int = 1,
    ) -> list[MarketQuote]:
        """One page of ``/coins/markets`` (by market cap, largest first), optionally only
        ``ids`` (at most ``per_page`` of them: CoinGecko answers one page)."""
        vs = check_vs_currency(vs_currency)
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}, not {per_page}")
        if page < 1:
            raise ValueError(f"page must be 1 or more, not {page}")
        params: dict[str, str] = {
            "vs_currency": vs,
            "order": "market_cap_desc",
            "per_page": str(per_page),
            "page": str(page),
            "sparkline": "false",
        }
        if ids is not None:
            wanted = _clean_ids(ids)
            if len(wanted) > per_page or len(chunk_ids(wanted, self._max_ids_chars)) > 1:
                raise ValueError(
                    f"{len(wanted)} ids do not fit one /coins/markets request (at most "
                    f"{per_page} ids and {self._max_ids_chars} URL characters): split them, "
                    "or use simple_price, which splits by itself"
                )
            if not wanted:
                return []
            params["ids"] = ",".join(wanted)
        return parse_markets(self._get("coins/markets", params), vs)

    def market_chart(
        self, coin_id: str, vs_currency: str, days: int | Literal["max"] = 1
    ) -> list[PricePoint]:
        """Prices of the last ``days`` days, oldest first (CoinGecko picks the spacing: about
        5 minutes for 1 day, hourly up to 90 days, daily beyond). Raises :class:`UnknownCoin`
        when CoinGecko does not know ``coin_id``."""
        coin = check_coin_id(coin_id)
        vs = check_vs_currency(vs_currency)
        if days != "max" and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
            raise ValueError(f"days must be a whole number of days (1 or more) or 'max': {days!r}")
        payload = self._get(
            f"coins/{quote(coin, safe='')}/market_chart",
            {"vs_currency": vs, "days": str(days)},
            coin_id=coin,
        )
        return parse_market_chart(payload)

    def coin_exists(self, coin_id: str, vs_currency: str = "usd") -> bool:
        """Whether CoinGecko knows ``coin_id`` and prices it in ``vs_currency``.

        Uses ``/simple/price`` for that one id: an unknown id is simply absent from the answer
        (status 200, ``{}``), the answer is a few dozen bytes, and like every call it costs one
        credit. ``/coins/{id}`` would say 404 for an unknown id but sends kilobytes of
        description and links even with every ``*_data`` flag off, and ``/coins/list`` is the
        whole catalogue (megabytes). It also checks what the poller needs: a price in the quote
        currency. A string that cannot be an id is False without a request; network trouble
        raises :class:`CoinGeckoError` (unknown is not the same as unreachable).
        """
        try:
            coin = check_coin_id(coin_id)
            vs = check_vs_currency(vs_currency)
        except (TypeError, ValueError):
            return False
        return not self.simple_price([coin], vs).missing

    # --- HTTP -----------------------------------------------------------------------------------
    def _should_retry(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, RetryableError):
            return False
        # Waiting less than Retry-After would only earn another 429.
        return exc.retry_after is None or exc.retry_after <= self._backoff.max_seconds

    def _get(self, path: str, params: dict[str, str], coin_id: str | None = None) -> Any:
        """GET a JSON document, retrying what is worth retrying."""
        retrying = self._backoff.retrying(self._sleep, self._should_retry)
        try:
            return retrying(self._get_once, path, params, coin_id)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise CoinGeckoError(self._exhausted_message(path, last)) from last
        except RetryableError as exc:  # not retried: Retry-After beyond the backoff cap
            raise CoinGeckoError(
                f"CoinGecko asks to wait {exc.retry_after:.0f}s before the next request "
                f"(429 Retry-After) for /{path}, longer than VIGIL_COINGECKO_BACKOFF_MAX_SECONDS "
                f"({self._backoff.max_seconds:g}s), so the call gives up now and the next poll "
                "will try again; to be limited less, set VIGIL_COINGECKO_API_KEY (a free demo "
                "key has its own quota) or raise VIGIL_COINGECKO_POLL_SECONDS"
            ) from exc

    def _exhausted_message(self, path: str, last: BaseException | None) -> str:
        attempts = f"after {self._backoff.max_attempts} attempts"
        if isinstance(last, RetryableError) and last.status == 429:
            return (
                f"CoinGecko is still rate-limiting /{path} {attempts}: {last}; set "
                "VIGIL_COINGECKO_API_KEY (a free demo key has its own quota) or raise "
                "VIGIL_COINGECKO_POLL_SECONDS; the next poll will try again"
            )
        return (
            f"CoinGecko still failing for /{path} {attempts}: {last}; check "
            f"{self.base_url} (and https://status.coingecko.com); the next poll will try again"
        )

    def _get_once(self, path: str, params: dict[str, str], coin_id: str | None) -> Any:
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout calling {self.base_url}/{path}: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"cannot reach {self.base_url}/{path}: {exc!r}") from exc
        status = response.status_code
        if status == 200:
            try:
                return json.loads(response.content, parse_float=Decimal)
            except ValueError as exc:
                start = " ".join(response.text.split())[:80]
                raise CoinGeckoError(
                    f"CoinGecko sent invalid JSON for /{path} ({exc}); the answer starts "
                    f"{start!r}: a proxy or an outage page? The next poll will try again"
                ) from None
        code, message = _error_details(response)
        if status in _RETRYABLE_STATUS or status >= 500:
            raise RetryableError(
                f"CoinGecko answered {status} for /{path}: {message}",
                status,
                retry_after_seconds(response, self._now()),
            )
        if status == 404 and coin_id is not None:
            raise UnknownCoin(
                coin_id,
                f"CoinGecko does not know the coin id {coin_id!r} ({message}); use CoinGecko's "
                "API id (e.g. 'bitcoin' for BTC), as listed by /coins/list",
            )
        if status in {401, 403} or code in _KEY_ERROR_CODES:
            raise CoinGeckoError(
                f"CoinGecko refused /{path} with {status} ({message}): check "
                "VIGIL_COINGECKO_API_KEY; a demo key works only with "
                "https://api.coingecko.com/api/v3 and a pro key only with "
                "https://pro-api.coingecko.com/api/v3 (VIGIL_COINGECKO_BASE_URL; the header "
                "follows VIGIL_COINGECKO_API_KEY_TYPE)"
            )
        if code == _PLAN_ERROR_CODE:
            raise CoinGeckoError(
                f"CoinGecko refused /{path} with {status} ({message}): this endpoint or range "
                "is not part of the plan of VIGIL_COINGECKO_API_KEY"
            )
        raise CoinGeckoError(f"CoinGecko refused /{path} with {status}: {message}")
