"""alert rules, fired alerts and each rule's state per asset (the telemetry board)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.core.db import ExactDecimal, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("asset_code", sa.String(32), nullable=True),
        sa.Column("threshold_pct", ExactDecimal(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("cooldown_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_alert_rules_asset_code", "alert_rules", ["asset_code"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("asset_code", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("change_pct", ExactDecimal(), nullable=False),
        sa.Column("threshold_pct", ExactDecimal(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("start_price", ExactDecimal(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("end_price", ExactDecimal(), nullable=False),
        sa.Column("triggered_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_alerts_asset_code_id", "alerts", ["asset_code", "id"])
    op.create_table(
        "alert_states",
        sa.Column("asset_code", sa.String(32), primary_key=True),
        sa.Column("rule_id", sa.Integer(), primary_key=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
    op.drop_index("ix_alerts_asset_code_id", "alerts")
    op.drop_table("alerts")
    op.drop_index("ix_alert_rules_asset_code", "alert_rules")
    op.drop_table("alert_rules")
