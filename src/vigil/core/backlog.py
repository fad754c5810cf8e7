"""The jobs backlog as a Prometheus metric: ``vigil_jobs_backlog{queue,where}``, the jobs
waiting to start, read when /metrics is scraped.

Two places hold waiting jobs: the broker (Celery's queues, which the workers consume; a
worker reports the queues it serves) and a process's in-process queue (``vigil up``, and the
jobs a worker keeps for itself). A gauge set on every enqueue would miss the broker's side,
which other processes fill, so the figures are asked for at scrape time instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vigil.core.outage import OutageLog

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

#: A source of waiting jobs: where they wait ("broker" or "process") and the count per queue.
BacklogSource = Callable[[], tuple[str, dict[str, int]]]

NAME = "vigil_jobs_backlog"
HELP = "Jobs waiting to start, by queue and where they wait (broker or process)."


class JobBacklog(Collector):
    def __init__(self) -> None:
        self._sources: list[BacklogSource] = []
        self._lock = threading.Lock()

    def attach(self, source: BacklogSource) -> Callable[[], None]:
        """Adds a source; returns the function that removes it."""
        with self._lock:
            self._sources.append(source)

        def detach() -> None:
            with self._lock:
                if source in self._sources:
                    self._sources.remove(source)

        return detach

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily(NAME, HELP, labels=["queue", "where"])]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            sources = list(self._sources)
        totals: dict[tuple[str, str], int] = {}
        for source in sources:
            where, counts = source()
            for queue, count in counts.items():
                totals[(queue, where)] = totals.get((queue, where), 0) + count
        family = GaugeMetricFamily(NAME, HELP, labels=["queue", "where"])
        for (queue, where), count in sorted(totals.items()):
            family.add_metric([queue, where], count)
        yield family


BACKLOG = JobBacklog()
REGISTRY.register(BACKLOG)

_broker_outage = OutageLog(log, "the broker", "the jobs backlog is not reported")


def broker_source(app: Celery, queues: Sequence[str]) -> BacklogSource:
    """The messages waiting in the broker's ``queues`` (a passive declare: Redis and AMQP
    alike). When the broker cannot be asked, nothing is reported for it: a missing series,
    not a false zero."""

    def read() -> tuple[str, dict[str, int]]:
        counts: dict[str, int] = {}
        try:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                for queue in queues:
                    # A channel each: on AMQP, asking for a queue that does not exist closes
                    # the channel that asked.
                    channel = connection.channel()
                    try:
                        counts[queue] = int(channel.queue_declare(queue=queue, passive=True)[1])
                    except connection.channel_errors:  # never declared: nobody sent to it yet
                        counts[queue] = 0
                    finally:
                        channel.close()
        except Exception as exc:  # a scrape must answer whatever the broker does
            _broker_outage.failed(exc)
            return "broker", {}
        _broker_outage.ok()
        return "broker", counts

    return read
