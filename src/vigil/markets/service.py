"""Markets operations. The API, the CLI and the jobs call only this; it flushes, the caller
commits (one transaction per request or per ingested chunk)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, String, Table, cast, func, literal, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from vigil.core.bulk import bulk_upsert
from vigil.core.problems import BadRequest, NotFound
from vigil.markets.analytics.windows import downsample
from vigil.markets.models import AnalysisSnapshot, Asset, Price, SignalRow
from vigil.markets.sources.base import Quote, SeriesKind

PRICES: Table = Price.__table__  # type: ignore[assignment]
ASSETS: Table = Asset.__table__  # type: ignore[assignment]


@lru_cache(maxsize=16384)
def day_ts(day: date) -> datetime:
    """The series timestamp of a daily quote: 00:00 UTC of its business date."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are implemented for PostgreSQL and SQLite, not {dialect}")


# --- writing --------------------------------------------------------------------------------


def ensure_assets(
    session: Session, quotes: Iterable[Quote], kind: SeriesKind, source: str
) -> dict[str, int]:
    """Creates the assets these quotes name (first seen wins the name); returns code -> id."""
    names: dict[str, str] = {}
    for quote in quotes:
        names.setdefault(quote.code, quote.name)
    if not names:
        return {}
    by_code = select(Asset.code, Asset.id)
    known = dict(session.execute(by_code.where(Asset.code.in_(names))).all())
    missing = [code for code in names if code not in known]
    if missing:
        stmt = _insert(session, ASSETS).on_conflict_do_nothing(index_elements=["code"])
        session.execute(
            stmt,
            [
                {
                    "code": code,
                    "name": names[code],
                    "kind": kind.value,
                    "source": source,
                    "quote": "PLN",
                    "created_at": datetime.now(UTC),
                }
                for code in missing
            ],
        )
        known.update(session.execute(by_code.where(Asset.code.in_(missing))).all())
    return known


@dataclass(frozen=True)
class WrittenRange:
    """What one store call wrote for one asset: the payload of a ``rates.ingested`` event."""

    code: str
    first: date
    last: date
    rows: int


def store_quotes(
    session: Session,
    quotes: Sequence[Quote],
    kind: SeriesKind,
    source: str,
    fetched_at: datetime | None = None,
) -> list[WrittenRange]:
    """Upserts daily quotes on (asset, ts). A repeated quote with the same value writes
    nothing; a corrected value replaces the old one. Returns what was written, per asset."""
    if not quotes:
        return []
    ids = ensure_assets(session, quotes, kind, source)
    fetched_at = fetched_at or datetime.now(UTC)
    # What is stored already in this date range, so only new or corrected rows are sent and
    # the events say exactly what changed.
    first = min(q.effective_date for q in quotes)
    last = max(q.effective_date for q in quotes)
    stored = {
        (asset_id, day): price
        for asset_id, day, price in session.execute(
            select(Price.asset_id, Price.effective_date, Price.price).where(
                Price.asset_id.in_(ids.values()),
                Price.ts >= day_ts(first),
                Price.ts < day_ts(last + timedelta(days=1)),
            )
        )
    }
    fresh: dict[tuple[int, date], Quote] = {}
    for q in quotes:
        key = (ids[q.code], q.effective_date)
        if stored.get(key) != q.value:
            fresh[key] = q  # a source repeating itself within one reply: the last one wins
    bulk_upsert(
        session,
        PRICES,
        ("asset_id", "ts", "effective_date", "price", "fetched_at", "source"),
        [
            (asset_id, day_ts(day), day, q.value, fetched_at, source)
            for (asset_id, day), q in fresh.items()
        ],
        key=("asset_id", "ts"),
        update=("price", "fetched_at", "source"),
        keys_are_new=not stored,
    )
    by_code: dict[str, list[date]] = {}
    for q in fresh.values():
        by_code.setdefault(q.code, []).append(q.effective_date)
    return [
        WrittenRange(code, min(days), max(days), len(days))
        for code, days in sorted(by_code.items())
    ]


# --- coverage -------------------------------------------------------------------------------


def asset_span(session: Session, asset_id: int) -> tuple[date, date] | None:
    """First and last stored day of one asset (None without prices): two lookups on the
    (asset_id, ts) primary key, whatever the length of the series."""
    by_asset = select(Price.ts).where(Price.asset_id == asset_id).limit(1)
    first = session.scalar(by_asset.order_by(Price.ts.asc()))
    last = session.scalar(by_asset.order_by(Price.ts.desc()))
    if first is None or last is None:
        return None
    return first.date(), last.date()


def stored_span(session: Session, kind: SeriesKind) -> tuple[date, date] | None:
    """First and last stored business date over every asset of ``kind`` (None when empty)."""
    asset_ids = session.scalars(select(Asset.id).where(Asset.kind == kind.value)).all()
    spans = [span for asset_id in asset_ids if (span := asset_span(session, asset_id))]
    if not spans:
        return None
    return min(first for first, _ in spans), max(last for _, last in spans)


