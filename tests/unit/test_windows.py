"""Window parsing (``15m``, ``24h``, ``7d``) and min/max downsampling of price series, the
latter against a plain loop written from the docstring's wording."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from vigil.markets.analytics.windows import (
    MAX_WINDOW,
    WINDOW_FORMS,
    Point,
    downsample,
    format_window,
    parse_window,
)

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
EXAMPLES = "e.g. 15m, 1h, 24h, 7d or 30d"


def minutes(*prices: str | int, start: datetime = T0) -> list[Point]:
    return [(start + timedelta(minutes=i), Decimal(p)) for i, p in enumerate(prices)]


def walk(n: int, seed: int, step: timedelta = timedelta(minutes=1)) -> list[Point]:
    """A seeded random walk of prices with 2 decimals, one point per ``step``."""
    rng = random.Random(seed)
    price = Decimal("97000.00")
    out = []
    for i in range(n):
        price = (price * Decimal(str(1 + rng.gauss(0, 0.002)))).quantize(Decimal("0.01"))
        out.append((T0 + i * step, price))
    return out


# --- parse_window ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1m", timedelta(minutes=1)),
        ("15m", timedelta(minutes=15)),
        ("90m", timedelta(minutes=90)),
        ("1h", timedelta(hours=1)),
        ("24h", timedelta(days=1)),
        ("36h", timedelta(hours=36)),
        ("1d", timedelta(days=1)),
        ("7d", timedelta(days=7)),
        ("30d", timedelta(days=30)),
        ("365d", timedelta(days=365)),
        ("8760h", timedelta(days=365)),
        ("525600m", timedelta(days=365)),
    ],
)
def test_parse_window_accepts(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("15", id="no-unit"),
        pytest.param("m", id="no-number"),
        pytest.param("15s", id="seconds"),
        pytest.param("1w", id="weeks"),
        pytest.param("1y", id="years"),
        pytest.param("15M", id="upper-case-m"),
        pytest.param("1H", id="upper-case-h"),
        pytest.param("7D", id="upper-case-d"),
        pytest.param("15min", id="long-unit"),
        pytest.param("15mm", id="doubled-unit"),
        pytest.param("m15", id="unit-first"),
        pytest.param("1h30m", id="compound"),
        pytest.param(" 15m", id="leading-space"),
        pytest.param("15m ", id="trailing-space"),
        pytest.param("15 m", id="inner-space"),
        pytest.param("15m\n", id="trailing-newline"),
        pytest.param("+15m", id="plus-sign"),
        pytest.param("-15m", id="negative"),
        pytest.param("0m", id="zero-minutes"),
        pytest.param("0d", id="zero-days"),
        pytest.param("015m", id="leading-zero"),
        pytest.param("1.5h", id="fraction"),
        pytest.param("1e3m", id="exponent"),
        pytest.param("1_000m", id="underscore"),
        pytest.param("\u0661\u0665m", id="arabic-indic-digits"),
        pytest.param("\uff11\uff15m", id="fullwidth-digits"),
        pytest.param("PT15M", id="iso-8601"),
        pytest.param("15m;drop", id="trailing-junk"),
    ],
)
def test_parse_window_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="is not valid") as err:
        parse_window(text)
    message = str(err.value)
    assert message == f"window {text!r} is not valid: use {WINDOW_FORMS}"
    assert "m (minutes), h (hours) or d (days)" in message
    assert "from 1m to 365d" in message
    assert message.endswith(EXAMPLES)


@pytest.mark.parametrize("text", ["366d", "8761h", "525601m", "999999m", "99999d"])
def test_parse_window_rejects_too_long(text: str) -> None:
    with pytest.raises(ValueError, match="is longer than 365d") as err:
        parse_window(text)
    assert str(err.value) == f"window {text!r} is longer than 365d: use {WINDOW_FORMS}"


def test_parse_window_rejects_more_digits_than_any_valid_window() -> None:
    # Seven digits can't be a valid window; refused by the pattern before int() runs.
    with pytest.raises(ValueError, match="is not valid"):
        parse_window("1000000m")


def test_parse_window_empty_says_so() -> None:
    with pytest.raises(ValueError, match=r"^window is empty: use ") as err:
        parse_window("")
    assert str(err.value).endswith(EXAMPLES)


@pytest.mark.parametrize("value", [None, 15, b"15m", timedelta(minutes=15)])
def test_parse_window_rejects_non_text(value: object) -> None:
    with pytest.raises(ValueError, match="window must be text") as err:
        parse_window(value)  # type: ignore[arg-type]
    assert str(err.value).endswith(EXAMPLES)


def test_parse_window_message_does_not_repeat_a_huge_input() -> None:
    text = "9" * 10_000 + "m"
    with pytest.raises(ValueError, match="is not valid") as err:
        parse_window(text)
    assert f"window '{'9' * 20}...' is not valid" in str(err.value)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize(
    ("window", "text"),
    [
        (timedelta(minutes=1), "1m"),
        (timedelta(minutes=15), "15m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(minutes=60), "1h"),
        (timedelta(hours=36), "36h"),
        (timedelta(hours=24), "1d"),
        (timedelta(days=30), "30d"),
        (MAX_WINDOW, "365d"),
    ],
)
def test_format_window_is_canonical_and_parses_back(window: timedelta, text: str) -> None:
    assert format_window(window) == text
    assert parse_window(text) == window


@pytest.mark.parametrize(
    "window",
    [timedelta(0), timedelta(seconds=30), timedelta(minutes=1, seconds=1), timedelta(days=366)],
)
def test_format_window_rejects_what_parse_window_cannot_produce(window: timedelta) -> None:
    with pytest.raises(ValueError, match="whole minutes from 1m to 365d"):
        format_window(window)


# --- downsample -----------------------------------------------------------------------


def reference(points: list[Point], max_points: int) -> list[Point]:
    """The docstring's rule, one point at a time: first, last, and the lowest and highest
    (earliest on ties) of each of (max_points - 2) // 2 equal time buckets."""
    if len(points) <= max_points:
        return list(points)
    buckets = (max_points - 2) // 2
    stamps = [t.timestamp() for t, _ in points]
    span = stamps[-1] - stamps[0]
    # Same float expression as the implementation, so boundary points land alike.
    per_bucket: dict[int, list[int]] = {}
    for i, stamp in enumerate(stamps):
        b = min(int((stamp - stamps[0]) * (buckets / span)), buckets - 1) if span else 0
        per_bucket.setdefault(b, []).append(i)
    keep = {0, len(points) - 1}
    for members in per_bucket.values():
        values = [float(points[i][1]) for i in members]
        keep.add(members[values.index(min(values))])
        keep.add(members[values.index(max(values))])
    return [points[i] for i in sorted(keep)]


