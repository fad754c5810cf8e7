"""Markets jobs, declared here and registered with core through the module object."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select

from vigil.core.cache import CacheRule, cache_key
from vigil.core.jobs import JobContext, JobResult, JobSpec
from vigil.core.notify import deliver
from vigil.core.queue import Trigger
from vigil.markets import alerting, configured_sources, crypto, miner
from vigil.markets.analytics.signals import Signal
from vigil.markets.brain import BrainSettings, compute_signals, refresh_snapshot, stale_assets
from vigil.markets.models import Asset, Price
from vigil.markets.sources import SeriesKind, SourceError, create_source
from vigil.markets.sources.coingecko import CoinGeckoClient

NBP = "nbp"
COINGECKO = "coingecko"


def _switched_off(source: str, by: str) -> JobResult:
    return JobResult("skipped", 0, f"source {source} is switched off (configured source '{by}')")


SOURCE_FETCH_ERRORS = Counter(
    "vigil_markets_source_fetch_errors_total",
    "Ingest runs that ended on a source error (after the client's retries), by source.",
    ["source"],
)
SOURCE_LAST_SUCCESS = Gauge(
    "vigil_markets_source_last_success_timestamp_seconds",
    "When an ingest from the source last succeeded (unix time), by source.",
    ["source"],
    multiprocess_mode="max",
)


SOURCE_NEWEST_DATA = Gauge(
    "vigil_markets_source_newest_data_timestamp_seconds",
    "The newest day a daily source has data for (unix time of its midnight UTC), by source: "
    "what the 'no new NBP data for 2 business days' alert reads.",
    ["source"],
    multiprocess_mode="max",
)


SIGNAL_NOW = Gauge(
    "vigil_markets_signal",
    "The newest MACD signal of each asset: 1 BUY, 0 HOLD, -1 SELL.",
    ["asset"],
    multiprocess_mode="mostrecent",
)
SIGNAL_VALUES = {Signal.BUY: 1, Signal.HOLD: 0, Signal.SELL: -1}


def _record_newest_day(ctx: JobContext, source: str) -> None:
    with ctx.db.session() as session:
        newest = session.scalar(
            select(func.max(Price.effective_date))
            .join(Asset, Asset.id == Price.asset_id)
            .where(Asset.source == source)
        )
    if newest is not None:
        midnight = datetime.combine(newest, time.min, tzinfo=UTC)
        SOURCE_NEWEST_DATA.labels(source).set(midnight.timestamp())


@contextmanager
def _fetching(source: str) -> Iterator[None]:
    """Counts a source error, or marks the source's last success."""
    try:
        yield
    except SourceError:
        SOURCE_FETCH_ERRORS.labels(source).inc()
        raise
    SOURCE_LAST_SUCCESS.labels(source).set_to_current_time()


# Backfill and sync write the same series: one waits for (skips while) the other.
NBP_INGEST_LOCK = "markets.nbp-ingest"


def _date_param(ctx: JobContext, key: str) -> date | None:
    value = ctx.params.get(key)
    return date.fromisoformat(value) if value else None


def _history_start(ctx: JobContext) -> dict[SeriesKind, date]:
    return {
        SeriesKind.CURRENCY: ctx.settings.nbp_currency_start,
        SeriesKind.GOLD: ctx.settings.nbp_gold_start,
    }


def _mine(
    ctx: JobContext,
    start: date | None,
    end: date | None,
    *,
    resume_only: bool,
    nothing_new: str,
) -> JobResult:
    with ctx.db.session() as session:
        source_config = configured_sources.effective(session, NBP, ctx.settings)
    if source_config.disabled_by:
        return _switched_off(NBP, source_config.disabled_by)
    with _fetching(NBP), create_source(NBP, source_config.settings) as source:
        ranges = miner.plan(
            ctx, source, start, end, resume_only=resume_only, history_start=_history_start(ctx)
        )
        report = miner.ingest(ctx, source, ranges)
    _record_newest_day(ctx, NBP)
    if report.rows == 0:
        return JobResult("skipped", 0, f"{nothing_new}; {report.describe()}")
    return JobResult("ok", report.rows, report.describe())


def backfill(ctx: JobContext) -> JobResult:
    """Loads whatever part of [from, to] (default: the source's whole history) is missing."""
    return _mine(
        ctx,
        _date_param(ctx, "from"),
        _date_param(ctx, "to"),
        resume_only=False,
        nothing_new="history already complete",
    )


def sync(ctx: JobContext) -> JobResult:
    """Fetches from the day after the last stored date to today (fills gaps after downtime)."""
    return _mine(
        ctx,
        None,
        None,
        resume_only=True,
        nothing_new="no new quotes (weekend, holiday or not yet published)",
    )


# --- the telemetry board: crypto prices -------------------------------------------------

PRICES_INGESTED = "prices.ingested"


