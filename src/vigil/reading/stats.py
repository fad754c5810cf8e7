"""Reading statistics for the stats page, from one user's finished timed sessions in their
calendar: pages per day, minutes per weekday and hour of the day, and the speed (pages per
hour) week by week. The database gives the rows (scoped to the user, only the three
columns needed); the sums are made here, because the day and the hour depend on the
reader's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.reading.models import ReadingSession

#: The page's ranges: days back from today (None: everything).
RANGES: dict[str, int | None] = {"3m": 91, "1y": 365, "all": None}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: A week needs this much timed reading for its speed to be shown (a few minutes say little).
MIN_WEEK_MINUTES = 10.0


@dataclass(frozen=True)
class Stats:
    first_day: date  # of the range shown
    today: date
    sessions: int
    pages: int
    minutes: float
    #: (day, pages) for every day of the range, days without reading included.
    pages_per_day: list[tuple[date, int]]
    #: minutes[weekday][hour] (Monday = 0), each session split over the hours it spans.
    minutes_grid: list[list[float]]
    #: (Monday of the week, pages per hour) for the weeks with enough timed reading.
    speed_per_week: list[tuple[date, float]]

    @property
    def pages_per_hour(self) -> float | None:
        return self.pages / (self.minutes / 60) if self.minutes > 0 else None

    @property
    def busiest_minutes(self) -> float:
        return max((max(row) for row in self.minutes_grid), default=0.0)


def _split_by_hour(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, float]]:
    """(local start of each piece, minutes) for the stretch cut at the hour boundaries."""
    pieces: list[tuple[datetime, float]] = []
    at = start
    while at < end:
        nxt = min(end, at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        pieces.append((at.astimezone(tz), (nxt - at).total_seconds() / 60))
        at = nxt
    return pieces


def reading_stats(
    session: Session, user_id: int, tz: ZoneInfo, now: datetime, range_name: str = "1y"
) -> Stats:
    today = now.astimezone(tz).date()
    days = RANGES[range_name]
    stmt = select(
        ReadingSession.start_time, ReadingSession.end_time, ReadingSession.pages_read
    ).where(
        ReadingSession.user_id == user_id,
        ReadingSession.end_time.is_not(None),
        ReadingSession.pages_read.is_not(None),
    )
    if days is not None:
        # A day early: the local calendar may start before UTC's; filtered exactly below.
        stmt = stmt.where(ReadingSession.start_time >= now - timedelta(days=days + 1))
    rows = session.execute(stmt.order_by(ReadingSession.start_time)).all()
    first = today - timedelta(days=days - 1) if days is not None else None
    per_day: dict[date, int] = {}
    grid = [[0.0] * 24 for _ in WEEKDAYS]
    week_pages: dict[date, float] = {}
    week_minutes: dict[date, float] = {}
    count = pages_total = 0
    minutes_total = 0.0
    for start, end, pages in rows:
        day = start.astimezone(tz).date()
        if (first is not None and day < first) or end is None or pages is None:
            continue
        count += 1
        pages_total += pages
        per_day[day] = per_day.get(day, 0) + pages
        minutes = (end - start).total_seconds() / 60
        minutes_total += minutes
        week = day - timedelta(days=day.weekday())
        week_pages[week] = week_pages.get(week, 0.0) + pages
        week_minutes[week] = week_minutes.get(week, 0.0) + minutes
        for local, piece in _split_by_hour(start, end, tz):
            grid[local.weekday()][local.hour] += piece
    if first is None:
        first = min(per_day, default=today)
    span = (today - first).days + 1
    calendar = (first + timedelta(days=i) for i in range(span))
    series = [(d, per_day.get(d, 0)) for d in calendar]
    speed = [
        (week, week_pages[week] / (week_minutes[week] / 60))
        for week in sorted(week_pages)
        if week_minutes[week] >= MIN_WEEK_MINUTES
    ]
    return Stats(first, today, count, pages_total, minutes_total, series, grid, speed)


def heat_level(minutes: float, busiest: float) -> int:
    """0 (none) to 4 (the busiest hour): the colour band of a heatmap cell."""
    if minutes <= 0 or busiest <= 0:
        return 0
    return min(4, 1 + int(4 * minutes / busiest - 1e-9))
