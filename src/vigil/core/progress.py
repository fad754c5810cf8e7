"""Progress reporting for long jobs: a Rich bar in the CLI, log lines in the server."""

from __future__ import annotations

import logging
import time
from typing import Protocol


class Progress(Protocol):
    def start(self, description: str, total: int) -> None: ...

    def advance(self, steps: int = 1, note: str = "") -> None: ...

    def finish(self) -> None: ...


class LogProgress:
    """Logs a line when a step completes, at most every ``every_seconds`` (and at the end)."""

    def __init__(self, logger: logging.Logger, every_seconds: float = 2.0) -> None:
        self._log = logger
        self._every = every_seconds
        self._description = ""
        self._total = 0
        self._done = 0
        self._last = 0.0

    def start(self, description: str, total: int) -> None:
        self._description, self._total, self._done = description, total, 0
        self._last = time.monotonic()
        self._log.info("%s: %d steps", description, total, extra={"total": total})

    def advance(self, steps: int = 1, note: str = "") -> None:
        self._done += steps
        now = time.monotonic()
        if self._done >= self._total or now - self._last >= self._every:
            self._last = now
            pct = 100.0 * self._done / self._total if self._total else 100.0
            self._log.info(
                "%s: %d/%d (%.0f%%) %s",
                self._description,
                self._done,
                self._total,
                pct,
                note,
                extra={"done": self._done, "total": self._total},
            )

    def finish(self) -> None:
        pass


class NullProgress:
    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1, note: str = "") -> None:
        pass

    def finish(self) -> None:
        pass
