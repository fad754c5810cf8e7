"""NBP (Narodowy Bank Polski) public API: table A mid rates and gold prices.

What the API does, and what this client does about it:
- At most 93 days per request (the documented limit): longer ranges are split.
- 404 "Brak danych" means no quotes in the range (weekend, holiday): an empty result.
- A range that ends after today (Warsaw time) or starts after it ends is refused with 400, so
  the client clamps ranges to today in Warsaw and never sends an empty one.
- 429, 5xx, timeouts and connection errors are retried with exponential backoff and jitter
  (honouring ``Retry-After``), a bounded number of times; then :class:`SourceError`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
from tenacity import RetryError

from vigil import __version__
from vigil.markets.sources.base import (
    Quote,
    SeriesKind,
    SourceClient,
    SourceError,
    date_chunks,
    register_source,
)
from vigil.markets.sources.retry import Backoff, RetryableError, retry_after_seconds
from vigil.settings import Settings

log = logging.getLogger(__name__)

WARSAW = ZoneInfo("Europe/Warsaw")
USER_AGENT = f"Vigil/{__version__} (self-hosted markets miner; NBP client; httpx)"
GOLD_CODE = "XAU"
GOLD_NAME = "złoto (1 g, próba 1000)"


def warsaw_today() -> date:
    return datetime.now(WARSAW).date()


def _decimal(value: Any, what: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise SourceError(f"NBP sent a non-numeric {what}: {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise SourceError(f"NBP sent an impossible {what}: {value!r}")
    return number


def parse_tables(payload: Any) -> list[Quote]:
    """``/exchangerates/tables/A/{start}/{end}/``: a list of daily tables of mid rates."""
    if not isinstance(payload, list):
        raise SourceError("NBP tables reply is not a list of tables")
    quotes: list[Quote] = []
    try:
        for table in payload:
            day = date.fromisoformat(table["effectiveDate"])
            for rate in table["rates"]:
                code = str(rate["code"]).upper()
                quotes.append(
                    Quote(code, str(rate.get("currency", code)), day, _decimal(rate["mid"], "mid"))
                )
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"NBP tables reply has an unexpected shape: {exc!r}") from None
    return quotes


def parse_gold(payload: Any) -> list[Quote]:
    """``/cenyzlota/{start}/{end}/``: a list of ``{"data": date, "cena": price}``."""
    if not isinstance(payload, list):
        raise SourceError("NBP gold reply is not a list")
    try:
        return [
            Quote(
                GOLD_CODE,
                GOLD_NAME,
                date.fromisoformat(item["data"]),
                _decimal(item["cena"], "gold price"),
            )
            for item in payload
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"NBP gold reply has an unexpected shape: {exc!r}") from None


@register_source
class NBPClient(SourceClient):
    name = "nbp"
    title = "Narodowy Bank Polski: table A mid rates and gold (PLN per gram)"
    kinds = frozenset({SeriesKind.CURRENCY, SeriesKind.GOLD})
    max_range_days = 93
    base_url_setting = "nbp_base_url"
    history_start: ClassVar[dict[SeriesKind, date]] = {
        SeriesKind.CURRENCY: date(2002, 1, 2),
        SeriesKind.GOLD: date(2013, 1, 2),
    }

    def __init__(
        self,
        base_url: str = "https://api.nbp.pl/api",
        *,
        timeout: float = 20.0,
        max_attempts: int = 5,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
        )
        self._backoff = Backoff("NBP", log, max_attempts, backoff_initial, backoff_max)
        self._sleep = sleep
        self._today = today

    @classmethod
    def from_settings(cls, settings: Settings) -> NBPClient:
        return cls(
            settings.nbp_base_url,
            timeout=settings.nbp_timeout_seconds,
            max_attempts=settings.nbp_max_attempts,
            backoff_initial=settings.nbp_backoff_initial_seconds,
            backoff_max=settings.nbp_backoff_max_seconds,
        )

    def latest_available_date(self) -> date:
        return (self._today or warsaw_today)()

    def close(self) -> None:
        self._http.close()

    # --- kinds ----------------------------------------------------------------------------------
    def fetch_rates(self, start: date, end: date) -> list[Quote]:
        return self._fetch_ranges("exchangerates/tables/A", parse_tables, start, end)

    def fetch_gold(self, start: date, end: date) -> list[Quote]:
        return self._fetch_ranges("cenyzlota", parse_gold, start, end)

    def _fetch_ranges(
        self, resource: str, parse: Callable[[Any], list[Quote]], start: date, end: date
    ) -> list[Quote]:
        """GETs ``{resource}/{from}/{to}/`` for each chunk of at most 93 days, clamped to
        today in Warsaw (NBP answers 400 to a range reaching into the future)."""
        end = min(end, self.latest_available_date())
        quotes: list[Quote] = []
        for chunk_start, chunk_end in date_chunks(start, end, self.max_range_days):
            payload = self._get(f"{resource}/{chunk_start}/{chunk_end}/")
            if payload is not None:
                quotes.extend(parse(payload))
        return quotes

    # --- HTTP -----------------------------------------------------------------------------------
    def _get(self, path: str) -> Any | None:
        """GET a JSON document; None when NBP has no data for it (404)."""
        retrying = self._backoff.retrying(self._sleep)
        try:
            return retrying(self._get_once, path)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise SourceError(
                f"NBP still failing after {self._backoff.max_attempts} attempts: {last}; "
                "the next scheduled run will try again"
            ) from last

    def _get_once(self, path: str) -> Any | None:
        try:
            response = self._http.get(path, params={"format": "json"})
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout calling {self.base_url}/{path}: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"cannot reach {self.base_url}/{path}: {exc}") from exc
        status = response.status_code
        if status == 200:
            try:
                return json.loads(response.content, parse_float=Decimal)
            except ValueError as exc:
                raise SourceError(f"NBP sent invalid JSON for {path}: {exc}") from None
        if status == 404:
            return None
        body = response.text.strip()[:200]
        if status == 429 or status >= 500:
            raise RetryableError(
                f"NBP answered {status} for /{path}: {body}", status, retry_after_seconds(response)
            )
        raise SourceError(f"NBP refused /{path} with {status}: {body}")
