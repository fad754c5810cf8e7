"""Network tables: the device inventory, the poll state of each device, the samples the
collectors store, and device alerts.

Samples are one long table keyed by (device, metric, ts) — ``icmp.rtt_avg_ms`` and later
``snmp.cpu_pct`` or ``if.<name>.in_bps`` side by side — so a new collector adds metric names,
not tables. Tags are kept as one delimited string (``,core,lab,``): one ``LIKE`` filters them
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UTCDateTime, utcnow


class Device(Base):
    __tablename__ = "network_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    address: Mapped[str] = mapped_column(String(255))  # IPv4, IPv6 or a DNS name
    type: Mapped[str] = mapped_column(String(32), default="other")
    vendor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    platform: Mapped[str | None] = mapped_column(String(100), nullable=True)
    site: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    tags: Mapped[str] = mapped_column(String(1000), default="")  # ",core,lab,"
    parent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("network_devices.id", ondelete="SET NULL"), nullable=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    icmp_interval_seconds: Mapped[int] = mapped_column(Integer, default=60)
    snmp_interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: [{"start": iso, "end": iso, "reason": str}]: alerts of the device are silenced inside.
    maintenance: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    snmp_port: Mapped[int] = mapped_column(Integer, default=161)
    #: "snmp-v2c" | "snmp-v3" | None; the secrets are in ``credentials`` (Fernet, never sent).
    credential_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    credentials: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeviceState(Base):
    """What the collectors last saw of a device, and the counters the down rule runs on."""

    __tablename__ = "network_device_state"

    device_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("network_devices.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # up | down | unknown
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_rtt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_loss_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed polls
    successes: Mapped[int] = mapped_column(Integer, default=0)  # consecutive good polls
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Sample(Base):
    __tablename__ = "network_samples"

    # No foreign key, as for prices: the check costs ingest time; samples of a deleted
    # device are deleted by the service with it.
    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    value: Mapped[float] = mapped_column(Float)

    __table_args__ = {"sqlite_with_rowid": False}


class NetworkAlert(Base):
    """One episode of a device being down: pending → firing → resolved (or pending →
    resolved when it came back before the rule fired)."""

    __tablename__ = "network_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("network_devices.id", ondelete="CASCADE")
    )
    rule: Mapped[str] = mapped_column(String(32))  # device_down
    state: Mapped[str] = mapped_column(String(16))  # pending | firing | resolved
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())  # first failed poll
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Why a due alert did not fire (yet): "parent" (its parent is down) or "maintenance".
    suppressed_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    message: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_network_alerts_device_id_state", "device_id", "state"),
        Index("ix_network_alerts_started_at", "started_at"),
    )
