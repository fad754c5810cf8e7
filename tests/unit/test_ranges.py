"""Date arithmetic of the miner: chunking and which ranges are missing."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from vigil.markets.service import missing_ranges
from vigil.markets.sources.base import date_chunks


@pytest.mark.parametrize(
    ("start", "end", "size", "expected"),
    [
        (date(2024, 1, 1), date(2024, 1, 1), 93, [(date(2024, 1, 1), date(2024, 1, 1))]),
        (
            date(2024, 1, 1),
            date(2024, 4, 2),
            93,
            [(date(2024, 1, 1), date(2024, 4, 2))],
        ),  # exactly 93 days
        (
            date(2024, 1, 1),
            date(2024, 4, 3),
            93,
            [(date(2024, 1, 1), date(2024, 4, 2)), (date(2024, 4, 3), date(2024, 4, 3))],
        ),
        (date(2024, 1, 2), date(2024, 1, 1), 93, []),
    ],
)
def test_date_chunks_edges(
    start: date, end: date, size: int, expected: list[tuple[date, date]]
) -> None:
    assert list(date_chunks(start, end, size)) == expected


def test_date_chunks_cover_every_day_once() -> None:
    rng = random.Random(7)
    for _ in range(300):
        start = date(2002, 1, 2) + timedelta(days=rng.randrange(9000))
        end = start + timedelta(days=rng.randrange(-5, 2000))
        size = rng.choice([1, 2, 31, 93, 367])
        chunks = list(date_chunks(start, end, size))
        days = [a + timedelta(days=i) for a, b in chunks for i in range((b - a).days + 1)]
        expected = [start + timedelta(days=i) for i in range(max(0, (end - start).days + 1))]
        assert days == expected
        assert all((b - a).days < size for a, b in chunks)


def test_date_chunks_rejects_empty_size() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(date_chunks(date(2024, 1, 1), date(2024, 1, 2), 0))


D = date


@pytest.mark.parametrize(
    ("span", "start", "end", "expected"),
    [
        (None, D(2002, 1, 2), D(2002, 2, 1), [(D(2002, 1, 2), D(2002, 2, 1))]),
        ((D(2010, 1, 1), D(2020, 1, 1)), D(2012, 1, 1), D(2019, 1, 1), []),
        (
            (D(2010, 1, 1), D(2020, 1, 1)),
            D(2002, 1, 2),
            D(2024, 1, 1),
            [(D(2002, 1, 2), D(2009, 12, 31)), (D(2020, 1, 2), D(2024, 1, 1))],
        ),
        (
            (D(2010, 1, 1), D(2020, 1, 1)),
            D(2002, 1, 2),
            D(2005, 1, 1),
            [(D(2002, 1, 2), D(2005, 1, 1))],
        ),
        (
            (D(2010, 1, 1), D(2020, 1, 1)),
            D(2021, 1, 1),
            D(2022, 1, 1),
            [(D(2021, 1, 1), D(2022, 1, 1))],
        ),
        ((D(2010, 1, 1), D(2020, 1, 1)), D(2022, 1, 1), D(2021, 1, 1), []),
    ],
)
def test_missing_ranges(
    span: tuple[date, date] | None, start: date, end: date, expected: list[tuple[date, date]]
) -> None:
    assert missing_ranges(span, start, end) == expected
