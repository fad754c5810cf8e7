"""Fast idempotent bulk upserts for ingest jobs.

SQLAlchemy's executemany path spends most of its time binding parameters cell by cell. Here
values are converted column by column, and each column type's bind processor runs once per
distinct value (a price series repeats the same timestamps and fetch time thousands of times).
Then:
- SQLite: one ``executemany`` of ``INSERT … ON CONFLICT DO UPDATE``;
- PostgreSQL: ``COPY`` into a temporary staging table, then one
  ``INSERT … SELECT … ON CONFLICT DO UPDATE``; or, when the caller knows the keys are new,
  ``COPY`` straight into the table (inside a savepoint: if a key turns out to exist after
  all, the batch falls back to the staging path).
Conflicting rows are updated only when their first update column changed, so re-running a
load writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import psycopg
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


def _column_processor(conn: Connection, table: Table, name: str) -> Callable[[Any], Any] | None:
    dialect = conn.dialect
    processor: Callable[[Any], Any] | None = (
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    )
    return processor


def _sqlite_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """Rows with every value bound by its column type (once per distinct value)."""
    out: list[Sequence[Any]] = []
    for name, values in zip(columns, zip(*rows, strict=True), strict=True):
        processor = _column_processor(conn, table, name)
        if processor is None:
            out.append(values)
        elif isinstance(next((v for v in values if v is not None), None), float):
            out.append(list(map(processor, values)))  # floats rarely repeat: no memo
        else:
            out.append(list(map(_memoized(processor), values)))
    return list(zip(*out, strict=True))


def _bound_copy_text(processor: Callable[[Any], Any] | None) -> Callable[[Any], str]:
    if processor is None:
        return _copy_text
    bind = processor
    return lambda value: _copy_text(bind(value))


def _copy_payload(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> str:
    """The rows as COPY text, built column by column in one pass per column: repeated values
    (timestamps, dates, names) are bound and rendered once; numbers go through ``str``."""
    text_columns: list[list[str]] = []
    for name, values in zip(columns, zip(*rows, strict=True), strict=True):
        processor = _column_processor(conn, table, name)
        sample = next((v for v in values if v is not None), None)
        if (
            processor is None
            and None not in values
            and not isinstance(sample, str | date | datetime)
        ):
            text_columns.append(list(map(str, values)))  # ints, Decimals: cheap, rarely equal
            continue
        text_columns.append(list(map(_memoized(_bound_copy_text(processor)), values)))
    return "".join(line + "\n" for line in map("\t".join, zip(*text_columns, strict=True)))


def bulk_upsert(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    key: Sequence[str],
    update: Sequence[str],
    *,
    keys_are_new: bool = False,
) -> None:
    """Inserts ``rows`` (tuples in ``columns`` order); on a ``key`` conflict, updates the
    ``update`` columns when the first of them differs. Runs in the session's transaction.
    ``rows`` must not repeat a key (PostgreSQL refuses to update one row twice).
    ``keys_are_new`` says the caller saw none of these keys stored: PostgreSQL then tries a
    plain ``COPY`` first."""
    if not rows:
        return
    conn = session.connection()
    cols = ", ".join(columns)
    set_clause = ", ".join(f"{c} = excluded.{c}" for c in update)
    target = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {set_clause}"
    first = update[0]

    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) {target} "
            f"WHERE {table.name}.{first} IS NOT excluded.{first}",
            _sqlite_rows(conn, table, columns, rows),
        )
        return
    if conn.dialect.name != "postgresql":
        raise NotImplementedError(
            f"bulk upserts support SQLite and PostgreSQL, not {conn.dialect.name}"
        )

    payload = _copy_payload(conn, table, columns, rows)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor:
        if keys_are_new:
            try:
                with (
                    conn.begin_nested(),
                    cursor.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy,
                ):
                    copy.write(payload)
                return
            except psycopg.errors.UniqueViolation:
                pass  # written meanwhile by someone else: merge through the staging table
        # One staging table per connection, emptied at each commit: creating and dropping a
        # table per batch costs more catalog work than the batch itself.
        staging = f"_bulk_{table.name}"
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name}) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"DELETE FROM {staging}")  # cheap; TRUNCATE makes a new file
        with cursor.copy(f"COPY {staging} ({cols}) FROM STDIN") as copy:
            copy.write(payload)
        cursor.execute(
            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {staging} {target} "
            f"WHERE {table.name}.{first} IS DISTINCT FROM excluded.{first}"
        )