def crypto_poll(ctx: JobContext) -> JobResult:
    """One tick: the current price of every tracked crypto asset, one batched request per
    quote currency; publishes ``prices.ingested`` per asset that got a price."""
    with ctx.db.session() as session:
        assets = crypto.tracked_assets(session)
    if not assets:
        return JobResult("skipped", 0, "no crypto assets tracked (POST /api/v1/markets/assets)")
    with ctx.db.session() as session:
        source_config = configured_sources.effective(session, COINGECKO, ctx.settings)
    if source_config.disabled_by:
        return _switched_off(COINGECKO, source_config.disabled_by)
    with _fetching(COINGECKO), CoinGeckoClient.from_settings(source_config.settings) as client:
        tick = crypto.fetch_tick(client, assets)
    with ctx.db.session(write=True) as session:
        rows = crypto.store_tick(session, tick)
    ctx.rows_written += rows
    for code, ts in tick.stamps.items():
        stamp = ts.isoformat()
        event = {"type": "crypto", "asset": code, "from": stamp, "to": stamp, "rows": 1}
        ctx.events.publish(PRICES_INGESTED, {**event, "job_id": ctx.job_id})
    missing = f"; no price for {', '.join(tick.missing)}" if tick.missing else ""
    return JobResult("ok", rows, f"{rows} prices for {len(tick.stamps)} assets{missing}")


ALERTS_FIRED = "alerts.fired"


def merge_alert_requests(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"assets": sorted(set(first.get("assets", [])) | set(second.get("assets", [])))}


def alerts(ctx: JobContext) -> JobResult:
    """Evaluates the alert rules of ``params["assets"]`` (the assets an ingest changed);
    publishes ``alerts.fired`` per alert."""
    codes = list(ctx.params.get("assets", []))
    with ctx.db.session(write=True) as session:
        evaluation = alerting.evaluate_assets(session, codes)
        fired = evaluation.fired
        details = [
            {
                "id": a.id,
                "asset": a.asset_code,
                "rule_id": a.rule_id,
                "direction": a.direction,
                "change_pct": str(a.change_pct),
                "window_minutes": a.window_minutes,
                "triggered_at": a.triggered_at.isoformat(),
            }
            for a in fired
        ]
    ctx.rows_written += len(fired)
    for detail in details:
        ctx.events.publish(ALERTS_FIRED, {**detail, "job_id": ctx.job_id})
    if evaluation.checked == 0:
        return JobResult("skipped", 0, f"no alert rule applies to {', '.join(codes) or '-'}")
    if not fired:
        return JobResult("ok", 0, f"{evaluation.checked} rules checked, none fired")
    return JobResult(
        "ok",
        len(fired),
        f"{len(fired)} alerts: "
        + ", ".join(f"{d['asset']} {d['direction']} {d['change_pct']}%" for d in details),
    )


def notify_alerts(ctx: JobContext) -> JobResult:
    """Sends the alerts ``params["alerts"]`` (ids) to every webhook of ``VIGIL_WEBHOOKS``,
    each retried with backoff; fails, naming the webhooks that refused, if any did."""
    targets = ctx.settings.webhooks
    if not targets:
        return JobResult("skipped", 0, "no webhook configured (VIGIL_WEBHOOKS)")
    with ctx.db.session() as session:
        notices = [
            alerting.notice_of(a)
            for a in alerting.alerts_by_id(session, ctx.params.get("alerts", []))
        ]
    deliver(notices, ctx.settings)
    return JobResult("ok", 0, f"{len(notices)} alerts sent to {len(targets)} webhooks")


# --- the brain ------------------------------------------------------------------------------

SIGNALS_UPDATED = "signals.updated"


def _earliest(a: str | None, b: str | None) -> str | None:
    """None means "from the beginning", which covers any date."""
    if a is None or b is None:
        return None
    return min(a, b)


