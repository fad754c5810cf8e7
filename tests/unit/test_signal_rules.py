"""The BUY / HOLD / SELL rule on hand-made histograms, against a plain loop written from
the rule's wording, and incremental == full classification on a real series."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from vigil.markets.analytics.macd import MacdParams, macd, macd_continue
from vigil.markets.analytics.signals import Signal, classify, last_nonzero

SERIES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "nbp" / "series"
NAN = float("nan")
B, H, S = Signal.BUY, Signal.HOLD, Signal.SELL

FloatArray = npt.NDArray[np.float64]


def series(code: str) -> FloatArray:
    with (SERIES_DIR / f"{code}.csv").open(newline="") as f:
        return np.array([float(row["mid"]) for row in csv.DictReader(f)], dtype=np.float64)


def h(*values: float) -> FloatArray:
    return np.array(values, dtype=np.float64)


def reference(histogram: FloatArray, previous_nonzero: float | None = None) -> list[Signal]:
    """The rule as worded, one point at a time."""
    out = []
    last = previous_nonzero
    for value in histogram.tolist():
        if value > 0 and last is not None and last < 0:
            out.append(Signal.BUY)
        elif value < 0 and last is not None and last > 0:
            out.append(Signal.SELL)
        else:
            out.append(Signal.HOLD)
        if value != 0 and not math.isnan(value):  # skip zeros and NaN
            last = value
    return out


@pytest.mark.parametrize(
    ("histogram", "expected"),
    [
        pytest.param(h(-1, 1), [H, B], id="cross-up"),
        pytest.param(h(1, -1), [H, S], id="cross-down"),
        pytest.param(h(0.5, 1, 2), [H, H, H], id="stays-positive"),
        pytest.param(h(-0.5, -1, -2), [H, H, H], id="stays-negative"),
        pytest.param(h(1), [H], id="first-point-positive"),
        pytest.param(h(-1), [H], id="first-point-negative"),
        pytest.param(h(NAN, NAN, NAN, 1, -1), [H, H, H, H, S], id="warm-up-then-first-is-hold"),
        pytest.param(h(NAN, NAN, -2, 3), [H, H, H, B], id="warm-up-then-cross"),
        pytest.param(h(-1, 0, 0, 1), [H, H, H, B], id="zeros-between-signs-buy-once"),
        pytest.param(h(1, 0, 0, -1), [H, H, H, S], id="zeros-between-signs-sell-once"),
        pytest.param(h(-1, 0, -1), [H, H, H], id="touch-zero-from-below"),
        pytest.param(h(1, 0, 1), [H, H, H], id="touch-zero-from-above"),
        pytest.param(h(0, 0, 1, -1), [H, H, H, S], id="leading-zeros"),
        pytest.param(h(-1, NAN, 1), [H, H, B], id="nan-is-skipped-like-zero"),
        pytest.param(h(-1, 1, -1, 1), [H, B, S, B], id="whipsaw"),
        pytest.param(h(-1e-300, 5e-324), [H, B], id="tiny-values-count"),
        pytest.param(h(0, 0), [H, H], id="all-zero"),
        pytest.param(h(), [], id="empty"),
    ],
)
def test_hand_made(histogram: FloatArray, expected: list[Signal]) -> None:
    assert classify(histogram) == expected
    assert reference(histogram) == expected


@pytest.mark.parametrize(
    ("histogram", "previous", "expected"),
    [
        (h(1), -0.5, [B]),
        (h(1), 0.5, [H]),
        (h(-1), 0.5, [S]),
        (h(0, 0, 2), -3.0, [H, H, B]),
        (h(NAN, -2), 1.0, [H, S]),
        (h(1, 2), None, [H, H]),
    ],
)
def test_previous_nonzero(
    histogram: FloatArray, previous: float | None, expected: list[Signal]
) -> None:
    assert classify(histogram, previous) == expected


@pytest.mark.parametrize("previous", [0.0, -0.0, NAN])
def test_previous_nonzero_must_be_nonzero(previous: float) -> None:
    with pytest.raises(ValueError, match="non-zero"):
        classify(h(1.0), previous)


def test_last_nonzero() -> None:
    assert last_nonzero(h()) is None
    assert last_nonzero(h(NAN, NAN)) is None
    assert last_nonzero(h(0, 0)) is None
    assert last_nonzero(h(1, -2, 0, NAN, 0)) == -2.0
    value = last_nonzero(h(NAN, 0.25))
    assert value == 0.25
    assert type(value) is float


def test_bad_shape() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        classify(np.zeros((3, 2)))


def test_signal_values_are_json_strings() -> None:
    assert Signal.BUY == "BUY"
    assert json.dumps(classify(h(-1, 1, -1))) == '["HOLD", "BUY", "SELL"]'
    assert all(type(s) is Signal for s in classify(h(NAN, 1, -1, 0)))


def test_matches_the_plain_rule_on_random_histograms() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(0, 60))
        values = rng.choice([-2.0, -1.0, 0.0, 0.0, 1.0, 3.0, NAN], size=n)
        previous = [None, -1.0, 2.0][int(rng.integers(0, 3))]
        assert classify(values, previous) == reference(values, previous)


@pytest.mark.parametrize("code", ["USD", "EUR", "CHF", "GBP"])
def test_real_series(code: str) -> None:
    histogram = macd(series(code)).histogram
    signals = classify(histogram)
    assert signals == reference(histogram)
    crossings = [s for s in signals if s is not Signal.HOLD]
    assert len(crossings) > 100
    # crossings alternate: BUY, SELL, BUY, ...
    assert all(a is not b for a, b in itertools.pairwise(crossings))
    assert signals[:34] == [Signal.HOLD] * 34  # warm-up and the first defined point


@pytest.mark.parametrize("code", ["USD", "GBP"])
def test_incremental_equals_full(code: str) -> None:
    histogram = macd(series(code)).histogram
    full = classify(histogram)
    for i in [0, 1, 33, 34, 35, *range(36, len(histogram), 61), len(histogram)]:
        assert classify(histogram[i:], last_nonzero(histogram[:i])) == full[i:], i


@pytest.mark.parametrize("params", [MacdParams(), MacdParams(5, 35, 5)])
def test_incremental_pipeline_equals_full(params: MacdParams) -> None:
    """As the brain runs it: MACD from a stored state, then the signals of the new days
    with the last non-zero histogram value stored before them."""
    values = series("EUR")
    full = classify(macd(values, params).histogram)
    for i in range(params.lookback, len(values) - 1, 173):
        head = macd(values[: i + 1], params)
        assert head.state is not None
        tail = macd_continue(values[i + 1 :], head.state, params)
        assert classify(tail.histogram, last_nonzero(head.histogram)) == full[i + 1 :], i
