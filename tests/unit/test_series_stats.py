"""The analysis snapshot on small windows whose statistics are worked out by hand."""

from __future__ import annotations

import csv
import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vigil.markets.analytics.macd import macd
from vigil.markets.analytics.signals import Signal, classify
from vigil.markets.analytics.stats import snapshot

SERIES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "nbp" / "series"
NAN = float("nan")
B, H, S = Signal.BUY, Signal.HOLD, Signal.SELL
KEYS = {
    "points",
    "from",
    "to",
    "first",
    "last",
    "change_pct",
    "min",
    "max",
    "mean",
    "volatility",
    "trend",
    "histogram",
    "last_crossing",
}


def days(n: int, start: date = date(2024, 3, 4)) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def snap(
    values: list[float],
    histogram: list[float] | None = None,
    signals: list[Signal] | None = None,
) -> dict[str, Any]:
    n = len(values)
    out = snapshot(
        days(n),
        values,
        [NAN] * n if histogram is None else histogram,
        [H] * n if signals is None else signals,
    )
    assert set(out) == KEYS
    json.dumps(out, allow_nan=False)  # JSON-ready: no NaN, no numpy types, no dates
    return out


def test_rising_window() -> None:
    out = snap(
        [1.0, 2.0, 3.0, 4.0, 5.0],
        histogram=[NAN, NAN, -0.1, 0.2, 0.3],
        signals=[H, H, H, B, H],
    )
    assert out["points"] == 5
    assert out["from"] == "2024-03-04"
    assert out["to"] == "2024-03-08"
    assert out["first"] == 1.0
    assert out["last"] == 5.0
    assert out["change_pct"] == pytest.approx(400.0)
    assert (out["min"], out["max"]) == (1.0, 5.0)
    assert out["mean"] == pytest.approx(3.0)
    assert out["trend"] == "up"
    assert out["histogram"] == pytest.approx(0.3)
    assert out["last_crossing"] == {"date": "2024-03-07", "signal": "BUY"}


def test_volatility_is_the_sample_std_of_log_returns_in_percent() -> None:
    # log returns +0.01 and -0.01: mean 0, sample variance (2 * 0.0001) / 1 -> std 0.01*sqrt(2)
    out = snap([100.0, 100.0 * math.exp(0.01), 100.0])
    assert out["volatility"] == pytest.approx(1.4142135623730951, rel=1e-9)
    # log returns 0.02 and 0: sample std 0.02 / sqrt(2) = 1.414...% (ddof=0 would give 1 %)
    out = snap([50.0, 50.0 * math.exp(0.02), 50.0 * math.exp(0.02)])
    assert out["volatility"] == pytest.approx(1.4142135623730951, rel=1e-9)


def test_constant_growth_has_no_volatility() -> None:
    values = [100.0 * 1.01**i for i in range(10)]
    out = snap(values)
    assert out["volatility"] == pytest.approx(0.0, abs=1e-9)
    assert out["change_pct"] == pytest.approx(9.36852726843, rel=1e-9)  # 1.01**9 = 1.0936852...
    assert out["trend"] == "up"


@pytest.mark.parametrize(
    ("values", "trend"),
    [
        # fitted change 0.4 over mean 100.2 = 0.399 % < 0.5 %
        ([100.0, 100.2, 100.4], "flat"),
        # fitted change 0.6 over mean 100.3 = 0.598 %
        ([100.0, 100.3, 100.6], "up"),
        ([100.6, 100.3, 100.0], "down"),
        ([5.0, 5.0, 5.0, 5.0], "flat"),
        # slope (-2*2 - 1*1 + 0 + 1*4 + 2*1.9) / 10 = 0.28 > 0 although the last is below
        # the first; fitted change 1.12 over mean 2.38 = 47 %
        ([2.0, 1.0, 3.0, 4.0, 1.9], "up"),
        # slope = (-1.5*3 - 0.5*1 + 0.5*2 + 1.5*1) / 5 = -0.5
        ([3.0, 1.0, 2.0, 1.0], "down"),
        ([4.0, 4.1], "up"),
    ],
)
def test_trend(values: list[float], trend: str) -> None:
    assert snap(values)["trend"] == trend


