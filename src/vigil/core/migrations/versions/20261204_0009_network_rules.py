"""network module: alert rules, alert acknowledgement and history, sample rollups

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.core.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "network_alert_rules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("tag", sa.String(50), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=True),
        sa.Column("for_seconds", sa.Integer(), nullable=False),
        sa.Column("recover_after", sa.Integer(), nullable=False),
        sa.Column("interface", sa.String(64), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["network_devices.id"],
            name="fk_network_alert_rules_device_id_network_devices",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_network_alert_rules_device_id", "network_alert_rules", ["device_id"], unique=False
    )
    with op.batch_alter_table("network_alerts") as batch:
        batch.add_column(sa.Column("rule_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("subject", sa.String(64), nullable=False, server_default=sa.text("''"))
        )
        batch.add_column(
            sa.Column(
                "severity", sa.String(16), nullable=False, server_default=sa.text("'critical'")
            )
        )
        batch.add_column(sa.Column("value", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("ok_count", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("observed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("acknowledged_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(320), nullable=True))
        batch.add_column(sa.Column("notified_at", UTCDateTime(), nullable=True))
        batch.create_foreign_key(
            "fk_network_alerts_rule_id_network_alert_rules",
            "network_alert_rules",
            ["rule_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "network_rollups",
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("bucket", UTCDateTime(), nullable=False),
        sa.Column("avg", sa.Float(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period", "device_id", "metric", "bucket"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_network_rollups_period_bucket", "network_rollups", ["period", "bucket"], unique=False
    )
    op.create_index("ix_network_samples_ts", "network_samples", ["ts"], unique=False)
    _timescale()


def _timescale() -> None:
    """With the TimescaleDB extension installed (PostgreSQL only), the samples become a
    hypertable with compression after a day. Untested here: the extension is not installed
    on the machines Vigil is tested on; without it nothing happens."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    present = bind.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    ).scalar()
    if not present:
        return
    op.execute(
        "SELECT create_hypertable('network_samples', 'ts', "
        "migrate_data => true, if_not_exists => true)"
    )
    op.execute(
        "ALTER TABLE network_samples SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'device_id, metric')"
    )
    op.execute("SELECT add_compression_policy('network_samples', INTERVAL '1 day')")


def downgrade() -> None:
    op.drop_index("ix_network_samples_ts", table_name="network_samples")
    op.drop_table("network_rollups")
    with op.batch_alter_table("network_alerts") as batch:
        batch.drop_constraint("fk_network_alerts_rule_id_network_alert_rules", type_="foreignkey")
        for column in (
            "notified_at",
            "acknowledged_by",
            "acknowledged_at",
            "observed_at",
            "ok_count",
            "value",
            "severity",
            "subject",
            "rule_id",
        ):
            batch.drop_column(column)
    op.drop_index("ix_network_alert_rules_device_id", table_name="network_alert_rules")
    op.drop_table("network_alert_rules")
