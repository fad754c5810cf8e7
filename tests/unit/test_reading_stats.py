"""The pieces of the reading pages and of the prediction's database read that need no
database: the local calendar day of epoch seconds (vectorised, across DST changes), the
split of a session over the hours it spans, the heatmap's colour bands and the timer's
clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from vigil.reading.book_page import clock
from vigil.reading.predictions import local_days
from vigil.reading.stats import _split_by_hour, heat_level

ZONES = ["UTC", "Europe/Warsaw", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@pytest.mark.parametrize("zone", ZONES)
def test_local_days_match_the_zone_database(zone: str) -> None:
    tz = ZoneInfo(zone)
    rng = np.random.default_rng(3)
    # Two years of instants, plus every second around the 2026 spring and autumn changes.
    spread = np.sort(rng.uniform(1.75e9, 1.75e9 + 2 * 365 * 86_400, 5_000))
    around = []
    for day in (datetime(2026, 3, 8), datetime(2026, 3, 29), datetime(2026, 10, 25),
                datetime(2026, 11, 1), datetime(2026, 4, 5)):  # fmt: skip
        base = day.replace(tzinfo=UTC).timestamp()
        around.extend(base + s for s in range(-2 * 3600, 14 * 3600, 599))
    seconds = np.sort(np.concatenate([spread, np.array(around)]))
    expected = [datetime.fromtimestamp(s, tz).date().toordinal() for s in seconds]
    assert local_days(seconds, tz).tolist() == expected


def test_local_days_of_nothing() -> None:
    assert local_days(np.zeros(0), ZoneInfo("Europe/Warsaw")).tolist() == []


def test_a_session_is_split_at_the_hours_of_the_readers_zone() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")  # UTC+1 in December
    start = datetime(2026, 12, 7, 19, 40, tzinfo=UTC)  # 20:40 in Warsaw, a Monday
    pieces = _split_by_hour(start, start + timedelta(minutes=95), warsaw)
    assert [(p.hour, round(m)) for p, m in pieces] == [(20, 20), (21, 60), (22, 15)]
    assert {p.weekday() for p, _ in pieces} == {0}
    midnight = _split_by_hour(datetime(2026, 12, 6, 22, 30, tzinfo=UTC),
                              datetime(2026, 12, 6, 23, 30, tzinfo=UTC), warsaw)  # fmt: skip
    assert [(p.weekday(), p.hour, round(m)) for p, m in midnight] == [(6, 23, 30), (0, 0, 30)]


def test_heat_levels() -> None:
    assert heat_level(0, 100) == 0
    assert heat_level(5, 0) == 0
    assert [heat_level(m, 100) for m in (1, 25, 26, 50, 51, 75, 76, 100)] == [
        1, 1, 2, 2, 3, 3, 4, 4,
    ]  # fmt: skip


def test_the_timer_clock() -> None:
    assert clock(timedelta(seconds=0)) == "0:00:00"
    assert clock(timedelta(hours=2, minutes=3, seconds=4.9)) == "2:03:04"
    assert clock(timedelta(seconds=-5)) == "0:00:00"  # a clock a little behind the server's
