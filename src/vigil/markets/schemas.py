"""Request and response models of the markets API. Prices and rates are decimal strings
(``"4.0123"``) so no precision is lost on the way to the client."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Rows matching the filters, across all pages.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last one.")


class AssetOut(BaseModel):
    code: str = Field(examples=["USD"])
    name: str = Field(examples=["dolar amerykański"])
    kind: str = Field(examples=["currency"])
    source: str = Field(examples=["nbp"])
    quote: str = Field(examples=["PLN"])
    source_ref: str | None = Field(None, examples=["bitcoin"], description="The source's id.")
    first_date: date | None
    last_date: date | None


class AssetIn(BaseModel):
    """A crypto asset to track (the telemetry board)."""

    symbol: str = Field(examples=["BTC"], description="Your symbol for it, 2-12 letters/digits.")
    source: str = Field(examples=["coingecko"], description="An installed crypto source.")
    source_ref: str = Field(examples=["bitcoin"], description="The source's id of the coin.")
    quote: str = Field("usd", examples=["usd"], description="Currency it is priced in.")


class AssetCreated(AssetOut):
    backfilled_rows: int = Field(description="Prices of the last 24 hours stored at once.")


class RateOut(BaseModel):
    code: str = Field(examples=["USD"])
    effective_date: date
    rate_mid: str = Field(examples=["4.0123"], description="Mid rate in PLN, exact decimal text.")
    fetched_at: datetime
    source: str


class GoldOut(BaseModel):
    code: str = Field(examples=["XAU"])
    effective_date: date
    price: str = Field(examples=["250.43"], description="PLN per gram of 1000 fineness gold.")
    fetched_at: datetime
    source: str


class SourceInstanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str = Field(examples=["nbp-mirror"])
    kind: str = Field(examples=["nbp"], description="The installed plug-in it uses.")
    base_url: str
    enabled: bool
    schedule: str | None = Field(description="Cron (UTC) replacing the plug-in's schedule.")
    created_at: datetime


class SourceInstanceIn(BaseModel):
    name: str = Field(examples=["nbp-mirror"], description="2-40 of a-z, 0-9 and '-'.")
    kind: str = Field(examples=["nbp"], description="An installed plug-in (GET /sources).")
    base_url: HttpUrl = Field(examples=["https://api.nbp.pl/api"])
    enabled: bool = True
    schedule: str | None = Field(
        None, examples=["*/30 * * * *"], description="Cron (UTC); empty: the plug-in's own."
    )


class SourceOut(BaseModel):
    name: str
    title: str
    kinds: list[str]
    base_url: str
    max_range_days: int
    history_start: dict[str, date]
    instances: list[SourceInstanceOut] = Field(
        default_factory=list, description="Configured instances of this plug-in."
    )


class JobTypeStatsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job_type: str
    runs: int
    ok: int
    skipped: int
    failed: int
    running: int
    rows_written: int
    avg_duration_seconds: float | None
    last_started_at: datetime | None
    last_success_at: datetime | None


class JobRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job_type: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    rows_written: int
    error: str | None
    message: str | None


class MinerStats(BaseModel):
    jobs: list[JobTypeStatsOut]
    recent: list[JobRunOut]


class UpcomingRun(BaseModel):
    job_type: str
    cron: str
    next_runs: list[datetime]
    description: str


class SignalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    asset_code: str = Field(examples=["USD"])
    as_of: date
    signal: str = Field(examples=["BUY"], description="BUY, HOLD or SELL (text only).")
    macd: float = Field(description="MACD line: fast EMA - slow EMA.")
    signal_line: float = Field(description="EMA of the MACD line.")
    histogram: float = Field(description="MACD line - signal line.")
    horizon_days: int
    periods: dict[str, int] = Field(examples=[{"fast": 12, "slow": 26, "signal": 9}])
    generated_at: datetime


class AnalysisOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    asset_code: str
    window_days: int
    stats: dict[str, Any] = Field(
        description="last, first, change_pct, min, max, mean, volatility (std of daily log "
        "returns, %), trend (up/down/flat), points, from, to, last_crossing."
    )
    generated_at: datetime


class PricePointOut(BaseModel):
    ts: datetime
    price: str = Field(examples=["91000.25"], description="Exact decimal text.")


class PriceWindowOut(BaseModel):
    asset: str = Field(examples=["BTC"])
    quote: str = Field(examples=["USD"])
    window: str = Field(examples=["24h"])
    start: datetime = Field(description="Exclusive: points after it.")
    end: datetime = Field(description="Inclusive: the time of the request.")
    total: int = Field(description="Points in the window before downsampling.")
    points: list[PricePointOut]


class AlertRuleIn(BaseModel):
    """ "Alert when the price moves ``threshold_pct`` % within ``window_minutes``"."""

    asset: str | None = Field(
        None,
        pattern="^[A-Za-z0-9]{2,12}$",
        examples=["BTC"],
        description="The asset; empty: the default rule of every asset without its own.",
    )
    threshold_pct: Decimal = Field(gt=0, le=1000, examples=["5"], description="Move, in %.")
    window_minutes: int = Field(ge=1, le=525_600, examples=[60], description="Over how long.")
    direction: Literal["up", "down", "both"] = "both"
    cooldown_minutes: int = Field(
        60, ge=1, le=525_600, description="Before the same move may fire again."
    )
    enabled: bool = True


class AlertRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    asset: str | None = Field(validation_alias="asset_code")
    threshold_pct: str
    window_minutes: int
    direction: str
    cooldown_minutes: int
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @field_validator("threshold_pct", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        return str(value)


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    asset: str = Field(validation_alias="asset_code")
    rule_id: int
    direction: str
    change_pct: str
    threshold_pct: str
    window_minutes: int
    start_at: datetime
    start_price: str
    end_at: datetime
    end_price: str
    triggered_at: datetime

    @field_validator("change_pct", "threshold_pct", "start_price", "end_price", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        return str(value)
