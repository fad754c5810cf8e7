"""network module: devices, their poll state, samples, device alerts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.core.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "network_devices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("vendor", sa.String(100), nullable=True),
        sa.Column("platform", sa.String(100), nullable=True),
        sa.Column("site", sa.String(100), nullable=True),
        sa.Column("tags", sa.String(1000), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("icmp_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("snmp_interval_seconds", sa.Integer(), nullable=True),
        sa.Column("maintenance", sa.JSON(), nullable=False),
        sa.Column("snmp_port", sa.Integer(), nullable=False),
        sa.Column("credential_kind", sa.String(16), nullable=True),
        sa.Column("credentials", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("name", name="uq_network_devices_name"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["network_devices.id"],
            name="fk_network_devices_parent_id_network_devices",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_network_devices_site", "network_devices", ["site"])
    op.create_table(
        "network_device_state",
        sa.Column("device_id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_poll_at", UTCDateTime(), nullable=True),
        sa.Column("last_ok_at", UTCDateTime(), nullable=True),
        sa.Column("last_rtt_ms", sa.Float(), nullable=True),
        sa.Column("last_loss_pct", sa.Float(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["network_devices.id"],
            name="fk_network_device_state_device_id_network_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "network_samples",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "metric", "ts", name="pk_network_samples"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "network_alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("suppressed_by", sa.String(16), nullable=True),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["network_devices.id"],
            name="fk_network_alerts_device_id_network_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_network_alerts_device_id_state", "network_alerts", ["device_id", "state"])
    op.create_index("ix_network_alerts_started_at", "network_alerts", ["started_at"])


def downgrade() -> None:
    op.drop_table("network_alerts")
    op.drop_table("network_samples")
    op.drop_table("network_device_state")
    op.drop_index("ix_network_devices_site", table_name="network_devices")
    op.drop_table("network_devices")
