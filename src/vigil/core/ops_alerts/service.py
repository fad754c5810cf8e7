"""Storing, listing and pruning the alerts Alertmanager delivers. The caller owns the
transaction (one per notification: all of its alerts or none)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    case,
    cast,
    column,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vigil.core.db import utcnow
from vigil.core.ops_alerts.models import FIRING, RESOLVED, OpsAlert
from vigil.core.ops_alerts.schemas import AlertIn, Notification

#: The page and the API list the worst first: firing before resolved, then by severity.
SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
_COLUMNS = [c.name for c in OpsAlert.__table__.columns if c.name != "id"]
#: The recordset's column types on PostgreSQL (the rest are text).
_PG_TYPES: dict[str, Any] = {
    "labels": postgresql.JSON(), "annotations": postgresql.JSON(), "times_received": Integer(),
    **{t: DateTime(timezone=True) for t in (
        "starts_at", "ends_at", "first_received_at", "last_received_at")},
}  # fmt: skip
_UPDATED = (
    "status", "alertname", "severity", "labels", "annotations", "starts_at", "ends_at",
    "generator_url", "receiver", "external_url", "last_received_at",
)  # fmt: skip


def _pg_recordset(rows: list[dict[str, Any]]) -> Select[Any]:
    """The rows as one JSON parameter, read back by ``json_to_recordset``: a 14-column,
    1,000-row VALUES list has 14,000 placeholders, which psycopg rewrites in Python on every
    call (250 ms); one parameter takes 40 ms in all (bench/test_bench_ops_alerts.py)."""
    document = json.dumps(rows, default=lambda moment: moment.isoformat())
    record = func.json_to_recordset(cast(literal(document), postgresql.JSON)).table_valued(
        *(column(name, _PG_TYPES.get(name, String())) for name in _COLUMNS)
    )
    derived = record.render_derived(name="r", with_types=True)
    return select(*(derived.c[name] for name in _COLUMNS))


def _latest_per_fingerprint(alerts: Sequence[AlertIn]) -> list[AlertIn]:
    """One alert per fingerprint (Alertmanager sends each once; a hand-made notification
    might not): the latest episode, the last one given on a tie."""
    latest: dict[str, AlertIn] = {}
    for alert in alerts:
        seen = latest.get(alert.fingerprint)
        if seen is None or alert.starts_at >= seen.starts_at:
            latest[alert.fingerprint] = alert
    return list(latest.values())


def _row(alert: AlertIn, notification: Notification, now: datetime) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "alertname": alert.labels.get("alertname", ""),
        "severity": alert.labels.get("severity", ""),
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": alert.starts_at,
        "ends_at": alert.end(),
        "generator_url": alert.generator_url,
        "receiver": notification.receiver,
        "external_url": notification.external_url,
        "first_received_at": now,
        "last_received_at": now,
        "times_received": 1,
    }


def receive(session: Session, notification: Notification, now: datetime | None = None) -> int:
    """Upserts the notification's alerts by fingerprint; returns how many rows it inserted
    or updated. A notice about the episode stored (same startsAt) or a later one replaces
    what is stored (firing -> resolved, a new firing after a resolution); one about an
    earlier episode (an older startsAt, a late retry) changes nothing. Delivering the same
    notification again leaves the same state, with ``times_received`` counting it.

    INSERT ... ON CONFLICT (both backends): two deliveries racing on a new fingerprint
    cannot both insert it."""
    now = now or utcnow()
    rows = [_row(a, notification, now) for a in _latest_per_fingerprint(notification.alerts)]
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(OpsAlert).from_select(_COLUMNS, _pg_recordset(rows))
    else:
        statement = sqlite.insert(OpsAlert)
    upsert = statement.on_conflict_do_update(
        index_elements=["fingerprint"],
        set_={
            **{name: statement.excluded[name] for name in _UPDATED},
            "times_received": OpsAlert.times_received + 1,
        },
        where=statement.excluded.starts_at >= OpsAlert.starts_at,
    ).returning(OpsAlert.id)
    # RETURNING counts the rows written (a skipped conflict returns none) on both backends.
    if session.get_bind().dialect.name == "postgresql":
        written = len(session.execute(upsert).all())
    else:
        # Executed with every row: SQLAlchemy sends multi-row INSERTs compiled once.
        written = len(session.execute(upsert, rows).all())
    session.flush()
    return written


def _rank() -> ColumnElement[int]:
    return case(SEVERITY_RANK, value=OpsAlert.severity, else_=len(SEVERITY_RANK))


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    alertname: str | None = None,
    severity: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[OpsAlert], int]:
    """The alerts matching the filters, firing first, then the most severe, then the newest;
    with how many match in all."""
    where: list[ColumnElement[bool]] = []
    if status:
        where.append(OpsAlert.status == status)
    if alertname:
        where.append(OpsAlert.alertname == alertname)
    if severity:
        where.append(OpsAlert.severity == severity)
    total = session.scalar(select(func.count()).select_from(OpsAlert).where(*where)) or 0
    firing_first = case((OpsAlert.status == FIRING, 0), else_=1)
    rows = session.scalars(
        select(OpsAlert)
        .where(*where)
        .order_by(firing_first, _rank(), OpsAlert.starts_at.desc(), OpsAlert.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def expired(before: datetime) -> ColumnElement[bool]:
    """Resolved alerts that ended before ``before`` (housekeeping deletes them)."""
    ended = func.coalesce(OpsAlert.ends_at, OpsAlert.last_received_at)
    return (OpsAlert.status == RESOLVED) & (ended < before)


def count_expired(session: Session, before: datetime) -> int:
    return session.scalar(select(func.count()).select_from(OpsAlert).where(expired(before))) or 0


def delete_expired(session: Session, before: datetime, batch: int) -> int:
    """Deletes up to ``batch`` expired alerts; returns how many."""
    ids = list(
        session.scalars(
            select(OpsAlert.id).where(expired(before)).order_by(OpsAlert.id).limit(batch)
        )
    )
    if ids:
        session.execute(delete(OpsAlert).where(OpsAlert.id.in_(ids)))
    return len(ids)
