"""Writing prices: idempotent upserts, exact decimals, corrections, coverage (both backends)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.core.bulk import bulk_upsert
from vigil.markets import service
from vigil.markets.models import Asset, Price
from vigil.markets.sources.base import Quote, SeriesKind

CUR = SeriesKind.CURRENCY


def q(code: str, day: date, value: str) -> Quote:
    return Quote(code, f"name of {code}", day, Decimal(value))


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Price)) or 0


def test_store_then_store_again_writes_nothing_new(session: Session) -> None:
    quotes = [
        q("USD", date(2024, 1, 2), "3.9432"),
        q("EUR", date(2024, 1, 2), "4.3434"),
        q("USD", date(2024, 1, 3), "3.9909"),
    ]
    written = service.store_quotes(session, quotes, CUR, "nbp")
    assert [(w.code, w.first, w.last, w.rows) for w in written] == [
        ("EUR", date(2024, 1, 2), date(2024, 1, 2), 1),
        ("USD", date(2024, 1, 2), date(2024, 1, 3), 2),
    ]
    assert count(session) == 3
    assert service.store_quotes(session, quotes, CUR, "nbp") == []
    assert count(session) == 3


def test_decimals_round_trip_exactly_with_their_scale(session: Session) -> None:
    values = ["0.011520", "0.00030347", "5.1230", "123456789.123456789"]
    quotes = [q(f"C{i:02d}"[:3], date(2024, 1, 2), v) for i, v in enumerate(values)]
    service.store_quotes(session, quotes, CUR, "nbp")
    session.expire_all()
    stored = dict(
        session.execute(
            select(Asset.code, Price.price).join(Price, Price.asset_id == Asset.id)
        ).all()
    )
    for quote in quotes:
        assert isinstance(stored[quote.code], Decimal)
        assert stored[quote.code] == quote.value
        assert str(stored[quote.code]) == str(quote.value)


def test_a_corrected_value_replaces_the_old_one(session: Session) -> None:
    service.store_quotes(session, [q("USD", date(2024, 1, 2), "3.9432")], CUR, "nbp")
    written = service.store_quotes(session, [q("USD", date(2024, 1, 2), "3.9500")], CUR, "nbp")
    assert [(w.code, w.rows) for w in written] == [("USD", 1)]
    assert session.scalar(select(Price.price)) == Decimal("3.9500")
    assert count(session) == 1


def test_a_quote_repeated_within_one_reply_is_stored_once(session: Session) -> None:
    quotes = [q("USD", date(2024, 1, 2), "3.9"), q("USD", date(2024, 1, 2), "3.8")]
    service.store_quotes(session, quotes, CUR, "nbp")
    assert count(session) == 1
    assert session.scalar(select(Price.price)) == Decimal("3.8")


def test_rows_carry_the_business_date_and_utc_midnight(session: Session) -> None:
    fetched = datetime(2024, 1, 2, 11, 45, tzinfo=UTC)
    service.store_quotes(session, [q("USD", date(2024, 1, 2), "3.9")], CUR, "nbp", fetched)
    row = session.scalars(select(Price)).one()
    assert row.effective_date == date(2024, 1, 2)
    assert row.ts == datetime(2024, 1, 2, tzinfo=UTC)
    assert row.fetched_at == fetched
    assert row.fetched_at.tzinfo is not None
    asset = session.scalars(select(Asset)).one()
    assert (asset.code, asset.kind, asset.source, asset.quote) == ("USD", "currency", "nbp", "PLN")


def test_stored_span_covers_all_assets_of_a_kind(session: Session) -> None:
    assert service.stored_span(session, CUR) is None
    service.store_quotes(
        session,
        [q("USD", date(2024, 1, 2), "3.9"), q("HRK", date(2022, 12, 30), "0.6")],
        CUR,
        "nbp",
    )
    service.store_quotes(
        session, [Quote("XAU", "gold", date(2025, 1, 2), Decimal("300"))], SeriesKind.GOLD, "nbp"
    )
    assert service.stored_span(session, CUR) == (date(2022, 12, 30), date(2024, 1, 2))
    assert service.stored_span(session, SeriesKind.GOLD) == (date(2025, 1, 2), date(2025, 1, 2))


def test_bulk_upsert_told_keys_are_new_still_merges_when_they_are_not(session: Session) -> None:
    """The COPY fast path (PostgreSQL) falls back to the merge if a key exists after all."""
    service.store_quotes(session, [q("USD", date(2024, 1, 2), "3.9")], CUR, "nbp")
    (asset_id,) = session.scalars(select(Asset.id)).all()
    now = datetime(2024, 1, 3, tzinfo=UTC)
    rows = [
        (asset_id, service.day_ts(date(2024, 1, 2)), date(2024, 1, 2), Decimal("3.95"), now, "x"),
        (asset_id, service.day_ts(date(2024, 1, 3)), date(2024, 1, 3), Decimal("4.01"), now, "x"),
    ]
    bulk_upsert(
        session,
        service.PRICES,
        ("asset_id", "ts", "effective_date", "price", "fetched_at", "source"),
        rows,
        key=("asset_id", "ts"),
        update=("price", "fetched_at", "source"),
        keys_are_new=True,
    )
    prices = dict(session.execute(select(Price.effective_date, Price.price)).all())
    assert prices == {date(2024, 1, 2): Decimal("3.95"), date(2024, 1, 3): Decimal("4.01")}


def test_bulk_upsert_copy_escapes_text(session: Session) -> None:
    """Tabs, newlines and backslashes in text survive the COPY text format."""
    now = datetime(2024, 1, 3, tzinfo=UTC)
    odd = "we\tird\\name\nx"
    bulk_upsert(
        session,
        service.PRICES,
        ("asset_id", "ts", "effective_date", "price", "fetched_at", "source"),
        [(99, service.day_ts(date(2024, 1, 2)), None, Decimal("1.5"), now, odd)],
        key=("asset_id", "ts"),
        update=("price", "fetched_at", "source"),
        keys_are_new=True,
    )
    row = session.execute(select(Price.source, Price.effective_date, Price.fetched_at)).one()
    assert tuple(row) == (odd, None, now)