def missing_ranges(
    span: tuple[date, date] | None, start: date, end: date
) -> list[tuple[date, date]]:
    """The parts of [start, end] outside the stored span. Writes are one transaction per
    chunk in date order, so the stored data is contiguous and only its ends can be missing."""
    if start > end:
        return []
    if span is None:
        return [(start, end)]
    first, last = span
    ranges = []
    if start < first:
        ranges.append((start, min(end, first - timedelta(days=1))))
    if end > last:
        ranges.append((max(start, last + timedelta(days=1)), end))
    return ranges


# --- reading --------------------------------------------------------------------------------


def get_asset(session: Session, code: str, kind: SeriesKind | None = None) -> Asset:
    stmt = select(Asset).where(Asset.code == code.upper())
    if kind is not None:
        stmt = stmt.where(Asset.kind == kind.value)
    asset = session.scalar(stmt)
    if asset is None:
        known_stmt = select(Asset.code).order_by(Asset.code)
        if kind is not None:
            known_stmt = known_stmt.where(Asset.kind == kind.value)
        known = session.scalars(known_stmt).all()
        hint = f"Known codes: {', '.join(known)}." if known else "No data has been loaded yet."
        what = "currency" if kind is SeriesKind.CURRENCY else "asset"
        raise NotFound(f"Unknown {what} code {code.upper()!r}. {hint}", code=code.upper())
    return asset


