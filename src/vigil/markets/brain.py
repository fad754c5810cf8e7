"""The Charon brain: MACD signals and analysis snapshots, stored per asset and day.

Incremental by design: the signals table keeps the EMA recursion state of every day, so new
prices continue from the last stored day instead of recomputing twenty years. A full
recompute happens only for an asset without usable state: nothing stored yet, the MACD
periods changed in the settings, or a price changed inside the warm-up period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, String, Table, cast, delete, func, select
from sqlalchemy.orm import Session

from vigil.core.bulk import bulk_upsert
from vigil.markets.analytics.macd import MacdParams, MacdState, macd, macd_continue
from vigil.markets.analytics.signals import Signal, classify
from vigil.markets.analytics.stats import snapshot
from vigil.markets.models import AnalysisSnapshot, Asset, Price, SignalRow
from vigil.markets.service import asset_span, day_ts
from vigil.settings import Settings

SIGNALS: Table = SignalRow.__table__  # type: ignore[assignment]
# "macd" first: bulk_upsert rewrites a stored day only when that first column changed.
SIGNAL_UPDATE = (
    "macd", "signal_line", "histogram", "signal", "ema_fast", "ema_slow",
    "fast_period", "slow_period", "signal_period", "horizon_days", "generated_at",
)  # fmt: skip
SIGNAL_COLUMNS = ("asset_code", "as_of", *SIGNAL_UPDATE)


@dataclass(frozen=True)
class BrainSettings:
    params: MacdParams
    horizon_days: int
    window_days: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BrainSettings:
        return cls(
            MacdParams(settings.macd_fast, settings.macd_slow, settings.macd_signal),
            settings.signal_horizon_days,
            settings.analysis_window_days,
        )


@dataclass(frozen=True)
class SignalsWritten:
    code: str
    rows: int
    first: date | None
    last: date | None
    latest: Signal | None
    full: bool  # a full recompute (no usable state)


def _same_params(params: MacdParams) -> list[ColumnElement[bool]]:
    return [
        SignalRow.fast_period == params.fast,
        SignalRow.slow_period == params.slow,
        SignalRow.signal_period == params.signal,
    ]


def load_series(
    session: Session, asset_id: int, after: date | None = None, since: date | None = None
) -> tuple[list[date], list[float]]:
    """An asset's daily prices in date order, as floats for the analytics (read as text and
    converted by Python, which rounds correctly on every backend). A daily series (NBP)
    gives its business dates; an intraday one (crypto) its close of each UTC day, i.e. the
    last price of the day so far for today."""
    stmt = select(Price.ts, Price.effective_date, cast(Price.price, String)).where(
        Price.asset_id == asset_id
    )
    if after is not None:
        stmt = stmt.where(Price.ts >= day_ts(after + timedelta(days=1)))
    if since is not None:
        stmt = stmt.where(Price.ts >= day_ts(since))
    closes: dict[date, str] = {}
    for ts, day, price in session.execute(stmt.order_by(Price.ts)):
        closes[day or ts.date()] = price  # in time order: the day's last price stays
    return list(closes), [float(p) for p in closes.values()]


def _state_before(session: Session, code: str, since: date, params: MacdParams) -> SignalRow | None:
    stmt = (
        select(SignalRow)
        .where(SignalRow.asset_code == code, SignalRow.as_of < since, *_same_params(params))
        .order_by(SignalRow.as_of.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def _last_nonzero_histogram(session: Session, code: str, through: date) -> float | None:
    stmt = (
        select(SignalRow.histogram)
        .where(SignalRow.asset_code == code, SignalRow.as_of <= through, SignalRow.histogram != 0)
        .order_by(SignalRow.as_of.desc())
        .limit(1)
    )
    value = session.scalar(stmt)
    return float(value) if value is not None else None


def compute_signals(
    session: Session,
    asset: Asset,
    since: date | None,
    brain: BrainSettings,
    now: datetime | None = None,
) -> SignalsWritten:
    """Brings the signals of ``asset`` up to date for prices from ``since`` on (None: all)."""
    params = brain.params
    now = now or datetime.now(UTC)
    state_row = _state_before(session, asset.code, since, params) if since else None
    if state_row is None:
        dates, values = load_series(session, asset.id)
        series = macd(values, params)
        first_index = params.lookback
        previous_nonzero = None
        session.execute(delete(SignalRow).where(SignalRow.asset_code == asset.code))
    else:
        dates, values = load_series(session, asset.id, after=state_row.as_of)
        state = MacdState(state_row.ema_fast, state_row.ema_slow, state_row.signal_line)
        series = macd_continue(values, state, params)
        first_index = 0
        previous_nonzero = _last_nonzero_histogram(session, asset.code, state_row.as_of)
    if len(dates) <= first_index:
        return SignalsWritten(asset.code, 0, None, None, None, state_row is None)
    histogram = series.histogram[first_index:]
    labels = classify(histogram, previous_nonzero)
    rows = [
        (
            asset.code,
            dates[i],
            float(series.macd[i]),
            float(series.signal[i]),
            float(series.histogram[i]),
            labels[i - first_index].value,
            float(series.ema_fast[i]),
            float(series.ema_slow[i]),
            params.fast,
            params.slow,
            params.signal,
            brain.horizon_days,
            now,
        )
        for i in range(first_index, len(dates))
    ]
    bulk_upsert(
        session,
        SIGNALS,
        SIGNAL_COLUMNS,
        rows,
        key=("asset_code", "as_of"),
        update=SIGNAL_UPDATE,
        keys_are_new=state_row is None,
    )
    return SignalsWritten(
        asset.code, len(rows), dates[first_index], dates[-1], labels[-1], state_row is None
    )


def refresh_snapshot(
    session: Session, asset: Asset, window_days: int, now: datetime | None = None
) -> dict[str, Any] | None:
    """Recomputes the asset's analysis snapshot over the last ``window_days`` days."""
    span = asset_span(session, asset.id)
    if span is None:
        return None
    since = span[1] - timedelta(days=window_days - 1)
    dates, values = load_series(session, asset.id, since=since)
    stored = {
        row.as_of: row
        for row in session.scalars(
            select(SignalRow).where(SignalRow.asset_code == asset.code, SignalRow.as_of >= since)
        )
    }
    histogram = np.array(
        [stored[d].histogram if d in stored else np.nan for d in dates], dtype=np.float64
    )
    labels = [Signal(stored[d].signal) if d in stored else Signal.HOLD for d in dates]
    stats = snapshot(dates, values, histogram, labels)
    row = session.get(AnalysisSnapshot, (asset.code, window_days))
    if row is None:
        session.add(
            AnalysisSnapshot(
                asset_code=asset.code,
                window_days=window_days,
                stats=stats,
                generated_at=now or datetime.now(UTC),
            )
        )
    else:
        row.stats = stats
        row.generated_at = now or datetime.now(UTC)
    session.flush()
    return stats


def stale_assets(session: Session, params: MacdParams) -> dict[str, date | None]:
    """Assets whose newest price is newer than their newest signal (or whose signals were
    made with other periods): code -> the first date to (re)compute, None for everything."""
    out: dict[str, date | None] = {}
    for asset in session.scalars(select(Asset).order_by(Asset.code)):
        span = asset_span(session, asset.id)
        if span is None:
            continue
        newest_price = span[1]
        newest = session.execute(
            select(
                SignalRow.as_of,
                SignalRow.fast_period,
                SignalRow.slow_period,
                SignalRow.signal_period,
            )
            .where(SignalRow.asset_code == asset.code)
            .order_by(SignalRow.as_of.desc())
            .limit(1)
        ).first()
        if newest is None or tuple(newest[1:]) != (params.fast, params.slow, params.signal):
            count = (
                session.scalar(
                    select(func.count()).select_from(Price).where(Price.asset_id == asset.id)
                )
                or 0
            )
            if count > params.lookback:  # enough prices for at least one signal
                out[asset.code] = None
        elif newest_price > newest[0]:
            out[asset.code] = newest[0] + timedelta(days=1)
    return out
