"""signals and analysis snapshots (the Charon brain)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.core.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("asset_code", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("signal", sa.String(4), nullable=False),
        sa.Column("macd", sa.Float(), nullable=False),
        sa.Column("signal_line", sa.Float(), nullable=False),
        sa.Column("histogram", sa.Float(), nullable=False),
        sa.Column("ema_fast", sa.Float(), nullable=False),
        sa.Column("ema_slow", sa.Float(), nullable=False),
        sa.Column("fast_period", sa.Integer(), nullable=False),
        sa.Column("slow_period", sa.Integer(), nullable=False),
        sa.Column("signal_period", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("generated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("asset_code", "as_of", name="pk_signals"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "analysis_snapshots",
        sa.Column("asset_code", sa.String(32), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("generated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("asset_code", "window_days", name="pk_analysis_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("analysis_snapshots")
    op.drop_table("signals")