def merge_signal_requests(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two pending `markets.signals` runs become one covering both (per asset, the earlier
    start wins)."""
    assets: dict[str, str | None] = dict(first.get("assets", {}))
    for code, since in second.get("assets", {}).items():
        assets[code] = _earliest(assets[code], since) if code in assets else since
    return {"assets": assets}


def signals(ctx: JobContext) -> JobResult:
    """Recomputes MACD signals (and the analysis snapshot) of the assets in
    ``params["assets"]`` ({code: first changed date or None}), then publishes
    ``signals.updated`` per asset."""
    return _compute_assets(ctx, ctx.params.get("assets", {}))


def _compute_assets(ctx: JobContext, requested: dict[str, str | None]) -> JobResult:
    brain = BrainSettings.from_settings(ctx.settings)
    parts = []
    for code, since in sorted(requested.items()):
        with ctx.db.session(write=True) as session:
            asset = session.scalar(select(Asset).where(Asset.code == code))
            if asset is None:
                parts.append(f"{code}: unknown asset")
                continue
            written = compute_signals(
                session, asset, date.fromisoformat(since) if since else None, brain
            )
            if written.rows:
                refresh_snapshot(session, asset, brain.window_days)
        ctx.rows_written += written.rows
        if written.latest is not None:
            SIGNAL_NOW.labels(code).set(SIGNAL_VALUES[written.latest])
        if written.rows and written.first and written.last:
            ctx.events.publish(
                SIGNALS_UPDATED,
                {
                    "asset": code,
                    "from": written.first.isoformat(),
                    "to": written.last.isoformat(),
                    "rows": written.rows,
                    "signal": written.latest.value if written.latest else None,
                    "job_id": ctx.job_id,
                },
            )
            mode = "full" if written.full else "incremental"
            parts.append(f"{code}: {written.rows} ({mode}, latest {written.latest})")
    if ctx.rows_written == 0:
        return JobResult("skipped", 0, "nothing to compute; " + "; ".join(parts))
    return JobResult("ok", ctx.rows_written, "; ".join(parts))


def signals_watchdog(ctx: JobContext) -> JobResult:
    """Finds assets whose prices are ahead of their signals (an event lost while the bus
    was down, a settings change) and queues `markets.signals` for them."""
    params = BrainSettings.from_settings(ctx.settings).params
    with ctx.db.session() as session:
        stale = stale_assets(session, params)
    if not stale:
        return JobResult("skipped", 0, "every asset's signals are up to date")
    assets = {code: day.isoformat() if day else None for code, day in stale.items()}
    if ctx.enqueue is None:  # no queue in this process: do the work here
        return _compute_assets(ctx, assets)
    ctx.enqueue("markets.signals", {"assets": assets})
    return JobResult("ok", 0, f"queued signals for {', '.join(sorted(stale))}")


TRIGGERS = (
    Trigger(
        topic="rates.ingested",
        job="markets.signals",
        params=lambda event: {"assets": {event["asset"]: event["from"]}},
    ),
    Trigger(  # intraday prices: the signal of the day they fall on
        topic="prices.ingested",
        job="markets.signals",
        params=lambda event: {"assets": {event["asset"]: event["from"][:10]}},
    ),
    Trigger(
        topic="prices.ingested",
        job="markets.alerts",
        params=lambda event: {"assets": [event["asset"]]},
    ),
    Trigger(
        topic="rates.ingested",
        job="markets.alerts",
        params=lambda event: {"assets": [event["asset"]]},
    ),
    Trigger(
        topic=ALERTS_FIRED,
        job="markets.alerts.notify",
        params=lambda event: {"alerts": [event["id"]]},
    ),
)


def _stale_prices(event: dict[str, Any]) -> list[str]:
    if event.get("type") == "gold":
        return [cache_key("gold") + ":"]
    return [cache_key("rates", event["asset"]) + ":", cache_key("rates", "all") + ":"]


def _stale_signals(event: dict[str, Any]) -> list[str]:
    return [cache_key("signals", event["asset"]) + ":", cache_key("signals", "all") + ":"]


CACHE_RULES = (
    CacheRule(topic="rates.ingested", prefixes=_stale_prices),
    CacheRule(topic="signals.updated", prefixes=_stale_signals),
)

JOBS = (
    JobSpec(
        name="markets.backfill",
        func=backfill,
        queue="ingest",
        lock=NBP_INGEST_LOCK,
        run_on_start=True,
        description="Load the full NBP history (currencies since 2002, gold since 2013).",
    ),
    JobSpec(
        name="markets.sync",
        func=sync,
        queue="ingest",
        lock=NBP_INGEST_LOCK,
        schedule="0 * * * *",
        schedule_setting="nbp_sync_cron",
        description="Fetch NBP quotes published since the last stored date.",
    ),
    JobSpec(
        name="markets.crypto.poll",
        func=crypto_poll,
        queue="ingest",
        interval_setting="coingecko_poll_seconds",
        description="Current prices of the tracked crypto assets (CoinGecko).",
    ),
    JobSpec(
        name="markets.alerts",
        func=alerts,
        queue="analytics",
        merge=merge_alert_requests,
        settle_seconds=0.25,  # a tick's events (one per asset) become one run
        max_delay_seconds=5.0,
        description="Evaluate the alert rules of the assets an ingest changed.",
    ),
    JobSpec(
        name="markets.alerts.notify",
        func=notify_alerts,
        queue="analytics",
        merge=lambda a, b: {"alerts": sorted(set(a.get("alerts", [])) | set(b.get("alerts", [])))},
        settle_seconds=0.25,
        max_delay_seconds=5.0,
        description="Send fired alerts to the configured webhooks (generic, Slack, Discord).",
    ),
    JobSpec(
        name="markets.signals",
        func=signals,
        queue="analytics",
        merge=merge_signal_requests,
        # Wait for a pause in the events (or at most 30 s): a full backfill (about 5 s here)
        # is followed by one run instead of runs contending with every chunk.
        settle_seconds=0.25,
        max_delay_seconds=30.0,
        description="MACD signals and analysis for the assets whose prices changed.",
    ),
    JobSpec(
        name="markets.signals.watchdog",
        func=signals_watchdog,
        queue="analytics",
        run_on_start=True,  # signals missing after an upgrade or a settings change
        schedule="15 * * * *",
        schedule_setting="signals_watchdog_cron",
        description="Catch up on assets whose prices are newer than their signals.",
    ),
)
