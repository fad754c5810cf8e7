"""Bollinger bands against TA-Lib's BBANDS, and weekly candles from daily values."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import talib

from vigil.markets.analytics.bands import Candle, bollinger, weekly_candles


@pytest.mark.parametrize(("period", "k"), [(20, 2.0), (5, 1.5), (2, 3.0)])
def test_bollinger_matches_talib(period: int, k: float) -> None:
    rng = np.random.default_rng(7)
    values = 4 + np.cumsum(rng.normal(0, 0.02, 500))
    ours = bollinger(values, period, k)
    upper, middle, lower = talib.BBANDS(values, period, k, k, matype=0)
    np.testing.assert_allclose(ours.middle, middle, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ours.upper, upper, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ours.lower, lower, rtol=1e-9, equal_nan=True)
    assert np.isnan(ours.middle[: period - 1]).all()
    assert not np.isnan(ours.middle[period - 1 :]).any()


def test_bollinger_of_a_short_series_is_all_nan() -> None:
    bands = bollinger([1.0, 2.0, 3.0], period=20)
    assert np.isnan(bands.upper).all()
    assert len(bands.upper) == 3


def test_bollinger_of_constant_values_collapses_onto_the_mean() -> None:
    bands = bollinger([2.5] * 30, period=10)
    assert bands.upper[-1] == bands.middle[-1] == bands.lower[-1] == 2.5


@pytest.mark.parametrize(("period", "k"), [(1, 2.0), (20, 0.0)])
def test_bollinger_refuses_bad_parameters(period: int, k: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        bollinger([1.0] * 30, period, k)


def test_weekly_candles_group_iso_weeks() -> None:
    # Thu 2 Jan 2025 .. Tue 14 Jan 2025, business days only.
    days = [date(2025, 1, 2) + timedelta(d) for d in range(13)]
    days = [d for d in days if d.weekday() < 5]
    values = [float(i) for i in range(len(days))]  # 0, 1, 2, ...
    candles = weekly_candles(days, values)
    assert candles == [
        Candle(date(2025, 1, 2), 0.0, 1.0, 0.0, 1.0),  # Thu, Fri
        Candle(date(2025, 1, 6), 2.0, 6.0, 2.0, 6.0),  # Mon..Fri
        Candle(date(2025, 1, 13), 7.0, 8.0, 7.0, 8.0),  # Mon, Tue
    ]


def test_weekly_candle_high_and_low_come_from_inside_the_week() -> None:
    days = [date(2025, 3, 3) + timedelta(d) for d in range(5)]
    candles = weekly_candles(days, [4.0, 4.4, 3.9, 4.1, 4.2])
    assert candles == [Candle(date(2025, 3, 3), 4.0, 4.4, 3.9, 4.2)]


def test_weeks_across_a_year_end_use_the_iso_year() -> None:
    # Mon 29 Dec 2025 and Fri 2 Jan 2026 are in the same ISO week (2026-W01).
    candles = weekly_candles([date(2025, 12, 29), date(2026, 1, 2)], [1.0, 2.0])
    assert len(candles) == 1
    assert candles[0].close == 2.0


def test_weekly_candles_refuse_unsorted_days() -> None:
    with pytest.raises(ValueError, match="increase"):
        weekly_candles([date(2025, 1, 3), date(2025, 1, 2)], [1.0, 2.0])
    assert weekly_candles([], []) == []