def positions(points: list[Point], chosen: list[Point]) -> list[int]:
    """Where each chosen point sits in ``points``, by identity: fails on a new tuple."""
    by_id = {id(p): i for i, p in enumerate(points)}
    return [by_id[id(p)] for p in chosen]


@pytest.mark.parametrize("max_points", [4, 5, 10, 101, 1000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_downsample_matches_the_reference(max_points: int, seed: int) -> None:
    points = walk(3_000, seed)
    out = downsample(points, max_points)
    assert out == reference(points, max_points)
    assert len(out) <= max_points


@pytest.mark.parametrize("max_points", [4, 5, 6, 7, 50, 999])
def test_downsample_bounds_and_keeps_first_and_last(max_points: int) -> None:
    points = walk(5_000, seed=max_points)
    out = downsample(points, max_points)
    assert len(out) <= max_points
    # A regular series fills every bucket, each giving its low and high; only the first
    # and last point may coincide with those of their buckets.
    assert len(out) >= 2 * ((max_points - 2) // 2)
    assert out[0] is points[0]
    assert out[-1] is points[-1]


def test_downsample_returns_existing_points_in_order_with_decimals_untouched() -> None:
    points = [(t, Decimal(f"{p:.2f}00")) for t, p in walk(2_000, seed=9)]  # scale 4
    out = downsample(points, 60)
    index = positions(points, out)
    assert index == sorted(set(index))  # original order, no repeats
    for chosen in out:
        assert chosen[1].as_tuple().exponent == -4  # the stored scale, not re-rounded


def test_downsample_keeps_the_global_min_and_max() -> None:
    points = walk(10_000, seed=4)
    # A one-minute spike each way, far from the ends and inside wide buckets.
    points[3_333] = (points[3_333][0], Decimal("150000.00"))
    points[6_666] = (points[6_666][0], Decimal("40000.00"))
    out = downsample(points, 10)
    values = [v for _, v in out]
    assert Decimal("150000.00") in values
    assert Decimal("40000.00") in values
    assert max(values) == max(v for _, v in points)
    assert min(values) == min(v for _, v in points)


@pytest.mark.parametrize("seed", range(5))
def test_downsample_shape_every_bucket_extreme_survives(seed: int) -> None:
    # The result's range over each bucket's time span equals the original's range there:
    # no high or low wider than a bucket is lost.
    points = walk(4_000, seed=seed)
    max_points = 42
    out = downsample(points, max_points)
    buckets = (max_points - 2) // 2
    width = (points[-1][0] - points[0][0]) / buckets
    for b in range(buckets):
        lo, hi = points[0][0] + b * width, points[0][0] + (b + 1) * width
        inside = [v for t, v in points if lo <= t < hi]
        kept = [v for t, v in out if lo <= t < hi]
        # Boundary points may fall either side by float rounding; compare the interior.
        assert min(kept) <= min(inside[1:-1])
        assert max(kept) >= max(inside[1:-1])


def test_downsample_gap_stays_a_gap() -> None:
    # 500 minutes, a day without data, 500 minutes: buckets inside the gap are empty and
    # cost nothing; nothing is invented in the gap.
    before = walk(500, seed=5)
    after = walk(500, seed=6)
    shift = timedelta(days=1, minutes=500)
    points = before + [(t + shift, v) for t, v in after]
    out = downsample(points, 100)
    assert not [t for t, _ in out if before[-1][0] < t < points[500][0]]
    assert out == reference(points, 100)
    # Data covers 1,000 of the span's 2,440 minutes, so only about 41 % of the 49 buckets
    # hold points and contribute: well under the budget of 100.
    assert 40 <= len(out) <= 2 + 2 * 22


def test_downsample_flat_series_keeps_the_earliest_of_ties() -> None:
    points = minutes(*["1.50"] * 100)
    out = downsample(points, 6)  # two buckets: 0..49 and 50..99
    assert positions(points, out) == [0, 50, 99]


def test_downsample_hand_made_buckets() -> None:
    # 11 points one minute apart, max_points 6 -> 2 buckets of 5 minutes: [0, 5) and
    # [5, 10] (the last point belongs to the last bucket).
    points = minutes(5, 3, 9, 1, 7, 4, 8, 2, 6, 0, 5)
    out = downsample(points, 6)
    # first (0), bucket 1 min 1 (3) and max 9 (2), bucket 2 min 0 (9), max 8 (6), last (10)
    assert positions(points, out) == [0, 2, 3, 6, 9, 10]


def test_downsample_is_stable_when_nothing_needs_dropping() -> None:
    points = walk(100, seed=7)
    for max_points in (100, 101, 10_000):
        out = downsample(points, max_points)
        assert out == points
        assert out is not points  # a new list the caller may change
        assert all(a is b for a, b in zip(out, points, strict=True))
    assert downsample([], 4) == []
    assert downsample(points[:1], 4) == points[:1]
    assert downsample(tuple(points[:3]), 4) == points[:3]


def test_downsample_same_timestamp_everywhere() -> None:
    points = [(T0, Decimal(v)) for v in ("3", "1", "4", "1", "5", "9", "2", "6")]
    assert positions(points, downsample(points, 4)) == [0, 1, 5, 7]


@pytest.mark.parametrize("max_points", [0, 1, 2, 3, -5])
def test_downsample_needs_room_for_first_last_min_max(max_points: int) -> None:
    with pytest.raises(ValueError, match="at least 4"):
        downsample(walk(10, seed=1), max_points)


@pytest.mark.parametrize("max_points", [4.0, True, "10", None])
def test_downsample_max_points_must_be_an_int(max_points: object) -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        downsample(walk(10, seed=1), max_points)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [5, 50])  # both paths: returned as is, and downsampled
def test_downsample_rejects_unordered_points(n: int) -> None:
    points = walk(n, seed=8)
    points[2], points[3] = points[3], points[2]
    with pytest.raises(ValueError, match="time order"):
        downsample(points, 10)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_downsample_rejects_non_finite_prices(bad: str) -> None:
    points = walk(50, seed=8)
    points[10] = (points[10][0], Decimal(bad))
    with pytest.raises(ValueError, match="finite"):
        downsample(points, 10)
