"""MACD (12/26/9) and BUY/HOLD/SELL classification of 35 daily series of 6,300 points each:
every NBP currency and gold over their full history, recomputed from scratch. A figure, not
pass/fail.

    .venv/bin/python -m pytest bench/test_bench_macd.py -p no:cacheprovider --benchmark-only

The series are seeded random walks built from real NBP behaviour: each draws its daily log
returns (with replacement) from the 23 years of USD, EUR, CHF and GBP mids in
``tests/fixtures/nbp/series/``, and starts at one of their real levels. Timed: the full
``macd()`` + ``classify()`` of all 35 series, one call per series, as a full recompute does.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from vigil.markets.analytics.macd import MacdParams, macd
from vigil.markets.analytics.signals import Signal, classify

SERIES_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "nbp" / "series"
SERIES = 35
POINTS = 6_300
ROUNDS = 20
TARGET_SECONDS = 0.200


def _real(code: str) -> npt.NDArray[np.float64]:
    with (SERIES_DIR / f"{code}.csv").open(newline="") as f:
        return np.array([float(r["mid"]) for r in csv.DictReader(f)], dtype=np.float64)


@pytest.fixture(scope="module")
def workload() -> list[npt.NDArray[np.float64]]:
    real = [_real(code) for code in ("USD", "EUR", "CHF", "GBP")]
    returns = np.concatenate([np.diff(np.log(values)) for values in real])
    starts = np.concatenate(real)
    rng = np.random.default_rng(20241211)
    return [
        float(rng.choice(starts)) * np.exp(np.cumsum(rng.choice(returns, POINTS)))
        for _ in range(SERIES)
    ]


def test_macd_and_signals_all_series(
    benchmark: BenchmarkFixture,
    workload: list[npt.NDArray[np.float64]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = MacdParams()

    def run() -> list[list[Signal]]:
        return [classify(macd(values, params).histogram) for values in workload]

    benchmark.group = "analytics: MACD + signals, full recompute"
    result: list[list[Signal]] = benchmark.pedantic(  # type: ignore[no-untyped-call]
        run, rounds=ROUNDS, iterations=1, warmup_rounds=1
    )
    assert len(result) == SERIES
    assert all(len(labels) == POINTS for labels in result)
    crossings = sum(label is not Signal.HOLD for labels in result for label in labels)
    assert crossings > 0

    stats: Any = benchmark.stats.stats  # type: ignore[union-attr]
    mean, low, high = stats.mean, stats.min, stats.max
    points = SERIES * POINTS
    benchmark.extra_info.update(
        series=SERIES,
        points=points,
        crossings=crossings,
        target_seconds=TARGET_SECONDS,
        target_met=mean < TARGET_SECONDS,
        points_per_second=round(points / mean),
    )
    verdict = "met" if mean < TARGET_SECONDS else "MISSED"
    with capsys.disabled():
        print(
            f"\n[bench] MACD 12/26/9 + signals, {SERIES} series x {POINTS} points: "
            f"mean {mean * 1000:.1f} ms (min {low * 1000:.1f} ms, max {high * 1000:.1f} ms, "
            f"{stats.rounds} rounds), {points / mean:,.0f} points/s, {crossings} crossings; "
            f"target < {TARGET_SECONDS * 1000:g} ms {verdict}"
        )
