"""Jobs over Celery, for the distributed mode.

Every job travels as one generic task, ``vigil.run_job(name, params)``, on the queue its spec
names (``ingest``, ``analytics``, …); the worker runs it through the same :class:`JobRunner`
as the embedded mode, so the job writes its one ``jobs_log`` row and takes its lock the same
way. Modules declare jobs only; nothing in them knows Celery.

Delivery: a task is acknowledged after it ran (``acks_late``), so a worker killed mid-job
leaves it to another worker once ``VIGIL_JOB_VISIBILITY_TIMEOUT`` has passed; a job that
failed is recorded as ``failed`` and not retried by Celery (its schedule or the next event
runs it again). Workers use threads: jobs wait on HTTP and the database, and the process's
event listener and coalescing queue live beside them.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from vigil.core.backlog import BACKLOG, broker_source
from vigil.core.jobs import JobRegistry
from vigil.core.progress import LogProgress
from vigil.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

    from vigil.core.runtime import Runtime

log = logging.getLogger(__name__)

TASK_NAME = "vigil.run_job"


def create_celery(settings: Settings) -> Celery:
    from celery import Celery  # noqa: PLC0415 - only the distributed roles pay for the import

    broker = settings.effective_broker_url
    if not broker:
        raise RuntimeError(
            "the distributed roles need a broker: set VIGIL_REDIS_URL (or VIGIL_BROKER_URL)"
        )
    app = Celery("vigil", broker=broker, set_as_current=False)
    app.conf.update(
        task_default_queue="default",
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a long backfill must not hold other jobs hostage
        broker_transport_options={
            "visibility_timeout": settings.job_visibility_timeout,
            # How often a worker looks for tasks of dead workers whose visibility timeout
            # passed (kombu's default sweep is every 100 s whatever the timeout).
            "unacked_restore_interval": max(1, min(60, int(settings.job_visibility_timeout / 4))),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        # A scheduler tick must not hang while the broker is away: fail fast, log, go on.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        worker_hijack_root_logger=False,  # our JSON logging stays in charge
        worker_redirect_stdouts=False,
    )
    return app


class CeleryJobQueue:
    """Sends jobs to the workers serving their queue."""

    def __init__(self, settings: Settings, registry: JobRegistry) -> None:
        self._app = create_celery(settings)
        self._registry = registry

    def enqueue(self, name: str, params: dict[str, Any]) -> None:
        spec = self._registry.get(name)
        self._app.send_task(TASK_NAME, args=[name, dict(params)], queue=spec.queue)
        log.info("sent job %s to queue %s", name, spec.queue, extra={"job": name})

    def close(self) -> None:
        self._app.close()


def run_worker(runtime: Runtime, queues: list[str], concurrency: int) -> int:
    """Consumes ``queues`` until SIGTERM/SIGINT (warm shutdown: running jobs finish).
    Returns the exit code."""
    app = create_celery(runtime.settings)

    @app.task(name=TASK_NAME)  # type: ignore[untyped-decorator]
    def run_job(name: str, params: dict[str, Any]) -> None:
        progress = LogProgress(logging.getLogger(f"vigil.jobs.{name}"))
        runtime.runner.run(name, params, progress=progress)

    worker = app.Worker(
        hostname=f"vigil@{socket.gethostname()}.{os.getpid()}",
        queues=queues,
        pool_cls="threads",
        concurrency=concurrency,
        loglevel=runtime.settings.log_level,
        without_gossip=True,
        without_mingle=True,
        quiet=True,
    )
    log.info("worker consuming %s with %d threads", ", ".join(queues), concurrency)
    stop_reporting = BACKLOG.attach(broker_source(app, queues))  # /metrics: jobs waiting
    try:
        worker.start()
    finally:
        stop_reporting()
    return int(worker.exitcode or 0)
