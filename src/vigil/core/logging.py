"""Structured logs: one JSON object per line (time, level, logger, module, message), carrying
the request id of the HTTP request (or job) being served and, with tracing on, the trace
id. ``VIGIL_LOG_FORMAT=console`` gives plain lines for humans."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged too.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # the last one: uvicorn's ANSI copy
}


#: The modules a line can belong to; anything else (a library's logger: uvicorn, celery,
#: alembic) is "other". Core's own top-level modules (vigil.cli, vigil.settings) are "core".
MODULES = frozenset({"core", "markets", "network", "reading"})


def module_of(logger: str) -> str:
    """The Vigil module a logger belongs to: vigil.<module>.…, and a job's logger
    vigil.jobs.<module>.<job> by its job's module."""
    parts = logger.split(".")
    if parts[0] != "vigil" or len(parts) < 2:
        return "other"
    name = parts[2] if parts[1] == "jobs" and len(parts) > 2 else parts[1]
    return name if name in MODULES else "core"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "module": module_of(record.name),
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:  # a span is current (tracing on): the line joins its trace
            entry["trace_id"] = f"{span.trace_id:032x}"
            entry["span_id"] = f"{span.span_id:016x}"
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access lines are written by our own middleware, with the request id.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.captureWarnings(True)  # library warnings become log records (JSON lines too)
