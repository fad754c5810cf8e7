"""Configured source instances: an installed plug-in (``kind``) used with its own base URL,
switched on or off, optionally on its own schedule.

They change what the jobs do: a plug-in's enabled instance (the oldest, if several) gives
the base URL its jobs call instead of the setting's; a plug-in whose instances are all
disabled is not called (its jobs end ``skipped`` and say why); an instance's schedule
replaces its plug-in's job schedule the next time the scheduler starts. A plug-in without
instances runs from the settings, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.auth import audit
from vigil.core.problems import BadRequest, Conflict, NotFound
from vigil.core.scheduling import cron_trigger
from vigil.markets.models import SourceInstance
from vigil.markets.sources import SOURCES
from vigil.settings import Settings

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
#: The job that each plug-in's schedule drives.
SCHEDULED_JOB = {"nbp": "markets.sync", "coingecko": "markets.crypto.poll"}
FIELDS = ("name", "kind", "base_url", "enabled", "schedule")
AUDIT_ENTITY = "markets.source"


@dataclass(frozen=True)
class NewInstance:
    name: str
    kind: str
    base_url: str
    enabled: bool = True
    schedule: str | None = None


def create(session: Session, new: NewInstance, now: datetime | None = None) -> SourceInstance:
    now = now or datetime.now(UTC)
    if not NAME.match(new.name):
        raise BadRequest(
            f"name {new.name!r} is not valid: 2-40 lower-case letters, digits or '-', "
            "starting with a letter or digit (e.g. nbp-mirror)"
        )
    if new.kind not in SOURCES:
        raise BadRequest(
            f"unknown kind {new.kind!r}: the installed source plug-ins are "
            + ", ".join(sorted(SOURCES))
        )
    if new.schedule is not None:
        try:
            cron_trigger(new.schedule)
        except ValueError as exc:
            raise BadRequest(f"{exc}; write five cron fields, e.g. '*/5 * * * *'") from None
    if session.scalar(select(SourceInstance.id).where(SourceInstance.name == new.name)):
        raise Conflict(f"a source named {new.name!r} exists already; pick another name")
    row = SourceInstance(
        name=new.name,
        kind=new.kind,
        base_url=new.base_url.rstrip("/"),
        enabled=new.enabled,
        schedule=new.schedule,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, "create", AUDIT_ENTITY, row.name, after=audit.snapshot(row, FIELDS))
    return row


def delete(session: Session, name: str) -> None:
    row = session.scalar(select(SourceInstance).where(SourceInstance.name == name))
    if row is None:
        raise NotFound(f"no configured source {name!r}; GET /api/v1/markets/sources lists them")
    before = audit.snapshot(row, FIELDS)
    session.delete(row)
    session.flush()
    audit.record(session, "delete", AUDIT_ENTITY, name, before=before)


def instances(session: Session) -> list[SourceInstance]:
    return list(session.scalars(select(SourceInstance).order_by(SourceInstance.id)))


@dataclass(frozen=True)
class Effective:
    settings: Settings  # with the instance's base URL, if one applies
    disabled_by: str | None  # the instance that switched the plug-in off, if so


def effective(session: Session, kind: str, settings: Settings) -> Effective:
    """The settings a job of plug-in ``kind`` should use, and whether it is switched off."""
    rows = [r for r in instances(session) if r.kind == kind]
    enabled = [r for r in rows if r.enabled]
    if rows and not enabled:
        return Effective(settings, disabled_by=rows[0].name)
    if not enabled:
        return Effective(settings, None)
    field = SOURCES[kind].base_url_setting
    return Effective(settings.model_copy(update={field: enabled[0].base_url}), None)


def schedule_overrides(session: Session) -> dict[str, str]:
    """Job name -> cron, from the enabled instances that set a schedule."""
    out: dict[str, str] = {}
    for row in instances(session):
        job = SCHEDULED_JOB.get(row.kind)
        if row.enabled and row.schedule and job and job not in out:
            out[job] = row.schedule
    return out
