"""One warning per outage of an optional dependency (Redis), not one per failed call: the
first failure logs that it is unavailable and what happens meanwhile, the first success
after it logs that it is back."""

from __future__ import annotations

import logging
import threading


class OutageLog:
    def __init__(self, log: logging.Logger, what: str, meanwhile: str, back: str = "") -> None:
        self._log, self._what, self._meanwhile, self._back = log, what, meanwhile, back
        self._down = False
        self._lock = threading.Lock()

    def failed(self, exc: Exception) -> None:
        with self._lock:
            first, self._down = not self._down, True
        if first:
            self._log.warning("%s unavailable (%s); %s", self._what, exc, self._meanwhile)

    def ok(self) -> bool:
        """Records a success; True when it ends an outage."""
        if not self._down:  # the common case, without the lock
            return False
        with self._lock:
            back, self._down = self._down, False
        if back:
            suffix = f"; {self._back}" if self._back else ""
            self._log.warning("%s reachable again%s", self._what, suffix)
        return back
