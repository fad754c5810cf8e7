"""Crypto assets (the telemetry board): adding one, and the price tick.

A crypto asset is an :class:`Asset` of kind ``crypto`` whose ``source_ref`` is the source's
own id (CoinGecko's ``bitcoin`` for ``BTC``) and whose ``quote`` is the currency it is priced
in. Its prices go into the same ``prices`` table as NBP's, keyed by (asset, timestamp), with
no ``effective_date``. Adding an asset checks the id with the source and loads its last 24
hours; the tick asks for every tracked asset's price in one batched request per quote
currency and upserts them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.auth import audit
from vigil.core.bulk import bulk_upsert
from vigil.core.db import Database
from vigil.core.problems import BadRequest, Conflict, Unavailable
from vigil.markets.models import Asset
from vigil.markets.service import PRICES
from vigil.markets.sources.base import SeriesKind, SourceError
from vigil.markets.sources.coingecko import (
    CoinGeckoClient,
    SpotPrices,
    check_coin_id,
    check_vs_currency,
)

CRYPTO_SOURCES = ("coingecko",)
SYMBOL = re.compile(r"^[A-Z0-9]{2,12}$")
BACKFILL_DAYS = 1  # history loaded when an asset is added
ASSET_FIELDS = ("code", "name", "kind", "source", "quote", "source_ref")


@dataclass(frozen=True)
class NewAsset:
    symbol: str
    source: str
    source_ref: str
    quote: str = "usd"


@dataclass(frozen=True)
class PriceRow:
    asset_id: int
    ts: datetime
    price: Decimal


def store_prices(session: Session, rows: Sequence[PriceRow], source: str, now: datetime) -> int:
    """Upserts intraday price rows on (asset, ts); returns how many distinct rows."""
    unique = {(r.asset_id, r.ts): r for r in rows}  # a key once per statement
    bulk_upsert(
        session,
        PRICES,
        ("asset_id", "ts", "effective_date", "price", "fetched_at", "source"),
        [(r.asset_id, r.ts, None, r.price, now, source) for r in unique.values()],
        key=("asset_id", "ts"),
        update=("price", "fetched_at", "source"),
    )
    return len(unique)


def _checked(new: NewAsset) -> NewAsset:
    symbol = new.symbol.strip().upper()
    if not SYMBOL.match(symbol):
        raise BadRequest(
            f"symbol {new.symbol!r} is not valid: use 2-12 letters or digits, e.g. BTC"
        )
    if new.source not in CRYPTO_SOURCES:
        raise BadRequest(
            f"unknown source {new.source!r} for a crypto asset; installed: "
            + ", ".join(CRYPTO_SOURCES)
        )
    try:
        return NewAsset(
            symbol, new.source, check_coin_id(new.source_ref), check_vs_currency(new.quote)
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _refuse_taken(session: Session, symbol: str) -> None:
    if session.scalar(select(Asset.id).where(Asset.code == symbol)) is not None:
        raise Conflict(f"an asset with symbol {symbol} exists already; pick another symbol")


def add_asset(
    db: Database, new: NewAsset, client: CoinGeckoClient, now: datetime | None = None
) -> tuple[Asset, int]:
    """Creates the asset after checking it with the source, and stores its recent history.
    Returns the asset and the number of price rows stored. Raises a 4xx problem for input
    the source or this database refuses, a 503 when the source does not answer; nothing is
    written then. No transaction is held open while the source is asked."""
    now = now or datetime.now(UTC)
    new = _checked(new)
    with db.session() as session:
        _refuse_taken(session, new.symbol)  # before spending requests on it
    try:
        if not client.coin_exists(new.source_ref, new.quote):
            raise BadRequest(
                f"CoinGecko has no price for coin id {new.source_ref!r} in {new.quote!r}: use "
                "CoinGecko's API id (e.g. 'bitcoin', 'ethereum'), not the ticker, and a quote "
                "currency it supports (e.g. 'usd')"
            )
        points = client.market_chart(new.source_ref, new.quote, days=BACKFILL_DAYS)
    except SourceError as exc:
        raise Unavailable(f"CoinGecko did not answer ({exc}); try again later") from None
    with db.session(write=True) as session:
        _refuse_taken(session, new.symbol)  # someone may have been quicker meanwhile
        asset = Asset(
            code=new.symbol,
            name=new.source_ref,
            kind=SeriesKind.CRYPTO.value,
            source=new.source,
            quote=new.quote.upper(),
            source_ref=new.source_ref,
            created_at=now,
        )
        session.add(asset)
        session.flush()
        audit.record(
            session,
            "create",
            "markets.asset",
            asset.code,
            after=audit.snapshot(asset, ASSET_FIELDS),
        )
        rows = [PriceRow(asset.id, p.ts, p.price) for p in points]
        stored = store_prices(session, rows, new.source, now)
    return asset, stored


@dataclass(frozen=True)
class Tracked:
    """What the tick needs of an asset, read before the request (no session held open
    across the network call)."""

    asset_id: int
    code: str
    quote: str
    ref: str


@dataclass(frozen=True)
class Tick:
    rows: list[PriceRow]
    stamps: dict[str, datetime]  # code -> the price's time
    missing: list[str]  # codes the source gave no price for


def tracked_assets(session: Session, source: str = "coingecko") -> list[Tracked]:
    stmt = select(Asset).where(Asset.kind == SeriesKind.CRYPTO.value, Asset.source == source)
    return [
        Tracked(a.id, a.code, a.quote.lower(), a.source_ref or a.code.lower())
        for a in session.scalars(stmt.order_by(Asset.code))
    ]


def fetch_tick(
    client: CoinGeckoClient, assets: Sequence[Tracked], now: datetime | None = None
) -> Tick:
    """The current price of ``assets``: one batched request per quote currency. Each price
    is stamped with CoinGecko's own update time, so asking twice within it stores one row."""
    now = now or datetime.now(UTC)
    by_quote: dict[str, list[Tracked]] = defaultdict(list)
    for asset in assets:
        by_quote[asset.quote].append(asset)
    ticks = [
        tick_of(client.simple_price([a.ref for a in group], quote), group, now)
        for quote, group in by_quote.items()
    ]
    return Tick(
        [row for t in ticks for row in t.rows],
        {code: ts for t in ticks for code, ts in t.stamps.items()},
        [code for t in ticks for code in t.missing],
    )


def tick_of(answer: SpotPrices, group: Sequence[Tracked], now: datetime) -> Tick:
    """Price rows of ``group`` (assets of one quote currency) from one answer; each stamped
    with CoinGecko's own update time (``now`` when it gave none)."""
    by_ref = answer.by_id()
    rows: list[PriceRow] = []
    stamps: dict[str, datetime] = {}
    missing: list[str] = []
    for asset in group:
        spot = by_ref.get(asset.ref)
        if spot is None:
            missing.append(asset.code)
            continue
        ts = spot.last_updated or now
        rows.append(PriceRow(asset.asset_id, ts, spot.price))
        stamps[asset.code] = ts
    return Tick(rows, stamps, missing)


def store_tick(session: Session, tick: Tick, now: datetime | None = None) -> int:
    return store_prices(session, tick.rows, "coingecko", now or datetime.now(UTC))
