"""Chart specs (see core/web/static/vigil.js) for the price dashboards: the daily series
with its Bollinger band and BUY/SELL markers over a MACD pane, and weekly candles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from vigil.core.web.charts import chart_json, day_seconds
from vigil.markets.dashboards import BAND_K, BAND_PERIOD, PriceDashboard

PRICE_COLOR, BAND_COLOR = "#2f6fdb", "#8c8c8c"
MACD_COLOR, SIGNAL_COLOR = "#2f6fdb", "#e07b00"


def _compact(values: Any, digits: int) -> dict[str, Any]:
    """``{"values": [...], "start": i}``: the values from the first defined one (an
    indicator's warm-up is NaN at the start, and left out), rounded to ``digits``."""
    x = np.round(np.asarray(values, dtype=np.float64), digits)
    defined = np.flatnonzero(~np.isnan(x))
    start = int(defined[0]) if len(defined) else len(x)
    return {"values": x[start:].tolist(), "start": start}


def _memoized(board: PriceDashboard, build: Callable[[PriceDashboard], str]) -> str:
    """``build(board)``, kept with the board's stored history and range (see
    ``PriceDashboard.memo``): a refresh of an unchanged range costs no JSON."""
    if build not in board.memo:
        board.memo[build] = build(board)
    return str(board.memo[build])


def price_chart(board: PriceDashboard) -> str:
    return _memoized(board, _price_chart)


def candle_chart(board: PriceDashboard) -> str:
    return _memoized(board, _candle_chart)


def _price_chart(board: PriceDashboard) -> str:
    markers = [[day_seconds(c.day), c.signal.value] for c in board.crossings]
    band = f"Bollinger {BAND_PERIOD}, {BAND_K:g}σ"  # noqa: RUF001
    spec = {
        "times": [day_seconds(d) for d in board.days],
        "panes": [
            {
                "height": 3,
                "series": [
                    {"type": "line", "name": "upper", "title": band, "color": BAND_COLOR,
                     "lineWidth": 1, "dashed": True, **_compact(board.bands.upper, 4)},
                    {"type": "line", "name": "lower", "color": BAND_COLOR, "lineWidth": 1,
                     "dashed": True, **_compact(board.bands.lower, 4)},
                    {"type": "line", "name": "price", "title": board.asset.code,
                     "color": PRICE_COLOR, "lineWidth": 2, "lastValue": True,
                     **_compact(board.values, 6), "markers": markers},
                ],
            },
            {
                "height": 1,
                "series": [
                    {"type": "histogram", "name": "histogram",
                     **_compact(board.macd.histogram, 6)},
                    {"type": "line", "name": "macd", "title": "MACD", "color": MACD_COLOR,
                     "lineWidth": 1, **_compact(board.macd.macd, 6)},
                    {"type": "line", "name": "signal", "title": "signal", "color": SIGNAL_COLOR,
                     "lineWidth": 1, **_compact(board.macd.signal, 6)},
                ],
            },
        ],
    }  # fmt: skip
    return chart_json(spec)


def _candle_chart(board: PriceDashboard) -> str:
    data = [[day_seconds(c.day), c.open, c.high, c.low, c.close] for c in board.candles]
    spec = {"panes": [{"series": [{"type": "candles", "name": "weekly", "data": data}]}]}
    return chart_json(spec)
