"""initial schema: jobs_log, assets, prices

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.core.db import ExactDecimal, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs_log",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("job_type", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("rows_written", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs_log"),
    )
    op.create_index("ix_jobs_log_job_type_started_at", "jobs_log", ["job_type", "started_at"])
    op.create_index("ix_jobs_log_status", "jobs_log", ["status"])

    op.create_table(
        "assets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("quote", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assets"),
        sa.UniqueConstraint("code", name="uq_assets_code"),
    )
    op.create_table(
        "prices",
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=True),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", "ts", name="pk_prices"),
        # SQLite: store rows in primary-key order, so one asset's series is read sequentially.
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("prices")
    op.drop_table("assets")
    op.drop_index("ix_jobs_log_status", table_name="jobs_log")
    op.drop_index("ix_jobs_log_job_type_started_at", table_name="jobs_log")
    op.drop_table("jobs_log")
