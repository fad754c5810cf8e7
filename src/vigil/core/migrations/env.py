"""Alembic environment. Migrations are the only way the schema is made (tests included).
Run them with `vigil migrate`; `vigil.core.migrate` calls this with a live connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import vigil.core.auth.models
import vigil.core.models
import vigil.core.ops_alerts.models  # noqa: F401
from vigil.core.db import Base, make_engine
from vigil.core.modules import load_modules

load_modules()  # imports every module's models so autogenerate sees all tables
config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