def test_trend_ignores_endpoints() -> None:
    out = snap([2.0, 1.0, 3.0, 4.0, 1.9])
    assert out["change_pct"] == pytest.approx(-5.0)
    assert out["mean"] == pytest.approx(2.38)
    assert (out["min"], out["max"]) == (1.0, 4.0)


def test_two_points() -> None:
    out = snap([4.0, 4.1])
    assert out["change_pct"] == pytest.approx(2.5)
    assert out["volatility"] is None  # one return only
    assert out["mean"] == pytest.approx(4.05)


def test_one_point() -> None:
    out = snap([4.2], histogram=[0.01], signals=[H])
    assert out["points"] == 1
    assert out["from"] == out["to"] == "2024-03-04"
    assert out["first"] == out["last"] == out["min"] == out["max"] == out["mean"] == 4.2
    assert out["change_pct"] == 0.0
    assert out["volatility"] is None
    assert out["trend"] is None
    assert out["histogram"] == 0.01
    assert out["last_crossing"] is None


def test_empty_window() -> None:
    out = snap([])
    assert out["points"] == 0
    assert all(out[key] is None for key in KEYS - {"points"})


def test_last_crossing_is_the_latest() -> None:
    out = snap([1.0] * 5, histogram=[NAN, 1, -1, 1, 1], signals=[H, B, S, H, H])
    assert out["last_crossing"] == {"date": "2024-03-06", "signal": "SELL"}
    assert snap([1.0] * 3)["last_crossing"] is None
    # plain strings (as stored) work too
    out = snapshot(days(2), [1.0, 1.0], [1.0, -1.0], ["HOLD", "SELL"])  # type: ignore[list-item]
    assert out["last_crossing"] == {"date": "2024-03-05", "signal": "SELL"}


def test_nan_histogram_is_none() -> None:
    assert snap([1.0, 2.0], histogram=[0.5, NAN])["histogram"] is None


@pytest.mark.parametrize(
    ("values", "histogram", "signals"),
    [
        ([1.0, 2.0], [NAN], [H, H]),
        ([1.0, 2.0], [NAN, NAN], [H]),
        ([1.0], [NAN, NAN], [H, H]),
    ],
)
def test_lengths_must_agree(
    values: list[float], histogram: list[float], signals: list[Signal]
) -> None:
    with pytest.raises(ValueError, match="equal length"):
        snapshot(days(len(values)), values, histogram, signals)


@pytest.mark.parametrize("bad", [0.0, -1.0, NAN, math.inf])
def test_values_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        snapshot(days(3), [1.0, bad, 2.0], [NAN] * 3, [H] * 3)


def test_real_window() -> None:
    with (SERIES_DIR / "USD.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    values = np.array([float(r["mid"]) for r in rows])
    series = macd(values)
    signals = classify(series.histogram)
    window = slice(len(rows) - 90, len(rows))
    out = snapshot(
        [date.fromisoformat(r["effective_date"]) for r in rows[window]],
        values[window],
        series.histogram[window],
        signals[window],
    )
    json.dumps(out, allow_nan=False)
    assert out["points"] == 90
    assert out["from"] == rows[-90]["effective_date"]
    assert out["to"] == "2024-12-11"
    assert out["last"] == 4.0628
    assert out["min"] == min(float(r["mid"]) for r in rows[-90:])
    assert out["max"] == max(float(r["mid"]) for r in rows[-90:])
    assert out["volatility"] is not None
    assert 0.1 < out["volatility"] < 2.0  # a daily FX move, in %
    crossings = [i for i in range(len(rows) - 90, len(rows)) if signals[i] is not H]
    if crossings:
        assert out["last_crossing"] == {
            "date": rows[crossings[-1]]["effective_date"],
            "signal": signals[crossings[-1]].value,
        }
    else:
        assert out["last_crossing"] is None
