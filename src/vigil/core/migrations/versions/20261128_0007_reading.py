"""reading: books, the users' lists, simple log and timed sessions (issue #8)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vigil.core.db import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _user_id(table: str) -> sa.Column[int]:
    return sa.Column(
        "user_id",
        sa.Integer(),
        sa.ForeignKey("users.id", ondelete="CASCADE", name=f"fk_{table}_user_id_users"),
        nullable=False,
    )


def _book_id(table: str) -> sa.Column[int]:
    return sa.Column(
        "book_id",
        sa.Integer(),
        sa.ForeignKey("books.id", ondelete="RESTRICT", name=f"fk_{table}_book_id_books"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("google_book_id", sa.String(40), nullable=True),
        sa.Column("open_library_key", sa.String(40), nullable=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("author", sa.String(500), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("isbn13", sa.String(13), nullable=True),
        sa.Column("cover_url", sa.String(1000), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("google_book_id", name="uq_books_google_book_id"),
        sa.UniqueConstraint("open_library_key", name="uq_books_open_library_key"),
    )
    op.create_index("ix_books_isbn13", "books", ["isbn13"])
    op.create_table(
        "reading_list",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _user_id("reading_list"),
        _book_id("reading_list"),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("current_page", sa.Integer(), nullable=False),
        sa.Column("page_count_override", sa.Integer(), nullable=True),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "book_id", name="uq_reading_list_user_id_book_id"),
        sa.CheckConstraint(
            "status IN ('tbr', 'reading', 'finished')", name="ck_reading_list_status"
        ),
        sa.CheckConstraint("current_page >= 0", name="ck_reading_list_current_page"),
        sa.CheckConstraint("page_count_override > 0", name="ck_reading_list_page_count_override"),
    )
    op.create_index("ix_reading_list_user_id_status", "reading_list", ["user_id", "status"])
    op.create_table(
        "reading_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _user_id("reading_log"),
        _book_id("reading_log"),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("finished_on", sa.Date(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("finished_on >= started_on", name="ck_reading_log_dates"),
        sa.CheckConstraint("pages > 0", name="ck_reading_log_pages"),
    )
    op.create_index("ix_reading_log_user_id_finished_on", "reading_log", ["user_id", "finished_on"])
    op.create_table(
        "reading_sessions",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        _user_id("reading_sessions"),
        _book_id("reading_sessions"),
        sa.Column("start_time", UTCDateTime(), nullable=False),
        sa.Column("end_time", UTCDateTime(), nullable=True),
        sa.Column("start_page", sa.Integer(), nullable=True),
        sa.Column("end_page", sa.Integer(), nullable=True),
        sa.Column("pages_read", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "end_time IS NULL OR end_time > start_time", name="ck_reading_sessions_times"
        ),
        sa.CheckConstraint("pages_read >= 0", name="ck_reading_sessions_pages_read"),
    )
    op.create_index(
        "ix_reading_sessions_user_id_start_time", "reading_sessions", ["user_id", "start_time"]
    )
    # One running timer per user, enforced by the database (two devices starting at once).
    op.create_index(
        "uq_reading_sessions_open_per_user",
        "reading_sessions",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("end_time IS NULL"),
        postgresql_where=sa.text("end_time IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("reading_sessions")
    op.drop_table("reading_log")
    op.drop_table("reading_list")
    op.drop_index("ix_books_isbn13", table_name="books")
    op.drop_table("books")
