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

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, ExactDecimal, UTCDateTime, utcnow


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # currency | gold (| crypto)
    source: Mapped[str] = mapped_column(String(50))
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
