"""Chart specs (see core/web/static/vigil.js) of the Miner page (rows written per run, one
pane per job) and the crypto board (one asset's prices over a window)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from vigil.core.models import JobLog
from vigil.core.web.charts import chart_json, instant_seconds

PRICE_COLOR = "#2f6fdb"
JOB_COLORS = ("#2f6fdb", "#e07b00", "#6f42c1", "#1b7f3b", "#b3261e", "#0b7285", "#8c8c8c")


def _by_second(points: Iterable[tuple[int, float]], add: bool) -> list[list[float]]:
    """[[t, v], …] in time order with one point per second (the chart's resolution): values
    of the same second are summed (``add``) or the last one kept."""
    out: dict[int, float] = {}
    for t, v in points:
        out[t] = out.get(t, 0) + v if add else v
    return [[t, out[t]] for t in sorted(out)]


def rows_per_run_chart(runs: Sequence[JobLog]) -> str:
    """One histogram pane per job type: rows written by each run, at its start. Job types
    in name order, so a job keeps its pane and colour from one refresh to the next."""
    by_job: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        by_job.setdefault(run.job_type, []).append(
            (instant_seconds(run.started_at), run.rows_written)
        )
    panes = [
        {
            "height": 1,
            "series": [
                {
                    "type": "histogram",
                    "name": job,
                    "title": job,
                    "color": JOB_COLORS[i % len(JOB_COLORS)],
                    "lastValue": True,
                    "data": _by_second(points, add=True),
                }
            ],
        }
        for i, (job, points) in enumerate(sorted(by_job.items()))
    ]
    return chart_json({"intraday": True, "panes": panes})


def price_window_chart(code: str, points: Sequence[tuple[datetime, Decimal]]) -> str:
    data = _by_second(((instant_seconds(ts), float(p)) for ts, p in points), add=False)
    series = {
        "type": "line",
        "name": "price",
        "title": code,
        "color": PRICE_COLOR,
        "lineWidth": 2,
        "lastValue": True,
        "data": data,
    }
    return chart_json({"intraday": True, "panes": [{"series": [series]}]})
