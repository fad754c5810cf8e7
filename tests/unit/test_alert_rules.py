"""Price alerts, "N % in M minutes": change_pct on fixed series, and rule evaluation
(direction, threshold, re-arming, cooldown) tick by tick."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from typing import Any

import pytest

from vigil.markets.analytics.alerts import (
    Alert,
    AlertRule,
    ChangeResult,
    RuleState,
    change_pct,
    evaluate,
)
from vigil.markets.analytics.windows import Point

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
M15 = timedelta(minutes=15)
HOUR = timedelta(hours=1)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def series(prices: dict[float, str]) -> list[Point]:
    """Points at the given minutes after T0."""
    return [(at(m), Decimal(p)) for m, p in sorted(prices.items())]


def every_minute(*prices: str) -> list[Point]:
    return series(dict(enumerate(prices)))


def change(pct: str, window: timedelta = M15, end: datetime = T0) -> ChangeResult:
    """A change of ``pct`` % from 100, for testing the rule on its own."""
    start_price = Decimal(100)
    return ChangeResult(
        change_pct=Decimal(pct),
        window=window,
        start_at=end - window,
        start_price=start_price,
        end_at=end,
        end_price=start_price * (1 + Decimal(pct) / 100),
    )


def rule(threshold: str = "1", **kwargs: Any) -> AlertRule:
    return AlertRule(threshold_pct=Decimal(threshold), window=M15, **kwargs)


def run(r: AlertRule, pcts: list[str], state: RuleState | None = None) -> list[Alert | None]:
    """Evaluates one change per minute (tick i at T0 + i minutes), carrying the state."""
    alerts = []
    for i, pct in enumerate(pcts):
        alert, state = evaluate(r, change(pct, end=at(i)), state, at(i))
        alerts.append(alert)
    return alerts


def fired(alerts: list[Alert | None]) -> list[int]:
    return [i for i, a in enumerate(alerts) if a is not None]


# --- change_pct ------------------------------------------------------------------------


def test_change_up() -> None:
    points = series({0: "100", 5: "102", 10: "103.50", 15: "105"})
    result = change_pct(points, M15, at(15))
    assert result == ChangeResult(
        change_pct=Decimal("5.0000"),
        window=M15,
        start_at=at(0),
        start_price=Decimal("100"),
        end_at=at(15),
        end_price=Decimal("105"),
    )
    assert result.direction == "up"


def test_change_down() -> None:
    result = change_pct(series({0: "200", 15: "190"}), M15, at(15))
    assert result is not None
    assert result.change_pct == Decimal("-5.0000")
    assert result.direction == "down"


def test_change_flat() -> None:
    result = change_pct(every_minute(*["4.1234"] * 20), M15, at(19))
    assert result is not None
    assert result.change_pct == Decimal("0.0000")
    assert result.direction is None
    assert (result.start_at, result.end_at) == (at(4), at(19))


def test_start_is_the_price_as_of_the_window_start() -> None:
    points = every_minute(*[str(100 + i) for i in range(30)])
    # Exactly on a point: that point is the start (at or before now - window).
    result = change_pct(points, M15, at(20))
    assert result is not None
    assert (result.start_at, result.start_price) == (at(5), Decimal(105))
    assert (result.end_at, result.end_price) == (at(20), Decimal(120))
    # Between points: the last point before the window start, the last one before now.
    result = change_pct(points, M15, at(20.5))
    assert result is not None
    assert (result.start_at, result.end_at) == (at(5), at(20))


def test_points_after_now_are_ignored() -> None:
    points = series({0: "100", 10: "101", 20: "150", 30: "200"})
    result = change_pct(points, M15, at(12))
    assert result is not None
    assert (result.start_at, result.end_at, result.change_pct) == (at(0), at(10), Decimal("1"))


def test_series_starting_inside_the_window_starts_at_its_first_point() -> None:
    result = change_pct(series({0: "100", 3: "101", 5: "103"}), M15, at(5))
    assert result is not None
    assert (result.start_at, result.change_pct) == (at(0), Decimal("3.0000"))


def test_gap_starts_at_the_last_price_before_the_gap() -> None:
    # Data until minute 10, an outage, data again from minute 60.
    points = series({0: "100", 10: "100", 60: "110", 65: "111"})
    result = change_pct(points, M15, at(65))
    assert result is not None
    assert (result.start_at, result.start_price) == (at(10), Decimal(100))
    assert result.change_pct == Decimal("11.0000")
    assert result.end_at - result.start_at == timedelta(minutes=55)  # longer than the window


def test_daily_series_compares_with_the_previous_business_day() -> None:
    # NBP-like: Friday and Monday rates, window 1 day, evaluated on Monday.
    friday = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    monday = friday + timedelta(days=3)
    points = [(friday, Decimal("3.9500")), (monday, Decimal("3.9895"))]
    result = change_pct(points, timedelta(days=1), monday)
    assert result is not None
    assert (result.start_at, result.change_pct) == (friday, Decimal("1.0000"))


@pytest.mark.parametrize(
    ("points", "now"),
    [
        pytest.param([], at(10), id="empty"),
        pytest.param(series({0: "100"}), at(10), id="one-point"),
        pytest.param(series({20: "100", 25: "101"}), at(10), id="all-after-now"),
        pytest.param(series({0: "100", 5: "101"}), at(30), id="no-point-since-window-start"),
        pytest.param(series({0: "100", 30: "101"}), at(0), id="now-on-the-first-point"),
        pytest.param(series({0: "0", 5: "1"}), at(5), id="start-price-zero"),
    ],
)
def test_not_enough_data(points: list[Point], now: datetime) -> None:
    assert change_pct(points, M15, now) is None


@pytest.mark.parametrize(
    ("start", "end", "pct"),
    [
        ("3", "4", "33.3333"),
        ("3", "2", "-33.3333"),
        ("3", "5", "66.6667"),
        ("100", "100.00005", "0.0000"),  # 0.00005 exactly: half-even rounds down to even
        ("100", "100.00015", "0.0002"),  # 0.00015 exactly: half-even rounds up to even
        ("100", "99.99995", "0.0000"),  # -0.00005: no "-0.0000"
        ("0.00000001", "1000000", "9999999999999900.0000"),
    ],
)
def test_change_is_quantized_half_even_to_four_places(start: str, end: str, pct: str) -> None:
    result = change_pct(series({0: start, 15: end}), M15, at(15))
    assert result is not None
    assert str(result.change_pct) == pct


def test_change_ignores_the_ambient_decimal_context() -> None:
    points = series({0: "3", 15: "4"})
    with localcontext() as ctx:
        ctx.prec = 3
        result = change_pct(points, M15, at(15))
    assert result is not None
    assert result.change_pct == Decimal("33.3333")


def test_change_keeps_the_prices_as_stored() -> None:
    points = series({0: "3.9500", 15: "3.9895"})
    result = change_pct(points, M15, at(15))
    assert result is not None
    assert result.start_price is points[0][1]
    assert result.end_price is points[1][1]
    assert str(result.start_price) == "3.9500"


def test_change_works_in_any_timezone() -> None:
    warsaw_winter = timezone(timedelta(hours=1))
    points = series({0: "100", 15: "101"})
    result = change_pct(points, M15, at(15).astimezone(warsaw_winter))
    assert result is not None
    assert result.change_pct == Decimal("1.0000")


def test_change_rejects_naive_now_and_empty_window() -> None:
    points = series({0: "100", 15: "101"})
    with pytest.raises(ValueError, match="timezone-aware"):
        change_pct(points, M15, datetime(2024, 3, 4, 12, 15))
    with pytest.raises(ValueError, match="window must be positive"):
        change_pct(points, timedelta(0), at(15))


# --- the rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"threshold_pct": Decimal(0)}, id="zero-threshold"),
        pytest.param({"threshold_pct": Decimal(-1)}, id="negative-threshold"),
        pytest.param({"threshold_pct": Decimal("NaN")}, id="nan-threshold"),
        pytest.param({"threshold_pct": Decimal("Infinity")}, id="infinite-threshold"),
        pytest.param({"threshold_pct": 1.5}, id="float-threshold"),
        pytest.param({"threshold_pct": True}, id="bool-threshold"),
        pytest.param({"window": timedelta(0)}, id="zero-window"),
        pytest.param({"window": -M15}, id="negative-window"),
        pytest.param({"cooldown": timedelta(0)}, id="zero-cooldown"),
        pytest.param({"direction": "sideways"}, id="bad-direction"),
        pytest.param({"direction": "UP"}, id="upper-case-direction"),
        pytest.param({"rearm_fraction": Decimal("1.5")}, id="rearm-above-one"),
        pytest.param({"rearm_fraction": Decimal("-0.1")}, id="rearm-negative"),
    ],
)
def test_rule_rejects_invalid_values(kwargs: dict[str, Any]) -> None:
    values: dict[str, Any] = {"threshold_pct": Decimal(1), "window": M15, **kwargs}
    with pytest.raises(ValueError, match="must be"):
        AlertRule(**values)


def test_rule_defaults_and_int_threshold() -> None:
    r = AlertRule(threshold_pct=2, window=M15)  # type: ignore[arg-type]
    assert r.threshold_pct == Decimal(2)
    assert isinstance(r.threshold_pct, Decimal)
    assert (r.direction, r.cooldown, r.rearm_pct) == ("both", HOUR, Decimal("1.0"))


# --- evaluate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "pct", "fires"),
    [
        ("up", "5", "up"),
        ("both", "5", "up"),
        ("down", "-5", "down"),
        ("both", "-5", "down"),
        ("up", "-5", None),
        ("down", "5", None),
        ("both", "0.9999", None),
        ("both", "-0.9999", None),
        ("both", "0", None),
    ],
)
def test_fires_only_in_the_rule_direction(direction: str, pct: str, fires: str | None) -> None:
    alert, state = evaluate(rule(direction=direction), change(pct), None, T0)
    if fires is None:
        assert alert is None
        assert state == RuleState()
    else:
        assert alert is not None
        assert alert.direction == fires
        assert state == RuleState(armed=False, last_direction=fires, last_fired_at=T0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("pct", "direction"), [("1.0000", "up"), ("-1", "down")])
def test_threshold_exactly_reached_fires(pct: str, direction: str) -> None:
    alert, _ = evaluate(rule("1"), change(pct), None, T0)
    assert alert is not None
    assert alert.direction == direction


def test_threshold_reached_through_change_pct() -> None:
    # 100 -> 101 is exactly 1 %; 100 -> 100.99 is not.
    r = rule("1")
    reached = change_pct(series({0: "100", 15: "101"}), M15, at(15))
    short = change_pct(series({0: "100", 15: "100.99"}), M15, at(15))
    assert reached is not None
    assert short is not None
    assert evaluate(r, reached, None, at(15))[0] is not None
    assert evaluate(r, short, None, at(15))[0] is None


def test_alert_carries_the_details() -> None:
    points = series({0: "100", 15: "105"})
    c = change_pct(points, M15, at(15))
    assert c is not None
    now = at(15.5)
    alert, _ = evaluate(rule("2"), c, None, now)
    assert alert == Alert(
        direction="up",
        change_pct=Decimal("5.0000"),
        threshold_pct=Decimal(2),
        window=M15,
        start_at=at(0),
        start_price=Decimal(100),
        end_at=at(15),
        end_price=Decimal(105),
        triggered_at=now,
    )


def test_no_storm_during_a_long_rally() -> None:
    # Three hours above the threshold, one tick a minute; cooldown longer than the rally.
    pcts = ["0.5", "1.2"] + [str(Decimal("1.5") + Decimal(i) / 100) for i in range(178)]
    alerts = run(rule("1", cooldown=timedelta(hours=4)), pcts)
    assert fired(alerts) == [1]


def test_long_rally_reminds_once_per_cooldown() -> None:
    pcts = ["1.5"] * 180
    alerts = run(rule("1", cooldown=HOUR), pcts)
    assert fired(alerts) == [0, 60, 120]  # cooldown passed, inclusive: exactly 60 minutes


def test_long_rally_from_a_real_series() -> None:
    # +0.2 % a minute for three hours: the 15-minute change stays near 3 % from minute 15.
    prices = [Decimal(100)]
    for _ in range(180):
        prices.append((prices[-1] * Decimal("1.002")).quantize(Decimal("0.0001")))
    points = [(at(i), p) for i, p in enumerate(prices)]
    r = rule("2", cooldown=timedelta(minutes=90))
    state: RuleState | None = None
    times = []
    for minute in range(181):
        c = change_pct(points, M15, at(minute))
        if c is None:
            continue
        alert, state = evaluate(r, c, state, at(minute))
        if alert is not None:
            times.append(minute)
            assert alert.change_pct >= 2
    # 1.002^10 = 2.02 %: first at minute 10, then one reminder per 90 minutes.
    assert times == [10, 100]


def test_fires_again_after_reset() -> None:
    # Default re-arm at half the threshold (0.5 % for 1 %), within the one-hour cooldown.
    alerts = run(rule("1"), ["1.5", "2", "0.49", "1.1"])
    assert fired(alerts) == [0, 3]


def test_hysteresis_a_dip_just_below_the_threshold_is_not_a_reset() -> None:
    assert fired(run(rule("1"), ["1.5", "0.9", "0.5", "1.5"])) == [0]  # 0.5 is not below
    assert fired(run(rule("1", rearm_fraction=Decimal(1)), ["1.5", "0.9", "1.5"])) == [0, 2]


def test_no_storm_when_flapping_around_the_threshold() -> None:
    pcts = ["1.01", "0.99"] * 60
    assert fired(run(rule("1"), pcts)) == [0, 60]  # only the hourly reminder
    # Without hysteresis every crossing is a new move: the storm the default prevents.
    assert len(fired(run(rule("1", rearm_fraction=Decimal(1)), pcts))) == 60


def test_fires_again_after_cooldown_not_before() -> None:
    r = rule("1", cooldown=timedelta(minutes=30))
    alert, state = evaluate(r, change("3"), None, T0)
    assert alert is not None
    alert, state = evaluate(r, change("3"), state, T0 + timedelta(minutes=29, seconds=59))
    assert alert is None
    alert, state = evaluate(r, change("3"), state, T0 + timedelta(minutes=30))
    assert alert is not None
    assert state.last_fired_at == T0 + timedelta(minutes=30)
    alert, state = evaluate(r, change("3"), state, T0 + timedelta(minutes=31))
    assert alert is None  # the cooldown restarts from the reminder


def test_reversal_is_a_new_move() -> None:
    alerts = run(rule("1"), ["2", "-2", "2"])
    assert [a.direction if a else None for a in alerts] == ["up", "down", "up"]


def test_one_direction_rule_rearms_on_the_other_side_without_firing() -> None:
    r = rule("1", direction="up")
    alert, state = evaluate(r, change("2"), None, T0)
    assert alert is not None
    alert, state = evaluate(r, change("-3"), state, at(1))
    assert alert is None
    assert state == RuleState(armed=True, last_direction="up", last_fired_at=T0)
    alert, state = evaluate(r, change("2"), state, at(2))
    assert alert is not None


def test_a_down_move_fading_rearms() -> None:
    alerts = run(rule("1", direction="down"), ["-2", "-1.5", "-0.4", "-1"])
    assert fired(alerts) == [0, 3]


def test_rerunning_a_tick_with_its_state_does_not_fire_twice() -> None:
    r = rule("1")
    alert, state = evaluate(r, change("2"), None, T0)
    assert alert is not None
    again, same = evaluate(r, change("2"), state, T0)
    assert again is None
    assert same == state


def test_quiet_ticks_leave_the_state_alone() -> None:
    state = RuleState(armed=False, last_direction="up", last_fired_at=T0)
    assert evaluate(rule("1"), change("0.7"), state, at(5)) == (None, state)
    assert evaluate(rule("1"), change("0.2"), None, at(5)) == (None, RuleState())


def test_evaluate_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(rule(), change("2"), None, datetime(2024, 3, 4, 12, 0))


# --- RuleState --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        RuleState(),
        RuleState(armed=False, last_direction="up", last_fired_at=T0),
        RuleState(armed=True, last_direction="down", last_fired_at=T0 + timedelta(microseconds=7)),
    ],
)
def test_state_round_trips_through_json(state: RuleState) -> None:
    data = json.loads(json.dumps(state.to_dict()))
    assert RuleState.from_dict(data) == state


def test_state_dict_shape() -> None:
    state = RuleState(armed=False, last_direction="down", last_fired_at=T0)
    assert state.to_dict() == {
        "armed": False,
        "last_direction": "down",
        "last_fired_at": "2024-03-04T12:00:00+00:00",
    }


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="empty"),
        pytest.param(None, id="none"),
        pytest.param({"armed": True, "last_direction": None}, id="missing-key"),
        pytest.param(
            {"armed": "yes", "last_direction": None, "last_fired_at": None}, id="armed-not-bool"
        ),
        pytest.param(
            {"armed": False, "last_direction": None, "last_fired_at": None},
            id="disarmed-never-fired",
        ),
        pytest.param(
            {"armed": True, "last_direction": "sideways", "last_fired_at": "2024-03-04T12:00:00Z"},
            id="bad-direction",
        ),
        pytest.param(
            {"armed": True, "last_direction": "up", "last_fired_at": None}, id="direction-no-time"
        ),
        pytest.param(
            {"armed": True, "last_direction": "up", "last_fired_at": "2024-03-04T12:00:00"},
            id="naive-time",
        ),
        pytest.param(
            {"armed": True, "last_direction": "up", "last_fired_at": "yesterday"}, id="bad-time"
        ),
        pytest.param({"armed": True, "last_direction": "up", "last_fired_at": 5}, id="int-time"),
    ],
)
def test_state_from_dict_rejects_invalid(data: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        RuleState.from_dict(data)
