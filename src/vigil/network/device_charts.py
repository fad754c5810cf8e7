"""Chart specs (see core/web/static/vigil.js) of the device page: RTT, loss and jitter,
each interface's traffic and errors per second, CPU and memory, from the time buckets of
``device_queries.chart_series`` and ``error_rates`` (strictly increasing times, as
lightweight-charts needs)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

from vigil.core.web.charts import chart_json
from vigil.network.device_queries import Bucket

BLUE, ORANGE, GREY, RED, GREEN = "#2f6fdb", "#e07b00", "#8c8c8c", "#b3261e", "#1b7f3b"


def _data(buckets: Sequence[Bucket], *, peak: bool = False) -> list[list[float]]:
    """[[t, v], …]: each bucket's mean, or its highest value with ``peak`` (a loss spike
    stays visible in a week's view)."""
    return [[t, round(high if peak else mean, 3)] for t, mean, high in buckets]


def _line(
    name: str, title: str, color: str, points: Sequence[Bucket], **extra: Any
) -> dict[str, Any]:
    return {
        "type": "line",
        "name": name,
        "title": title,
        "color": color,
        "data": _data(points),
        **extra,
    }


def rtt_loss_chart(series: dict[str, list[Bucket]]) -> str:
    """RTT (average, with the minimum and maximum dashed) above, loss % below, and the
    jitter (the mean difference of a poll's successive RTTs) in a third pane when the
    device has some."""
    rtt = [
        _line(
            "rtt_avg", "RTT avg ms", BLUE, series["icmp.rtt_avg_ms"], lineWidth=2, lastValue=True
        ),
        _line("rtt_min", "min", GREY, series["icmp.rtt_min_ms"], dashed=True, lineWidth=1),
        _line("rtt_max", "max", ORANGE, series["icmp.rtt_max_ms"], dashed=True, lineWidth=1),
    ]
    loss = {
        "type": "histogram",
        "name": "loss",
        "title": "loss %",
        "color": RED,
        "lastValue": True,
        "data": _data(series["icmp.loss_pct"], peak=True),
    }
    panes = [{"height": 3, "series": rtt}, {"height": 1, "series": [loss]}]
    if jitter := series.get("icmp.jitter_ms"):
        line = _line("jitter", "jitter ms", GREEN, jitter, lineWidth=1, lastValue=True)
        panes.append({"height": 1, "series": [line]})
    return chart_json({"intraday": True, "panes": panes})


def traffic_chart(
    name: str,
    inbound: Sequence[Bucket],
    outbound: Sequence[Bucket],
    errors_in: Sequence[Bucket] = (),
    errors_out: Sequence[Bucket] = (),
) -> str:
    """An interface's bits per second in and out above, and below (when its error
    counters are stored) its errors per second in and out."""
    series = [
        _line("in", f"{name} in bps", BLUE, inbound, lineWidth=2, lastValue=True),
        _line("out", f"{name} out bps", ORANGE, outbound, lineWidth=2, lastValue=True),
    ]
    panes: list[dict[str, Any]] = [{"height": 3, "series": series}]
    if errors_in or errors_out:
        errors = [
            _line("err_in", f"{name} in errors/s", RED, errors_in, lineWidth=1, lastValue=True),
            _line("err_out", f"{name} out errors/s", GREY, errors_out, lineWidth=1, dashed=True),
        ]
        panes.append({"height": 1, "series": errors})
    return chart_json({"intraday": True, "panes": panes})


def cpu_mem_chart(cpu: Sequence[Bucket], mem: Sequence[Bucket]) -> str:
    series = []
    if cpu:
        series.append(_line("cpu", "CPU %", BLUE, cpu, lineWidth=2, lastValue=True))
    if mem:
        series.append(_line("mem", "memory %", GREEN, mem, lineWidth=2, lastValue=True))
    return chart_json({"intraday": True, "panes": [{"series": series}]})


# --- the devices table's RTT sparklines ----------------------------------------------------

SPARK_WIDTH, SPARK_HEIGHT = 120, 32
NO_SPARK = Markup('<span class="muted">\u2013</span>')


@lru_cache(maxsize=128)
def _points_format(count: int) -> str:
    """``"1,%.1f 3,%.1f …"``: the x of ``count`` points across the width, fixed for a
    count, so a row formats only its y values, in one ``%`` (a 200-row table draws 12,000
    points: one f-string each took a quarter of the table's time); a whole x without its
    ".0" (60 points are 2 px apart: 24 KB less of a 200-row table)."""
    step = (SPARK_WIDTH - 2) / (count - 1)
    return " ".join(f"{1 + i * step:.1f}".removesuffix(".0") + ",%.1f" for i in range(count))


@lru_cache(maxsize=2048)
def sparkline(values: tuple[float, ...], label: str) -> Markup:
    """The SVG of ``_macros.html``'s ``sparkline`` (the same markup and, to the rounding
    of the last digit, the same points as ``core.web.charts.sparkline_points``; a whole x
    without its ".0"), built here once per row instead of by a macro call with its
    escaping; a dash for fewer than two values. Kept for the same values and label: a
    refresh before a device's next poll draws nothing again."""
    if len(values) < 2:
        return NO_SPARK
    low = min(values)
    scale = (SPARK_HEIGHT - 2) / ((max(values) - low) or 1.0)
    bottom = SPARK_HEIGHT - 1 + low * scale  # y = bottom - v * scale: the lowest at the bottom
    points = _points_format(len(values)) % tuple([bottom - v * scale for v in values])
    return Markup(
        f'<svg class="sparkline" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" '
        f'viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" role="img" aria-label="{escape(label)}">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{points}"/>'
        "</svg>"
    )
