"""Markets tables: one asset table and one price-series table for every source.

The seed's ``currencies``, ``rates`` and ``gold_prices`` tables map onto these: a currency or
gold is an :class:`Asset` (gold is ``XAU``, PLN per gram as NBP publishes it) and each rate or
gold price is a :class:`Price` row keyed by (asset, ts). Daily sources keep their business date
in ``effective_date`` and use 00:00 UTC of that date as ``ts``; intraday sources (crypto, later)
leave ``effective_date`` empty.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, ExactDecimal, UTCDateTime, utcnow


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # currency | gold | crypto
    source: Mapped[str] = mapped_column(String(50))
    #: The source's own id when it differs from ``code`` (CoinGecko's "bitcoin" for BTC).
    source_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    quote: Mapped[str] = mapped_column(String(16), default="PLN")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Price(Base):
    __tablename__ = "prices"

    # No foreign key to assets: its per-row check costs PostgreSQL about a third of the
    # ingest time (measured, docs/BENCHMARKS.md). Rows are only written by the service,
    # which creates the asset first; assets are never deleted while prices remain.
    asset_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    effective_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(50))

    # SQLite: rows clustered by (asset_id, ts), so one asset's series is read sequentially.
    __table_args__ = {"sqlite_with_rowid": False}


class SignalRow(Base):
    """One MACD reading and its recommendation per asset and business date. ``ema_fast`` and
    ``ema_slow`` are the recursion state, so the next days continue exactly without
    recomputing the history; the periods used are kept so a settings change is detected."""

    __tablename__ = "signals"

    asset_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    signal: Mapped[str] = mapped_column(String(4))  # BUY | HOLD | SELL
    macd: Mapped[float] = mapped_column(Float)
    signal_line: Mapped[float] = mapped_column(Float)
    histogram: Mapped[float] = mapped_column(Float)
    ema_fast: Mapped[float] = mapped_column(Float)
    ema_slow: Mapped[float] = mapped_column(Float)
    fast_period: Mapped[int] = mapped_column(Integer)
    slow_period: Mapped[int] = mapped_column(Integer)
    signal_period: Mapped[int] = mapped_column(Integer)
    horizon_days: Mapped[int] = mapped_column(Integer)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}

    @property
    def periods(self) -> dict[str, int]:
        return {"fast": self.fast_period, "slow": self.slow_period, "signal": self.signal_period}


class AnalysisSnapshot(Base):
    """The latest statistics of an asset over a window (see analytics/stats.py)."""

    __tablename__ = "analysis_snapshots"

    asset_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertRuleRow(Base):
    """ "N % in M minutes": ``asset_code`` None is the default rule of every asset that has no
    rule of its own (an asset's own rules replace the defaults)."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_code: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    threshold_pct: Mapped[Decimal] = mapped_column(ExactDecimal())
    window_minutes: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(4))  # up | down | both
    cooldown_minutes: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertRow(Base):
    """One fired alert: the move, the rule that saw it, and when."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_code: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(4))  # up | down
    change_pct: Mapped[Decimal] = mapped_column(ExactDecimal())
    threshold_pct: Mapped[Decimal] = mapped_column(ExactDecimal())
    window_minutes: Mapped[int] = mapped_column(Integer)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    start_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    triggered_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_alerts_asset_code_id", "asset_code", "id"),)


class AlertStateRow(Base):
    """A rule's memory for one asset (armed, last fired), so one long move fires once."""

    __tablename__ = "alert_states"

    asset_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SourceInstance(Base):
    """A configured use of an installed source plug-in (``kind``): its own base URL (a
    mirror, a proxy, a paid endpoint), on or off, and optionally its own schedule."""

    __tablename__ = "source_instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    base_url: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    schedule: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
