"""Publish/subscribe between modules. Core ships the in-process bus; a Redis-backed bus with
the same interface replaces it when ``VIGIL_REDIS_URL`` is set (distributed mode)."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Payload = dict[str, Any]
Handler = Callable[[str, Payload], None]


class EventBus(Protocol):
    def publish(self, topic: str, payload: Payload) -> None: ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...


class InProcessEventBus:
    """Delivers each event synchronously to every handler of its topic, in subscription
    order. A failing handler is logged and does not stop the others or the publisher."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler) -> None:
        with self._lock:
            self._handlers[topic].append(handler)

    def publish(self, topic: str, payload: Payload) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
        for handler in handlers:
            try:
                handler(topic, payload)
            except Exception:
                log.exception("event handler failed", extra={"topic": topic})
