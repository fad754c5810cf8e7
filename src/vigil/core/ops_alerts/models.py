"""The ``ops_alerts`` table: one row per Alertmanager alert (its fingerprint), updated by
every notification about it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UTCDateTime
from vigil.core.models import BigIntId

FIRING, RESOLVED = "firing", "resolved"


class OpsAlert(Base):
    __tablename__ = "ops_alerts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    #: Alertmanager's hash of the alert's labels: the natural key.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    # Copied out of the labels for filtering and ordering ('' when the label is absent).
    alertname: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    generator_url: Mapped[str] = mapped_column(String(2000))
    receiver: Mapped[str] = mapped_column(String(200))
    external_url: Mapped[str] = mapped_column(String(2000))
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    times_received: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_ops_alerts_status_starts_at", "status", "starts_at"),
        Index("ix_ops_alerts_alertname", "alertname"),
        Index("ix_ops_alerts_status_ends_at", "status", "ends_at"),
    )
