"""core: ops_alerts, the alerts Alertmanager delivers to Vigil's webhook receiver

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.core.db import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ops_alerts",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("alertname", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("generator_url", sa.String(2000), nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("external_url", sa.String(2000), nullable=False),
        sa.Column("first_received_at", UTCDateTime(), nullable=False),
        sa.Column("last_received_at", UTCDateTime(), nullable=False),
        sa.Column("times_received", sa.Integer(), nullable=False),
        sa.UniqueConstraint("fingerprint", name="uq_ops_alerts_fingerprint"),
    )
    op.create_index(
        "ix_ops_alerts_status_starts_at", "ops_alerts", ["status", "starts_at"], unique=False
    )
    op.create_index("ix_ops_alerts_alertname", "ops_alerts", ["alertname"], unique=False)
    op.create_index(
        "ix_ops_alerts_status_ends_at", "ops_alerts", ["status", "ends_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ops_alerts_status_ends_at", table_name="ops_alerts")
    op.drop_index("ix_ops_alerts_alertname", table_name="ops_alerts")
    op.drop_index("ix_ops_alerts_status_starts_at", table_name="ops_alerts")
    op.drop_table("ops_alerts")
