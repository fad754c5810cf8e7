"""The clock: runs registered jobs on their cron schedules (APScheduler, UTC) inside the
process, or sends them to the workers. ``vigil up`` and ``vigil scheduler`` use it;
``upcoming_runs`` serves the API even where no scheduler runs in that process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from vigil.core.jobs import JobRegistry, JobRunner
from vigil.core.leader import LeaderLock
from vigil.core.progress import LogProgress
from vigil.settings import Settings

log = logging.getLogger(__name__)


def cron_trigger(expression: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expression, timezone=UTC)
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None


@dataclass(frozen=True)
class Upcoming:
    job: str
    cron: str
    next_runs: list[datetime]
    description: str


def upcoming_runs(
    registry: JobRegistry,
    settings: Settings,
    prefix: str = "",
    count: int = 3,
    now: datetime | None = None,
    overrides: Mapping[str, str] | None = None,
) -> list[Upcoming]:
    now = now or datetime.now(UTC)
    out = []
    for spec in registry:
        if not spec.name.startswith(prefix):
            continue
        override = (overrides or {}).get(spec.name)
        interval = None if override else spec.interval(settings)
        if interval:  # its phase is the scheduler's start: these are approximate
            every = [now + timedelta(seconds=interval * k) for k in range(1, count + 1)]
            out.append(Upcoming(spec.name, f"@every {interval:g}s", every, spec.description))
            continue
        cron = override or spec.cron(settings)
        if not cron:
            continue
        trigger = cron_trigger(cron)
        runs: list[datetime] = []
        previous: datetime | None = None
        moment = now
        for _ in range(count):
            fire = trigger.get_next_fire_time(previous, moment)
            if fire is None:
                break
            runs.append(fire.astimezone(UTC))
            previous, moment = fire, fire
        out.append(Upcoming(spec.name, cron, runs, spec.description))
    return out


class Scheduler:
    """Adds every scheduled job to an APScheduler background scheduler. One instance of a
    job at a time (the runner's lock also guards across processes); missed runs coalesce.

    Embedded, a due job runs in the scheduler's thread. Distributed, ``submit`` sends it to
    the workers instead, and ``leader`` gates every tick: only the active scheduler submits.
    """

    def __init__(
        self,
        runner: JobRunner,
        settings: Settings,
        submit: Callable[[str], None] | None = None,
        leader: LeaderLock | None = None,
    ) -> None:
        self.runner = runner
        self.settings = settings
        self._submit = submit or self._run
        self._leader = leader
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def _run(self, name: str) -> None:
        self.runner.run(name, progress=LogProgress(logging.getLogger(f"vigil.jobs.{name}")))

    def _fire(self, name: str) -> None:
        if self._leader is not None and not self._leader.is_leader:
            log.debug("standby scheduler: %s left to the active one", name)
            return
        try:
            self._submit(name)
        except Exception:  # the next tick tries again; the clock must keep going
            log.exception("could not start scheduled job %s", name, extra={"job": name})

    def start(self, run_on_start: bool = True, overrides: Mapping[str, str] | None = None) -> None:
        """``overrides``: job name -> cron replacing the job's own schedule."""
        if self._leader is not None:
            self._leader.try_acquire()  # decided before the start-up jobs fire
            self._leader.start()
        for spec in self.runner.registry:
            override = (overrides or {}).get(spec.name)
            cron = override or spec.cron(self.settings)
            interval = None if override else spec.interval(self.settings)
            if interval:
                self._scheduler.add_job(
                    self._fire,
                    IntervalTrigger(seconds=interval, timezone=UTC),
                    args=[spec.name],
                    id=spec.name,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=max(1, int(interval)),
                )
                log.info("scheduled %s every %gs", spec.name, interval)
            if cron:
                self._scheduler.add_job(
                    self._fire,
                    cron_trigger(cron),
                    args=[spec.name],
                    id=spec.name,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=3600,
                )
                log.info("scheduled %s at '%s' (UTC)", spec.name, cron)
            if run_on_start and spec.run_on_start:
                self._scheduler.add_job(
                    self._fire,
                    "date",
                    args=[spec.name],
                    id=f"{spec.name}:start",
                    max_instances=1,
                )
        self._scheduler.start()

    def shutdown(self, wait: bool = False) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        if self._leader is not None:
            self._leader.release()
