"""Markets JSON API, mounted at /api/v1/markets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from vigil.core.answers import cached_json
from vigil.core.auth.policy import public, require
from vigil.core.cache import cache_key
from vigil.core.deps import db_session, job_registry, settings_dep
from vigil.core.deps import runtime as runtime_dep
from vigil.core.jobs import JobRegistry, job_type_stats, recent_runs
from vigil.core.modules import module_prefix
from vigil.core.paging import page
from vigil.core.problems import BadRequest, Unavailable
from vigil.core.runtime import Runtime
from vigil.core.scheduling import upcoming_runs
from vigil.markets import alerting, configured_sources, crypto, service
from vigil.markets.analytics.windows import MIN_DOWNSAMPLE_POINTS, parse_window
from vigil.markets.schemas import (
    AlertOut,
    AlertRuleIn,
    AlertRuleOut,
    AnalysisOut,
    AssetCreated,
    AssetIn,
    AssetOut,
    GoldOut,
    JobRunOut,
    JobTypeStatsOut,
    MinerStats,
    Page,
    PricePointOut,
    PriceWindowOut,
    RateOut,
    SignalOut,
    SourceInstanceIn,
    SourceInstanceOut,
    SourceOut,
    UpcomingRun,
)
from vigil.markets.sources import SOURCES, SeriesKind
from vigil.markets.sources.coingecko import CoinGeckoClient
from vigil.settings import Settings

router = APIRouter(prefix=module_prefix("markets"), tags=["markets"])

MAX_LIMIT = 10_000
# Every route declares who may call it: reads are public, changes need markets.write
# (Operator or Admin, or a service token with that scope).
READ = Depends(public)
WRITE = Depends(require("markets.write"))
SessionDep = Annotated[Session, Depends(db_session)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
RuntimeDep = Annotated[Runtime, Depends(runtime_dep)]
FromQ = Annotated[date | None, Query(alias="from", description="First date, YYYY-MM-DD.")]
ToQ = Annotated[date | None, Query(alias="to", description="Last date (inclusive), YYYY-MM-DD.")]
LimitQ = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1..{MAX_LIMIT} (default 1000).")
]
MAX_ID = 2_147_483_647  # ids and offsets past this are refused (422), never a database error
OffsetQ = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip (default 0).")]
CodeQ = Annotated[
    str | None,
    Query(
        pattern="^[A-Za-z]{3}$",
        description="ISO 4217 code, e.g. USD (any case). Omit for every currency.",
    ),
]


def _price_page(
    session: Session,
    asset_ids: list[int],
    start: date | None,
    end: date | None,
    limit: int,
    offset: int,
    value_field: str,
) -> bytes:
    """One page of daily prices as JSON; the value is named as the seed named it
    (``rate_mid`` for currencies, ``price`` for gold) and sent as exact decimal text.

    The database writes the items (see ``service.price_items_json``); the page's other
    fields are put around them here, so the response model stays the documented schema
    without validating 6,000 rows again."""
    items, total = service.price_items_json(
        session, asset_ids, start, end, limit, offset, value_field
    )
    envelope = page([], total, limit, offset)
    del envelope["items"]
    rest = orjson.dumps(envelope)  # {"total":…,"limit":…,"offset":…,"next_offset":…}
    return b'{"items":[' + items.encode() + b"]," + rest[1:]


async def _cached_json(
    request: Request, runtime: Runtime, key: str, produce: Callable[[Session], bytes]
) -> Response:
    ttl = runtime.settings.cache_ttl
    return await cached_json(request, runtime.db, runtime.cache, ttl, key, produce)


@router.get(
    "/sources",
    response_model=list[SourceOut],
    summary="Installed price source plug-ins and their configured instances",
    dependencies=[READ],
)
def list_sources(
    session: SessionDep, settings: Annotated[Settings, Depends(settings_dep)]
) -> list[SourceOut]:
    configured = configured_sources.instances(session)
    return [
        SourceOut(
            name=cls.name,
            title=cls.title,
            kinds=sorted(k.value for k in cls.kinds),
            base_url=str(getattr(settings, cls.base_url_setting, "")),
            max_range_days=cls.max_range_days,
            history_start={k.value: d for k, d in cls.history_start.items()},
            instances=[
                SourceInstanceOut.model_validate(i) for i in configured if i.kind == cls.name
            ],
        )
        for cls in sorted(SOURCES.values(), key=lambda c: c.name)
    ]


@router.post(
    "/sources",
    response_model=SourceInstanceOut,
    status_code=201,
    summary="Configure a source instance: a plug-in with its own base URL, on/off, schedule",
    responses={409: {"description": "The name is taken."}},
    dependencies=[WRITE],
)
def create_source_instance(body: SourceInstanceIn, session: SessionDep) -> SourceInstanceOut:
    new = configured_sources.NewInstance(
        body.name, body.kind, str(body.base_url), body.enabled, body.schedule
    )
    return SourceInstanceOut.model_validate(configured_sources.create(session, new))


@router.delete(
    "/sources/{name}",
    status_code=204,
    summary="Remove a configured source instance",
    dependencies=[WRITE],
)
def delete_source_instance(
    name: Annotated[str, Path(description="The instance's name.")], session: SessionDep
) -> Response:
    configured_sources.delete(session, name)
    return Response(status_code=204)


@router.get(
    "/currencies",
    response_model=Page[AssetOut],
    summary="Currencies with stored rates",
    dependencies=[READ],
)
def list_currencies(
    session: SessionDep, limit: LimitQ = 1000, offset: OffsetQ = 0
) -> Page[AssetOut]:
    items, total = service.list_assets(session, SeriesKind.CURRENCY, limit, offset)
    return Page[AssetOut].model_validate(page(items, total, limit, offset))


KindQ = Annotated[
    SeriesKind | None,
    Query(description="Only assets of this kind (currency, gold, crypto); omit for all."),
]


@router.get(
    "/assets",
    response_model=Page[AssetOut],
    summary="Tracked assets of every kind",
    dependencies=[READ],
)
def list_assets(
    session: SessionDep, kind: KindQ = None, limit: LimitQ = 1000, offset: OffsetQ = 0
) -> Page[AssetOut]:
    items, total = service.list_assets(session, kind, limit, offset)
    return Page[AssetOut].model_validate(page(items, total, limit, offset))


@router.post(
    "/assets",
    response_model=AssetCreated,
    status_code=201,
    summary="Track a crypto asset (checked with the source; its last 24 h loaded)",
    responses={
        409: {"description": "The symbol is taken."},
        422: {"description": "Unknown source, an id the source does not know, bad input."},
        503: {"description": "The source did not answer; nothing was stored."},
    },
    dependencies=[WRITE],
)
def create_asset(body: AssetIn, runtime: RuntimeDep) -> AssetCreated:
    new = crypto.NewAsset(body.symbol, body.source, body.source_ref, body.quote)
    with runtime.db.session() as session:
        source = configured_sources.effective(session, "coingecko", runtime.settings)
    if source.disabled_by:
        raise Unavailable(
            f"source coingecko is switched off (configured source '{source.disabled_by}'): "
            "enable it to add crypto assets"
        )
    with CoinGeckoClient.from_settings(source.settings) as client:
        asset, rows = crypto.add_asset(runtime.db, new, client)
    return AssetCreated(
        code=asset.code,
        name=asset.name,
        kind=asset.kind,
        source=asset.source,
        quote=asset.quote,
        source_ref=asset.source_ref,
        first_date=None,
        last_date=None,
        backfilled_rows=rows,
    )


@router.get(
    "/prices",
    response_model=PriceWindowOut,
    summary="An asset's prices over a recent window, downsampled to at most max_points",
    dependencies=[READ],
)
def price_window(
    session: SessionDep,
    asset: Annotated[
        str, Query(pattern="^[A-Za-z0-9]{2,12}$", description="Asset code: BTC, USD, XAU…")
    ],
    window: Annotated[
        str, Query(description="How far back: 15m, 1h, 24h, 7d, 30d (N minutes/hours/days).")
    ] = "24h",
    max_points: Annotated[
        int,
        Query(ge=MIN_DOWNSAMPLE_POINTS, le=10_000, description="At most this many points."),
    ] = 500,
) -> PriceWindowOut:
    try:
        span = parse_window(window)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    found = service.price_window(session, asset, span, max_points, datetime.now(UTC))
    return PriceWindowOut(
        asset=found.asset.code,
        quote=found.asset.quote,
        window=window,
        start=found.start,
        end=found.end,
        total=found.total,
        points=[PricePointOut(ts=ts, price=str(price)) for ts, price in found.points],
    )


# --- alert rules and alerts ---------------------------------------------------------------

AssetFilterQ = Annotated[
    str | None, Query(pattern="^[A-Za-z0-9]{2,12}$", description="Only this asset's.")
]
RuleIdP = Annotated[int, Path(ge=1, le=MAX_ID, description="The rule's id.")]


def _rule_input(body: AlertRuleIn) -> alerting.RuleInput:
    return alerting.RuleInput(**body.model_dump())


@router.get(
    "/alert-rules",
    response_model=Page[AlertRuleOut],
    summary="Alert rules",
    dependencies=[READ],
)
def list_alert_rules(
    session: SessionDep, asset: AssetFilterQ = None, limit: LimitQ = 1000, offset: OffsetQ = 0
) -> Page[AlertRuleOut]:
    rows, total = alerting.list_rules(session, asset, limit, offset)
    items = [AlertRuleOut.model_validate(r) for r in rows]
    return Page[AlertRuleOut].model_validate(page(items, total, limit, offset))


@router.post(
    "/alert-rules",
    response_model=AlertRuleOut,
    status_code=201,
    summary="Add an alert rule (an asset's own, or the default of every asset)",
    dependencies=[WRITE],
)
def create_alert_rule(body: AlertRuleIn, session: SessionDep) -> AlertRuleOut:
    return AlertRuleOut.model_validate(alerting.create_rule(session, _rule_input(body)))


@router.get(
    "/alert-rules/{rule_id}",
    response_model=AlertRuleOut,
    summary="One alert rule",
    dependencies=[READ],
)
def get_alert_rule(rule_id: RuleIdP, session: SessionDep) -> AlertRuleOut:
    return AlertRuleOut.model_validate(alerting.get_rule(session, rule_id))


@router.put(
    "/alert-rules/{rule_id}",
    response_model=AlertRuleOut,
    summary="Replace an alert rule",
    dependencies=[WRITE],
)
def replace_alert_rule(rule_id: RuleIdP, body: AlertRuleIn, session: SessionDep) -> AlertRuleOut:
    return AlertRuleOut.model_validate(alerting.update_rule(session, rule_id, _rule_input(body)))


@router.delete(
    "/alert-rules/{rule_id}",
    status_code=204,
    summary="Delete an alert rule",
    dependencies=[WRITE],
)
def delete_alert_rule(rule_id: RuleIdP, session: SessionDep) -> Response:
    alerting.delete_rule(session, rule_id)
    return Response(status_code=204)


@router.get(
    "/alerts",
    response_model=Page[AlertOut],
    summary="Fired alerts, newest first",
    dependencies=[READ],
)
def list_alerts(
    session: SessionDep,
    asset: AssetFilterQ = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (default 20).")] = 20,
    offset: OffsetQ = 0,
) -> Page[AlertOut]:
    rows, total = alerting.list_alerts(session, asset, limit, offset)
    items = [AlertOut.model_validate(r) for r in rows]
    return Page[AlertOut].model_validate(page(items, total, limit, offset))


@router.get(
    "/rates",
    response_model=Page[RateOut],
    summary="Daily mid rates (NBP table A)",
    dependencies=[READ],
)
async def list_rates(
    request: Request,
    runtime: RuntimeDep,
    code: CodeQ = None,
    start: FromQ = None,
    end: ToQ = None,
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
) -> Response:
    service.check_range(start, end)

    def produce(session: Session) -> bytes:
        if code is not None:
            asset_ids = [service.get_asset(session, code, SeriesKind.CURRENCY).id]
        else:
            asset_ids = service.asset_ids_of_kind(session, SeriesKind.CURRENCY)
        return _price_page(session, asset_ids, start, end, limit, offset, "rate_mid")

    key = cache_key("rates", code.upper() if code else "all", start, end, limit, offset)
    return await _cached_json(request, runtime, key, produce)


@router.get(
    "/gold",
    response_model=Page[GoldOut],
    summary="Gold prices, PLN per gram",
    dependencies=[READ],
)
async def list_gold(
    request: Request,
    runtime: RuntimeDep,
    start: FromQ = None,
    end: ToQ = None,
    limit: LimitQ = 1000,
    offset: OffsetQ = 0,
) -> Response:
    service.check_range(start, end)

    def produce(session: Session) -> bytes:
        asset_ids = service.asset_ids_of_kind(session, SeriesKind.GOLD)
        return _price_page(session, asset_ids, start, end, limit, offset, "price")

    return await _cached_json(
        request, runtime, cache_key("gold", start, end, limit, offset), produce
    )


@router.get(
    "/stats/miner",
    response_model=MinerStats,
    summary="Miner jobs: runs, rows, failures",
    dependencies=[READ],
)
def miner_stats(
    session: SessionDep,
    recent: Annotated[int, Query(ge=0, le=500, description="Recent runs to list.")] = 20,
) -> MinerStats:
    return MinerStats(
        jobs=[JobTypeStatsOut.model_validate(s) for s in job_type_stats(session, "markets.")],
        recent=[JobRunOut.model_validate(r) for r in recent_runs(session, "markets.", recent)],
    )


@router.get(
    "/stats/upcoming",
    response_model=list[UpcomingRun],
    summary="Next scheduled miner runs",
    dependencies=[READ],
)
def upcoming(
    session: SessionDep,
    registry: Annotated[JobRegistry, Depends(job_registry)],
    settings: Annotated[Settings, Depends(settings_dep)],
    count: Annotated[int, Query(ge=1, le=50, description="Runs to list per job.")] = 3,
) -> list[UpcomingRun]:
    overrides = configured_sources.schedule_overrides(session)
    runs = upcoming_runs(registry, settings, "markets.", count, overrides=overrides)
    return [
        UpcomingRun(job_type=u.job, cron=u.cron, next_runs=u.next_runs, description=u.description)
        for u in runs
    ]


AnyCodeQ = Annotated[
    str | None,
    Query(
        pattern="^[A-Za-z]{3,10}$",
        description="Asset code, e.g. USD or XAU for gold. "
        "Omit for the latest signal of every asset.",
    ),
]


@router.get(
    "/signals",
    response_model=Page[SignalOut],
    summary="MACD signals, newest first",
    dependencies=[READ],
)
async def list_signals(
    request: Request,
    runtime: RuntimeDep,
    code: AnyCodeQ = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (default 100).")] = 100,
    offset: OffsetQ = 0,
) -> Response:
    def produce(session: Session) -> bytes:
        rows, total = service.signal_rows(session, code, limit, offset)
        envelope = page([SignalOut.model_validate(r) for r in rows], total, limit, offset)
        return Page[SignalOut].model_validate(envelope).model_dump_json().encode()

    key = cache_key("signals", code.upper() if code else "all", limit, offset)
    return await _cached_json(request, runtime, key, produce)


@router.get(
    "/analysis",
    response_model=AnalysisOut,
    summary="Latest analysis snapshot",
    dependencies=[READ],
)
def analysis(
    session: SessionDep,
    settings: Annotated[Settings, Depends(settings_dep)],
    code: Annotated[str, Query(pattern="^[A-Za-z]{3,10}$", description="Asset code.")],
) -> AnalysisOut:
    return AnalysisOut.model_validate(
        service.latest_analysis(session, code, settings.analysis_window_days)
    )
