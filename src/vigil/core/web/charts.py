"""Server-side helpers for the charts that vigil.js draws and the inline SVG sparklines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson

_EPOCH = date(1970, 1, 1)


def day_seconds(day: date) -> int:
    """A business date as the chart's time: 00:00 UTC of that day, in seconds."""
    return (day - _EPOCH).days * 86_400


def instant_seconds(ts: datetime) -> int:
    return int(ts.astimezone(UTC).timestamp())


def chart_json(spec: dict[str, Any]) -> str:
    """The spec as JSON that is safe inside ``<script type="application/json">``: a "<"
    in a string can never close the script element."""
    text = orjson.dumps(spec, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return text.replace("<", "\\u003c")


def sparkline_points(values: Sequence[float], width: int = 120, height: int = 32) -> str:
    """An SVG polyline's ``points`` for values scaled into width by height (1 px margin)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2) / (len(values) - 1)
    return " ".join(
        f"{1 + i * step:.1f},{1 + (height - 2) * (1 - (v - low) / span):.1f}"
        for i, v in enumerate(values)
    )
