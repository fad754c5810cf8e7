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

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
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

    __table_args__ = (
        # Rollups and retention read and delete by time across devices.
        Index("ix_network_samples_ts", "ts"),
        {"sqlite_with_rowid": False},
    )


class SampleRollup(Base):
    """Downsampled samples: per device, metric and bucket of ``period`` seconds (300: the
    5 min tier from the raw samples, 3600: the 1 h tier from the 5 min one), the average,
    minimum, maximum and how many raw samples they summarise."""

    __tablename__ = "network_rollups"

    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    avg: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_network_rollups_period_bucket", "period", "bucket"),
        {"sqlite_with_rowid": False},
    )


class AlertRule(Base):
    """An alert rule for one device (``device_id``) or every device with a tag (``tag``)."""

    __tablename__ = "network_alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    #: device_down | packet_loss | rtt | interface_down | interface_errors | cpu | memory
    kind: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("network_devices.id", ondelete="CASCADE"), nullable=True, index=True
    )
    tag: Mapped[str | None] = mapped_column(String(50), nullable=True)
    #: % (loss, CPU, memory), ms (RTT), errors per second (interface errors); None otherwise.
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: device_down: consecutive failed polls before it fires.
    failures: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The pending period: how long the condition must hold before the alert fires.
    for_seconds: Mapped[int] = mapped_column(Integer, default=0)
    #: Hysteresis: consecutive good observations before an alert is resolved.
    recover_after: Mapped[int] = mapped_column(Integer, default=2)
    #: Interface rules: a glob over interface names (None: every interface).
    interface: Mapped[str | None] = mapped_column(String(64), nullable=True)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NetworkAlert(Base):
    """One episode of a rule's condition on a device (and, for interface rules, one
    interface: ``subject``): pending → firing → (acknowledged →) resolved, or pending →
    resolved when it cleared before the rule fired. ``rule_id`` None: the built-in down
    rule of the settings."""

    __tablename__ = "network_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("network_devices.id", ondelete="CASCADE")
    )
    rule: Mapped[str] = mapped_column(String(32))  # the rule's kind, e.g. device_down
    rule_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("network_alert_rules.id", ondelete="SET NULL"), nullable=True
    )
    subject: Mapped[str] = mapped_column(String(64), default="", server_default=text("''"))
    severity: Mapped[str] = mapped_column(
        String(16), default="critical", server_default=text("'critical'")
    )
    state: Mapped[str] = mapped_column(String(16))  # pending | firing | acknowledged | resolved
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())  # first failed poll
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Why a due alert did not fire (yet): "parent" (its parent is down) or "maintenance".
    suppressed_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    message: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)  # the last observed
    #: Consecutive good observations (the hysteresis count) and the last one's time: an
    #: observation is used once, so evaluating twice changes nothing.
    ok_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(320), nullable=True)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_network_alerts_device_id_state", "device_id", "state"),
        Index("ix_network_alerts_started_at", "started_at"),
    )
