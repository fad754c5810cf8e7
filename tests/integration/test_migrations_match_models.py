"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL:
Alembic's autogenerate, run against a database migrated to head, finds nothing to add,
drop or change (tables, columns, types, nullability, indexes, unique constraints)."""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import vigil.core.auth.models
import vigil.core.models
import vigil.core.ops_alerts.models  # noqa: F401  (core's tables)
from vigil.core.db import Base
from vigil.core.modules import load_modules


def test_migrations_match_the_models(migrated_engine: Engine) -> None:
    load_modules()  # every module's tables
    with migrated_engine.connect() as conn, warnings.catch_warnings():
        # The functional index on lower(email) cannot be reflected (SQLAlchemy and Alembic
        # say so and skip it); everything else is compared.
        warnings.filterwarnings("ignore", message=".*expression-based index '?uq_users_email_lower")
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences: list[Any] = compare_metadata(context, Base.metadata)
    assert differences == [], "\n".join(str(d) for d in differences)
