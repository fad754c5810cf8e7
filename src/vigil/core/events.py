"""Publish/subscribe between modules and processes.

The in-process bus delivers events to this process's handlers. When ``VIGIL_REDIS_URL`` is
set, the Redis bus carries them over pub/sub channels (one per topic; names are settings) to
every process that listens, this one included. Redis is optional at run time: while it is
unreachable, events are delivered in this process only, one warning is logged per outage,
``vigil_events_errors_total`` counts the failures, and the listener resubscribes by itself;
the periodic jobs (the brain's watchdog) catch up on what other processes missed.

With tracing on (vigil.core.tracing), an event carries the trace: publishing is a producer
span whose W3C ``traceparent`` (and ``tracestate``) ride in the message's ``trace`` field, and
the listener hands the event to its handlers inside a consumer span, its child. A job that an
event triggers (a Celery task sent by the handler) so continues the trace of the request or
job that published the event. With tracing off nothing is added to the message and received
trace fields are ignored: no span, no propagator call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
import redis
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from prometheus_client import Counter

from vigil.core import tracing
from vigil.core.outage import OutageLog

log = logging.getLogger(__name__)

Payload = dict[str, Any]
Handler = Callable[[str, Payload], None]

EVENTS_PUBLISHED = Counter(
    "vigil_events_published_total", "Events published, by topic and transport.", ["topic", "via"]
)
EVENTS_ERRORS = Counter(
    "vigil_events_errors_total", "Event bus operations that failed (Redis unreachable).", ["op"]
)

CLAIM_SECONDS = 300  # how long a claimed event stays claimed (longer than any redelivery)


class EventBus(Protocol):
    def publish(self, topic: str, payload: Payload) -> None: ...

    def subscribe(self, topic: str, handler: Handler, group: str | None = None) -> None:
        """``group``: of all the processes that subscribe a handler with the same group, only
        one handles each event (competing consumers, e.g. a trigger that queues a job).
        Without a group every process handles every event (e.g. cache invalidation)."""
        ...


class InProcessEventBus:
    """Delivers each event synchronously to every handler of its topic, in subscription
    order. A failing handler is logged and does not stop the others or the publisher."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler, group: str | None = None) -> None:
        with self._lock:
            self._handlers[topic].append(handler)

    def topics(self) -> list[str]:
        with self._lock:
            return [topic for topic, handlers in self._handlers.items() if handlers]

    def publish(self, topic: str, payload: Payload) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
        for handler in handlers:
            try:
                handler(topic, payload)
            except Exception:
                log.exception("event handler failed", extra={"topic": topic})


class RedisEventBus:
    """Events as JSON messages ``{"id", "topic", "payload"}`` on Redis pub/sub channels.

    ``start()`` runs a listener thread that hands each message to this process's handlers;
    a process that only publishes (a CLI command, the ingest worker) need not start it.
    """

    def __init__(
        self,
        url: str,
        channels: Mapping[str, str] | None = None,
        timeout: float = 0.5,
        retry_seconds: float = 1.0,
    ) -> None:
        self._url = url
        self._channels = dict(channels or {})
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._local = InProcessEventBus()
        self._groups: dict[tuple[str, int], str] = {}  # (topic, id(handler)) -> group
        self._retry = retry_seconds
        self._outage = OutageLog(
            log, "Redis event bus", "events stay in this process until it is back"
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()  # set while the listener is subscribed

    def channel(self, topic: str) -> str:
        return self._channels.get(topic, topic)

    def subscribe(self, topic: str, handler: Handler, group: str | None = None) -> None:
        if self._thread is not None:
            raise RuntimeError("subscribe before start(): the listener's channels are fixed")
        if group is not None:
            handler = self._claiming(handler, group)
        self._local.subscribe(topic, handler)

    def _claiming(self, handler: Handler, group: str) -> Handler:
        def claimed(topic: str, payload: Payload) -> None:
            event_id = payload.get("_event_id")
            if event_id is not None and not self._claim(group, str(event_id)):
                return  # another process of the group has it
            handler(topic, payload)

        return claimed

    def _claim(self, group: str, event_id: str) -> bool:
        try:
            key = f"vigil:event-claim:{group}:{event_id}"
            won = self._client.set(key, 1, nx=True, ex=CLAIM_SECONDS)
        except redis.RedisError as exc:
            self._failed("claim", exc)
            return True  # better twice (jobs are idempotent) than never
        return bool(won)

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, topic: str, payload: Payload) -> None:
        body: dict[str, Any] = {"id": uuid.uuid4().hex, "topic": topic, "payload": payload}
        provider = tracing.provider()
        if provider is None:
            self._send(topic, body)
            return
        tracer = provider.get_tracer(__name__)
        with tracer.start_as_current_span(
            f"{topic} publish", kind=SpanKind.PRODUCER, attributes=self._span_attributes(topic)
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)  # the producer span's traceparent (and tracestate)
            body["trace"] = carrier
            self._send(topic, body)

    def _span_attributes(self, topic: str) -> dict[str, str]:
        return {
            "messaging.system": "redis",
            "messaging.destination.name": self.channel(topic),
            "vigil.event.topic": topic,
        }

    def _send(self, topic: str, body: dict[str, Any]) -> None:
        payload: Payload = body["payload"]
        message = orjson.dumps(body)
        try:
            self._client.publish(self.channel(topic), message)
        except redis.RedisError as exc:
            self._failed("publish", exc)
            # Nobody else hears it; this process's handlers still do, and the periodic jobs
            # of the others catch up.
            EVENTS_PUBLISHED.labels(topic, "local").inc()
            self._local.publish(topic, payload)
            return
        self._ok()
        EVENTS_PUBLISHED.labels(topic, "redis").inc()

    def _failed(self, op: str, exc: Exception) -> None:
        EVENTS_ERRORS.labels(op).inc()
        self._outage.failed(exc)

    def _ok(self) -> None:
        self._outage.ok()

    # --- listening ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._listen, name="vigil-events", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.subscribed.clear()

    def _listen(self) -> None:
        topics_by_channel = {self.channel(topic): topic for topic in self._local.topics()}
        if not topics_by_channel:
            return
        # A connection of its own, without a read timeout: it waits for messages; the health
        # check notices a Redis that went away without closing the socket.
        client = redis.Redis.from_url(
            self._url, socket_connect_timeout=1.0, health_check_interval=10
        )
        while not self._stop.is_set():
            pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(*topics_by_channel)
                self._ok()
                self.subscribed.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._deliver(topics_by_channel, message)
            except (redis.RedisError, OSError) as exc:
                self.subscribed.clear()
                self._failed("listen", exc)
                self._stop.wait(self._retry)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    pubsub.close()
        client.close()

    def _deliver(self, topics_by_channel: dict[str, str], message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        try:
            body = orjson.loads(message["data"])
            topic, payload = body["topic"], dict(body["payload"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignored a malformed event on channel %s", channel)
            return
        if topic != topics_by_channel.get(channel):
            log.warning("ignored event %r on channel %s (expected another topic)", topic, channel)
            return
        payload["_event_id"] = body.get("id")
        provider = tracing.provider()
        if provider is None:
            self._local.publish(topic, payload)
            return
        carrier = body.get("trace")
        parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
        tracer = provider.get_tracer(__name__)
        with tracer.start_as_current_span(
            f"{topic} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=self._span_attributes(topic),
        ):
            self._local.publish(topic, payload)


def create_event_bus(
    redis_url: str, channels: Mapping[str, str]
) -> InProcessEventBus | RedisEventBus:
    return RedisEventBus(redis_url, channels) if redis_url else InProcessEventBus()
