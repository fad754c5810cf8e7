"""The pieces of the reading pages and of the prediction's database read that need no
database: the local calendar day of epoch seconds (vectorised, across DST changes), the
minutes per weekday and hour (each session split over the hours it spans, checked against
a session-by-session split with datetimes), the heatmap's colour bands and the timer's
clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from vigil.reading.book_page import clock
from vigil.reading.predictions import local_days, local_seconds
from vigil.reading.stats import heat_level, minutes_grid

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


def split_by_hour(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, float]]:
    """Reference, one session at a time with datetimes: (local start of each piece,
    minutes), the stretch cut at the local hours of ``tz`` (half-hour zones included)."""
    pieces: list[tuple[datetime, float]] = []
    at = start
    while at < end:
        local = at.astimezone(tz)
        hour_end = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        nxt = min(end, hour_end.astimezone(UTC))
        pieces.append((local, (nxt - at).total_seconds() / 60))
        at = nxt
    return pieces


def grid_of(starts: list[datetime], minutes: list[float], tz: ZoneInfo) -> np.ndarray:
    seconds = np.array([s.timestamp() for s in starts])
    return minutes_grid(local_seconds(seconds, tz), np.array(minutes) * 60)


def test_a_session_is_split_at_the_hours_of_the_readers_zone() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")  # UTC+1 in December
    monday = datetime(2026, 12, 7, 19, 40, tzinfo=UTC)  # 20:40 in Warsaw
    grid = grid_of([monday], [95], warsaw)
    assert {(d, h): round(m) for (d, h), m in np.ndenumerate(grid) if m} == {
        (0, 20): 20, (0, 21): 60, (0, 22): 15,
    }  # fmt: skip
    # Sunday 23:30 to Monday 00:30 in Warsaw: half an hour on each day.
    midnight = grid_of([datetime(2026, 12, 6, 22, 30, tzinfo=UTC)], [60], warsaw)
    assert {(d, h): round(m) for (d, h), m in np.ndenumerate(midnight) if m} == {
        (6, 23): 30, (0, 0): 30,
    }  # fmt: skip


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
def test_the_minutes_grid_matches_a_session_by_session_split(zone: str) -> None:
    tz = ZoneInfo(zone)
    rng = np.random.default_rng(5)
    starts = [
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=float(s))
        for s in rng.uniform(0, 300 * 86_400, 400)
    ]
    minutes = [float(m) for m in rng.uniform(1, 200, 400)]
    minutes[0] = 60 * 30  # a timer left running for 30 hours
    # A session across a DST change keeps its start's offset in the grid: leave those out.
    whole = [
        (s, m)
        for s, m in zip(starts, minutes, strict=True)
        if s.astimezone(tz).utcoffset() == (s + timedelta(minutes=m)).astimezone(tz).utcoffset()
    ]
    expected = np.zeros((7, 24))
    for start, length in whole:
        for local, piece in split_by_hour(start, start + timedelta(minutes=length), tz):
            expected[local.weekday(), local.hour] += piece
    got = grid_of([s for s, _ in whole], [m for _, m in whole], tz)
    assert got == pytest.approx(expected, abs=1e-6)
    assert got.sum() == pytest.approx(sum(m for _, m in whole))


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