def list_assets(
    session: Session, kind: SeriesKind | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    stmt = select(Asset)
    count_stmt = select(func.count()).select_from(Asset)
    if kind is not None:
        stmt = stmt.where(Asset.kind == kind.value)
        count_stmt = count_stmt.where(Asset.kind == kind.value)
    total = session.scalar(count_stmt) or 0
    assets = session.scalars(stmt.order_by(Asset.code).limit(limit).offset(offset)).all()
    items = []
    for asset in assets:
        first, last = asset_span(session, asset.id) or (None, None)
        items.append(
            {
                "code": asset.code,
                "name": asset.name,
                "kind": asset.kind,
                "source": asset.source,
                "quote": asset.quote,
                "source_ref": asset.source_ref,
                "first_date": first,
                "last_date": last,
            }
        )
    return items, total


def check_range(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise BadRequest(
            f"'from' ({start}) is after 'to' ({end}); send from <= to, e.g. from={end}&to={start}."
        )


def _utc_iso_text(column: Any, dialect: str) -> Any:
    """SQL for a UTC timestamp column as ISO 8601 text with microseconds and ``Z``, made by
    the database: formatting 6,000 datetimes in Python was a third of the rates query."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    # SQLite keeps SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff", in UTC (see core.db).
    return func.replace(type_coerce(column, String), " ", "T").concat("Z")


def _json_string(expression: Any, dialect: str) -> Any:
    """SQL for a text expression as a JSON string literal (quoted and escaped)."""
    if dialect == "postgresql":
        return cast(func.to_json(expression), String)
    return func.json_quote(expression)


def price_items_json(
    session: Session,
    asset_ids: Sequence[int],
    start: date | None,
    end: date | None,
    limit: int,
    offset: int,
    value_field: str,
) -> tuple[str, int]:
    """One page of prices in date order as the text of a JSON array's items (objects with
    ``code``, ``effective_date``, ``value_field``, ``fetched_at``, ``source``; compact, as
    orjson writes them), and the total count.

    The database writes the JSON and hands back one string: a currency's whole history is
    6,000+ rows and this is the API's hot path. Fetched row by row, the rows cost more in
    Python than the query (and under concurrency each row's step through the driver waited
    for the interpreter lock). Prices keep their exact text (NUMERIC's own on PostgreSQL,
    the stored text on SQLite)."""
    dialect = session.get_bind().dialect.name
    conditions: list[ColumnElement[bool]] = [Price.asset_id.in_(asset_ids)]
    if start is not None:
        conditions.append(Price.ts >= day_ts(start))
    if end is not None:
        conditions.append(Price.ts < day_ts(end + timedelta(days=1)))
    # One asset: its primary key (asset_id, ts) already gives the order, no sort needed.
    order = (Price.ts,) if len(asset_ids) == 1 else (Price.ts, Asset.code)
    page = (
        select(
            Price.ts,
            Asset.code,
            cast(Price.effective_date, String).label("day"),
            cast(Price.price, String).label("price"),
            _utc_iso_text(Price.fetched_at, dialect).label("fetched"),
            Price.source,
        )
        .join(Asset, Asset.id == Price.asset_id)
        .where(*conditions)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    # Dates, prices and timestamps are digits and punctuation: quoting them is enough.
    item = (
        literal('{"code":')
        + _json_string(page.c.code, dialect)
        + literal(',"effective_date":"')
        + page.c.day
        + literal(f'","{value_field}":"')
        + page.c.price
        + literal('","fetched_at":"')
        + page.c.fetched
        + literal('","source":')
        + _json_string(page.c.source, dialect)
        + literal("}")
    )
    if dialect == "postgresql":
        items = func.string_agg(item, aggregate_order_by(literal(","), page.c.ts, page.c.code))
    else:
        # SQLite (before 3.44) has no ORDER BY in aggregates; it concatenates in the order
        # the subquery (LIMIT keeps it a subquery, not flattened) produces its rows.
        items = func.group_concat(item, ",")
    text, rows = session.connection().execute(select(items, func.count())).one()
    if rows < limit and (rows > 0 or offset == 0):
        total = offset + rows  # the page reached the end: no need to count
    else:
        total = session.scalar(select(func.count()).select_from(Price).where(*conditions)) or 0
    return text or "", total


@dataclass(frozen=True)
class PriceWindow:
    asset: Asset
    start: datetime
    end: datetime
    total: int  # points in the window before downsampling
    points: list[tuple[datetime, Decimal]]


def price_window(
    session: Session, code: str, window: timedelta, max_points: int, now: datetime
) -> PriceWindow:
    """An asset's prices in (now - window, now], oldest first, downsampled to at most
    ``max_points`` (the shape kept: see ``analytics.windows.downsample``)."""
    asset = get_asset(session, code)
    start = now - window
    stmt = (
        select(Price.ts, Price.price)
        .where(Price.asset_id == asset.id, Price.ts > start, Price.ts <= now)
        .order_by(Price.ts)
    )
    points = [(ts, Decimal(price)) for ts, price in session.execute(stmt)]
    return PriceWindow(asset, start, now, len(points), downsample(points, max_points))


def daily_values(session: Session, asset_id: int) -> tuple[list[date], list[float]]:
    """A daily (NBP) series in date order as floats: its business dates, not the instants,
    which is several times cheaper to read than whole rows (the dashboards read the full
    history on every page)."""
    stmt = (
        select(Price.effective_date, cast(Price.price, String))
        .where(Price.asset_id == asset_id, Price.effective_date.is_not(None))
        .order_by(Price.ts)
    )
    days: list[date] = []
    values: list[float] = []
    for day, price in session.execute(stmt):
        days.append(day)  # type: ignore[arg-type]  # (the query keeps dated rows only)
        values.append(float(price))
    return days, values


def series_stamp(session: Session, asset_id: int) -> tuple[Any, ...]:
    """What changes whenever an asset's stored prices do: rows, newest instant and newest
    fetch (a corrected price keeps its instant but gets a new fetch time). One query over
    the asset's primary-key range."""
    stmt = select(
        func.count(), func.max(Price.ts), type_coerce(func.max(Price.fetched_at), String)
    ).where(Price.asset_id == asset_id)
    return tuple(session.execute(stmt).one())


def assets_of_kind(session: Session, kind: SeriesKind) -> list[Asset]:
    return list(session.scalars(select(Asset).where(Asset.kind == kind.value).order_by(Asset.code)))


def asset_ids_of_kind(session: Session, kind: SeriesKind) -> list[int]:
    return list(session.scalars(select(Asset.id).where(Asset.kind == kind.value)))


def signal_rows(
    session: Session, code: str | None, limit: int, offset: int
) -> tuple[list[SignalRow], int]:
    """Signals of one asset, newest first; without a code, the latest signal of each asset."""
    if code is not None:
        asset = get_asset(session, code)
        condition = SignalRow.asset_code == asset.code
        total = session.scalar(select(func.count()).select_from(SignalRow).where(condition)) or 0
        stmt = select(SignalRow).where(condition).order_by(SignalRow.as_of.desc())
    else:
        latest = (
            select(SignalRow.asset_code, func.max(SignalRow.as_of).label("as_of"))
            .group_by(SignalRow.asset_code)
            .subquery()
        )
        total = session.scalar(select(func.count()).select_from(latest)) or 0
        stmt = (
            select(SignalRow)
            .join(
                latest,
                (SignalRow.asset_code == latest.c.asset_code) & (SignalRow.as_of == latest.c.as_of),
            )
            .order_by(SignalRow.asset_code)
        )
    return list(session.scalars(stmt.limit(limit).offset(offset))), total


def latest_analysis(session: Session, code: str, window_days: int) -> AnalysisSnapshot:
    asset = get_asset(session, code)
    row = session.get(AnalysisSnapshot, (asset.code, window_days))
    if row is None:
        raise NotFound(
            f"No analysis of {asset.code} over {window_days} days yet: it is computed with the "
            "signals, once the asset has enough prices (see /stats/miner for the jobs).",
            code=asset.code,
        )
    return row
