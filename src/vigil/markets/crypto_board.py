"""What the crypto board shows: the tracked crypto assets with their last price, 24 h change
and the last 24 h as a sparkline; one asset's prices over a window; fired alerts (newest
first) and the alert rules. Reads through the markets services; writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.web.charts import sparkline_points
from vigil.markets import alerting, service
from vigil.markets.models import AlertRow, AlertRuleRow, Asset, Price
from vigil.markets.service import PriceWindow
from vigil.markets.sources import SeriesKind

#: The chart's window choices: value -> label.
WINDOWS = {"1h": "1 hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days"}
WINDOW_SPANS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW = "24h"
DAY = timedelta(hours=24)
SPARK_POINTS = 48  # per sparkline: plenty for 120 px
CHART_POINTS = 500
ALERTS_SHOWN = 20
RULES_SHOWN = 500


@dataclass(frozen=True)
class AssetLine:
    asset: Asset
    last_at: datetime | None
    last_price: Decimal | None
    change_pct: float | None  # over the last 24 h
    spark: str  # SVG polyline points of the last 24 h ("" for fewer than 2 prices)
    spark_count: int


@dataclass(frozen=True)
class CryptoBoard:
    assets: list[AssetLine]
    code: str | None  # the charted asset
    window: str
    chart: PriceWindow | None
    alerts: list[AlertRow]  # newest first
    alerts_total: int
    rules: list[AlertRuleRow]
    now: datetime

    @property
    def codes(self) -> list[str]:
        return [line.asset.code for line in self.assets]


def _price_at(session: Session, asset_id: int, where: Any) -> tuple[datetime, Decimal] | None:
    """The newest price matching ``where`` (one indexed lookup)."""
    stmt = select(Price.ts, Price.price).where(Price.asset_id == asset_id, where)
    row = session.execute(stmt.order_by(Price.ts.desc()).limit(1)).first()
    return (row[0], Decimal(row[1])) if row is not None else None


def asset_line(session: Session, asset: Asset, now: datetime) -> AssetLine:
    day = service.price_window(session, asset.code, DAY, SPARK_POINTS, now)
    last = _price_at(session, asset.id, Price.ts <= now)
    # The change over 24 h: from the last price at or before a day ago, else (an asset added
    # less than a day ago) from the first price of the day.
    start = _price_at(session, asset.id, Price.ts <= now - DAY) or (
        day.points[0] if day.points else None
    )
    change = None
    if last is not None and start is not None and start[0] < last[0] and start[1] != 0:
        change = float((last[1] / start[1] - 1) * 100)
    values = [float(p) for _, p in day.points]
    return AssetLine(
        asset=asset,
        last_at=last[0] if last else None,
        last_price=last[1] if last else None,
        change_pct=change,
        spark=sparkline_points(values),
        spark_count=len(values),
    )


def crypto_board(session: Session, code: str | None, window: str, now: datetime) -> CryptoBoard:
    """``code`` must be a tracked crypto asset or None (the first one is charted)."""
    assets = service.assets_of_kind(session, SeriesKind.CRYPTO)
    if code is None and assets:
        code = assets[0].code
    chart = None
    if code is not None:
        chart = service.price_window(session, code, WINDOW_SPANS[window], CHART_POINTS, now)
    alerts, alerts_total = alerting.list_alerts(session, None, ALERTS_SHOWN, 0)
    rules, _ = alerting.list_rules(session, None, RULES_SHOWN, 0)
    return CryptoBoard(
        assets=[asset_line(session, a, now) for a in assets],
        code=code,
        window=window,
        chart=chart,
        alerts=alerts,
        alerts_total=alerts_total,
        rules=rules,
        now=now,
    )
