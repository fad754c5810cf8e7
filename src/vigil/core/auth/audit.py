"""The audit log: who did what, when, from where. Rows are added to the caller's session, so
they commit (or roll back) with the change they describe.

Who and from where come from the request: the policy dependency sets :data:`actor_var`
(the identity and the client address) and the request id is the one every log line carries.
Jobs and CLI commands act as ``system`` unless they set an actor themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.core.auth.models import AuditEntry
from vigil.core.logging import request_id_var


@dataclass(frozen=True)
class Actor:
    name: str  # email, "service:<name>", "system", "anonymous"
    user_id: int | None = None
    ip: str | None = None


SYSTEM = Actor("system")
actor_var: ContextVar[Actor] = ContextVar("vigil_actor", default=SYSTEM)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = actor_var.set(actor)
    try:
        yield
    finally:
        actor_var.reset(token)


def _plain(value: Any) -> Any:
    """A JSON-safe form of a column value."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def snapshot(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: _plain(getattr(row, f)) for f in fields}


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{field: {"before": …, "after": …}}`` for the fields that changed (every field of a
    created or deleted entity)."""
    before, after = before or {}, after or {}
    changes: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"before": old, "after": new}
    return changes


def record(
    session: Session,
    action: str,
    entity: str,
    entity_id: object = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: str | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    who = actor or actor_var.get()
    changes = diff(before, after) if before is not None or after is not None else None
    entry = AuditEntry(
        at=now or datetime.now(UTC),
        actor_user_id=who.user_id,
        actor=who.name[:320],
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        changes=changes,
        ip=who.ip,
        request_id=request_id_var.get(),
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session,
    *,
    user_id: int | None = None,
    actor: str | None = None,
    entity: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """One page of the log, newest first, and the number of matching entries."""
    stmt = select(AuditEntry)
    if user_id is not None:
        stmt = stmt.where(AuditEntry.actor_user_id == user_id)
    if actor is not None:
        stmt = stmt.where(func.lower(AuditEntry.actor) == actor.lower())
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity == entity)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total
