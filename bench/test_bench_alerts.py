"""Issue #5's alert target: "Alert evaluation over 1,000 assets x 1,440 one-minute points:
target < 50 ms per tick". Plus a figure without a target: downsampling a 50,000-point
window for the prices API.

    .venv/bin/python -m pytest bench/test_bench_alerts.py -p no:cacheprovider --benchmark-only

The workload: 1,000 assets, each a day of one-minute prices (1,440 ``(datetime, Decimal)``
points, as the job reads them from the price table), seeded random walks with crypto-like
volatility (0.15 % a minute, heavier tails for a tenth of the assets). Each asset has one
rule: threshold 1 %, 2 %, 3 % or 5 % over 5m, 15m, 1h or 24h (both directions, one-hour
cooldown), a mix standing for the global default and per-asset overrides.

Timed, one round per tick: for every asset, ``change_pct`` over its rule's window at the
tick's ``now``, then ``evaluate`` with the state the previous tick left (the states carry
over, so alerts, quiet re-runs and reminders all happen). The ticks are the last 300
minutes of the day in order. Not timed: reading the prices from the database and writing
alert rows, which are the job's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from vigil.markets.analytics.alerts import Alert, AlertRule, RuleState, change_pct, evaluate
from vigil.markets.analytics.windows import Point, downsample

ASSETS = 1_000
POINTS = 1_440
TICKS = 300
TARGET_SECONDS = 0.050
DOWNSAMPLE_POINTS = 50_000
DOWNSAMPLE_MAX = 1_000
DOWNSAMPLE_ROUNDS = 20
T0 = datetime(2024, 11, 26, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _walk(rng: np.random.Generator, n: int, start: float, sigma: float) -> list[Decimal]:
    steps = rng.standard_t(df=3 if sigma > 0.0015 else 30, size=n) * sigma
    prices = start * np.exp(np.cumsum(steps))
    return [Decimal(f"{p:.6g}") for p in prices]


@pytest.fixture(scope="module")
def workload() -> tuple[list[list[Point]], list[AlertRule]]:
    rng = np.random.default_rng(20241126)
    times = [T0 + i * MINUTE for i in range(POINTS)]
    series: list[list[Point]] = []
    for asset in range(ASSETS):
        sigma = 0.003 if asset % 10 == 0 else 0.0015
        start = float(10 ** rng.uniform(-2, 5))  # from a cent to 100,000 (BTC)
        series.append(list(zip(times, _walk(rng, POINTS, start, sigma), strict=True)))
    thresholds = [Decimal(t) for t in ("1", "2", "3", "5")]
    windows = [timedelta(minutes=m) for m in (5, 15, 60, 1440)]
    rules = [
        AlertRule(threshold_pct=thresholds[i % 4], window=windows[(i // 4) % 4])
        for i in range(ASSETS)
    ]
    return series, rules


def test_alert_tick_1000_assets(
    benchmark: BenchmarkFixture,
    workload: tuple[list[list[Point]], list[AlertRule]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    series, rules = workload
    states: list[RuleState | None] = [None] * ASSETS
    ticks = iter(T0 + (POINTS - TICKS + i) * MINUTE for i in range(TICKS))
    fired: list[Alert] = []

    def next_tick() -> tuple[tuple[datetime], dict[str, Any]]:
        return (next(ticks),), {}

    def tick(now: datetime) -> None:
        for i, points in enumerate(series):
            rule = rules[i]
            change = change_pct(points, rule.window, now)
            if change is None:
                continue
            alert, states[i] = evaluate(rule, change, states[i], now)
            if alert is not None:
                fired.append(alert)

    benchmark.group = "alerts: change_pct + evaluate, one tick"
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        tick, setup=next_tick, rounds=TICKS, iterations=1
    )
    assert fired, "the workload should make some rules fire"
    assert len({a.triggered_at for a in fired}) > 1

    stats: Any = benchmark.stats.stats  # type: ignore[union-attr]
    seconds = np.array(stats.data, dtype=np.float64)
    p50, p95 = np.percentile(seconds, [50, 95])
    mean = float(seconds.mean())
    first = sum(a.triggered_at == T0 + (POINTS - TICKS) * MINUTE for a in fired)
    benchmark.extra_info.update(
        assets=ASSETS,
        points_per_asset=POINTS,
        ticks=TICKS,
        alerts=len(fired),
        alerts_first_tick=first,
        p50_seconds=round(float(p50), 5),
        p95_seconds=round(float(p95), 5),
        target_seconds=TARGET_SECONDS,
        target_met=bool(p95 < TARGET_SECONDS),
    )
    verdict = "met" if p95 < TARGET_SECONDS else "MISSED"
    with capsys.disabled():
        print(
            f"\n[bench] alert tick, {ASSETS} assets x {POINTS} one-minute points, {TICKS} ticks: "
            f"mean {mean * 1000:.1f} ms, p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms "
            f"(min {seconds.min() * 1000:.1f} ms, max {seconds.max() * 1000:.1f} ms), "
            f"{mean / ASSETS * 1e6:.1f} us per asset; {len(fired)} alerts ({first} on the "
            f"first tick, when every rule is armed); target < {TARGET_SECONDS * 1000:g} ms "
            f"per tick (p95) {verdict}"
        )


def test_downsample_50000_points(
    benchmark: BenchmarkFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(5)
    times = [T0 + i * MINUTE for i in range(DOWNSAMPLE_POINTS)]
    points = list(zip(times, _walk(rng, DOWNSAMPLE_POINTS, 97_000.0, 0.0015), strict=True))

    benchmark.group = "windows: downsample"
    out: list[Point] = benchmark.pedantic(  # type: ignore[no-untyped-call]
        downsample,
        args=(points, DOWNSAMPLE_MAX),
        rounds=DOWNSAMPLE_ROUNDS,
        iterations=1,
        warmup_rounds=1,
    )
    assert len(out) <= DOWNSAMPLE_MAX
    assert max(v for _, v in out) == max(v for _, v in points)

    stats: Any = benchmark.stats.stats  # type: ignore[union-attr]
    benchmark.extra_info.update(points=DOWNSAMPLE_POINTS, max_points=DOWNSAMPLE_MAX, kept=len(out))
    with capsys.disabled():
        print(
            f"\n[bench] downsample {DOWNSAMPLE_POINTS} one-minute points to at most "
            f"{DOWNSAMPLE_MAX}: mean {stats.mean * 1000:.1f} ms (min {stats.min * 1000:.1f} ms, "
            f"max {stats.max * 1000:.1f} ms, {stats.rounds} rounds), {len(out)} points kept; "
            f"no target"
        )
