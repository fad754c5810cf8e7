"""Everything a process needs, wired once from the settings: database, event bus, job
registry and runner, and the installed modules. The CLI roles, the API and tests build one."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vigil.core.cache import Cache, create_cache, wire_invalidation
from vigil.core.db import Database
from vigil.core.events import EventBus, InProcessEventBus
from vigil.core.jobs import JobRegistry, JobRunner, close_interrupted_runs
from vigil.core.logging import configure_logging
from vigil.core.migrate import upgrade_to_head
from vigil.core.modules import Module, load_modules
from vigil.core.queue import InProcessJobQueue, wire_triggers
from vigil.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    events: EventBus
    registry: JobRegistry
    runner: JobRunner
    queue: InProcessJobQueue
    cache: Cache
    modules: tuple[Module, ...]

    @classmethod
    def create(cls, settings: Settings | None = None, db: Database | None = None) -> Runtime:
        settings = settings or get_settings()
        db = db or Database.from_url(settings.effective_database_url)
        events: EventBus = InProcessEventBus()
        modules = load_modules()
        registry = JobRegistry()
        for module in modules:
            registry.extend(module.jobs)
            for topic, handler in module.event_handlers:
                events.subscribe(topic, handler)
        runner = JobRunner(db, settings, events, registry)
        queue = InProcessJobQueue(runner, registry)
        runner.enqueue = queue.enqueue
        cache = create_cache(settings.redis_url)
        for module in modules:
            wire_triggers(events, queue, module.triggers)
            wire_invalidation(events, cache, module.cache_rules)
        return cls(settings, db, events, registry, runner, queue, cache, modules)

    def migrate(self) -> None:
        upgrade_to_head(self.db.engine)

    def close_interrupted_runs(self) -> int:
        with self.db.session(write=True) as session:
            closed = close_interrupted_runs(session)
        if closed:
            log.warning("closed %d job runs left 'running' by a process that died", closed)
        return closed

    def close(self) -> None:
        self.queue.stop()
        self.db.dispose()


def boot(log_format: str | None = None) -> Runtime:
    """What every process role does first: logging from the settings (``log_format``
    overrides, e.g. plain lines for CLI commands), the runtime, and the schema at head."""
    settings = get_settings()
    configure_logging(settings.log_level, log_format or settings.log_format)
    runtime = Runtime.create(settings)
    runtime.migrate()
    return runtime
