"""Fast idempotent bulk upserts for ingest jobs.

SQLAlchemy's executemany path spends most of its time binding parameters cell by cell. Here
values are converted column by column, and each column type's bind processor runs once per
distinct value (a price series repeats the same timestamps and fetch time thousands of times).
Then:
- SQLite: one ``executemany`` of ``INSERT … ON CONFLICT DO UPDATE``;
- PostgreSQL: ``COPY`` into a temporary staging table, then one
  ``INSERT … SELECT … ON CONFLICT DO UPDATE``.
Conflicting rows are updated only when their first update column changed, so re-running a
load writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.orm import Session

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _memoized(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    cache: dict[Any, Any] = {}

    def convert_once(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            result = cache[value] = convert(value)
            return result
        except TypeError:  # unhashable (e.g. JSON documents)
            return convert(value)

    return convert_once


def _copy_text(value: Any) -> str:
    """A value in COPY's text format (PostgreSQL parses str() of numbers, dates, datetimes)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def _bound_columns(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[Sequence[Any]]:
    """The rows transposed to columns, each value run through its column type's processor."""
    dialect = conn.dialect
    out: list[Sequence[Any]] = []
    for name, values in zip(columns, zip(*rows, strict=True), strict=True):
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        out.append(values if processor is None else list(map(_memoized(processor), values)))
    return out


def bulk_upsert(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """Inserts ``rows`` (tuples in ``columns`` order); on a ``key`` conflict, updates the
    ``update`` columns when the first of them differs. Runs in the session's transaction.
    ``rows`` must not repeat a key (PostgreSQL refuses to update one row twice)."""
    if not rows:
        return
    conn = session.connection()
    data = _bound_columns(conn, table, columns, rows)
    cols = ", ".join(columns)
    set_clause = ", ".join(f"{c} = excluded.{c}" for c in update)
    target = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {set_clause}"
    first = update[0]

    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) {target} "
            f"WHERE {table.name}.{first} IS NOT excluded.{first}",
            list(zip(*data, strict=True)),
        )
    elif conn.dialect.name == "postgresql":
        text_columns = [list(map(_memoized(_copy_text), values)) for values in data]
        payload = "".join(line + "\n" for line in map("\t".join, zip(*text_columns, strict=True)))
        # One staging table per connection, emptied at each commit: creating and dropping a
        # table per batch costs more catalog work than the batch itself.
        staging = f"_bulk_{table.name}"
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name}) "
                "ON COMMIT DELETE ROWS"
            )
            cursor.execute(f"DELETE FROM {staging}")  # cheap; TRUNCATE makes a new file
            with cursor.copy(f"COPY {staging} ({cols}) FROM STDIN") as copy:
                copy.write(payload)
            cursor.execute(
                f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {staging} {target} "
                f"WHERE {table.name}.{first} IS DISTINCT FROM excluded.{first}"
            )
    else:
        raise NotImplementedError(
            f"bulk upserts support SQLite and PostgreSQL, not {conn.dialect.name}"
        )
