"""Everything a process needs, wired once from the settings: database, event bus, job
registry and runner, and the installed modules. The CLI roles, the API and tests build one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from vigil.core import housekeeping, tracing
from vigil.core.backlog import BACKLOG
from vigil.core.cache import Cache, create_cache, wire_invalidation
from vigil.core.db import Database
from vigil.core.events import EventBus, RedisEventBus, create_event_bus
from vigil.core.jobs import JobRegistry, JobRunner, close_interrupted_runs
from vigil.core.logging import configure_logging
from vigil.core.migrate import upgrade_to_head
from vigil.core.modules import Module, load_modules
from vigil.core.queue import InProcessJobQueue, JobQueue, RoutedJobQueue, wire_triggers
from vigil.core.worker import CeleryJobQueue
from vigil.settings import Settings, get_settings

log = logging.getLogger(__name__)


Role = Literal["embedded", "api", "scheduler", "worker"]


@dataclass
class Runtime:
    settings: Settings
    db: Database
    events: EventBus
    registry: JobRegistry
    runner: JobRunner
    queue: InProcessJobQueue  # the jobs that run in this process
    dispatch: RoutedJobQueue  # where this process sends jobs (here or to the workers)
    cache: Cache
    modules: tuple[Module, ...]
    role: Role = "embedded"
    #: Removes this runtime's in-process queue from the jobs backlog metric (close()).
    _stop_reporting: Callable[[], None] = field(default=lambda: None, repr=False)

    @classmethod
    def create(
        cls,
        settings: Settings | None = None,
        db: Database | None = None,
        role: Role = "embedded",
        queues: frozenset[str] | None = None,
    ) -> Runtime:
        """``role`` decides what runs here: ``embedded`` (also CLI commands) runs every job in this
        process; ``worker`` runs the jobs of ``queues`` (all queues when None) and sends the
        rest to the broker; ``api`` and ``scheduler`` send jobs to the broker and react to
        no trigger. Without a broker every role runs jobs here, as embedded."""
        settings = settings or get_settings()
        db = db or Database.from_url(settings.effective_database_url)
        if tracing.setup(settings, role):  # off (nothing installed) unless OTEL_TRACES_EXPORTER
            tracing.instrument_engine(db.engine)
        events: EventBus = create_event_bus(settings.redis_url, settings.event_channels)
        modules = load_modules()
        registry = JobRegistry()
        registry.extend(housekeeping.JOBS)
        for module in modules:
            registry.extend(module.jobs)
            for topic, handler in module.event_handlers:
                events.subscribe(topic, handler)
        runner = JobRunner(db, settings, events, registry)
        queue = InProcessJobQueue(runner, registry)
        remote: JobQueue | None = None
        local_queues: frozenset[str] | None = None
        if role in ("api", "scheduler", "worker") and settings.effective_broker_url:
            remote = CeleryJobQueue(settings, registry)
            local_queues = (queues or job_queues(registry)) if role == "worker" else frozenset()
        dispatch = RoutedJobQueue(registry, queue, remote, local_queues)
        runner.enqueue = dispatch.enqueue
        cache = create_cache(settings.redis_url)
        for module in modules:
            if role != "api":  # the API runs no jobs: it only listens for cache invalidation
                local = tuple(t for t in module.triggers if dispatch.runs_here(t.job))
                wire_triggers(events, queue, local)
            wire_invalidation(events, cache, module.cache_rules)
        runtime = cls(settings, db, events, registry, runner, queue, dispatch, cache, modules, role)
        runtime._stop_reporting = BACKLOG.attach(lambda: ("process", queue.backlog()))
        return runtime

    @property
    def distributed(self) -> bool:
        """Whether jobs of other queues go to a broker rather than run here."""
        return self.dispatch.local_queues is not None

    def start_listening(self) -> None:
        """Starts receiving events published by other processes (Redis bus only)."""
        if isinstance(self.events, RedisEventBus):
            self.events.start()

    def schedule_overrides(self) -> dict[str, str]:
        """Every module's schedule overrides (job name -> cron), read from the database."""
        out: dict[str, str] = {}
        with self.db.session() as session:
            for module in self.modules:
                if module.schedule_overrides is not None:
                    out.update(module.schedule_overrides(session))
        return out

    def stop_listening(self) -> None:
        if isinstance(self.events, RedisEventBus):
            self.events.stop()

    def migrate(self) -> None:
        upgrade_to_head(self.db.engine)

    def close_interrupted_runs(self) -> int:
        with self.db.session(write=True) as session:
            closed = close_interrupted_runs(session)
        if closed:
            log.warning("closed %d job runs left 'running' by a process that died", closed)
        return closed

    def close(self) -> None:
        self._stop_reporting()
        self.stop_listening()
        self.queue.stop()
        self.dispatch.close()
        self.db.dispose()


def job_queues(registry: JobRegistry) -> frozenset[str]:
    return frozenset(spec.queue for spec in registry)


def boot(
    log_format: str | None = None,
    role: Role = "embedded",
    queues: frozenset[str] | None = None,
) -> Runtime:
    """What every process role does first: logging from the settings (``log_format``
    overrides, e.g. plain lines for CLI commands), the runtime, and the schema at head."""
    settings = get_settings()
    configure_logging(settings.log_level, log_format or settings.log_format)
    runtime = Runtime.create(settings, role=role, queues=queues)
    runtime.migrate()
    return runtime
