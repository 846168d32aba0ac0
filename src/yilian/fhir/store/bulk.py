"""Many rows into one table, straight through the driver (the store's versions and index rows,
the audit trail's entries)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Boolean, Connection, Numeric, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from yilian.kit.dbtypes import UtcDateTime

# (leading values, rows): each row a tuple of the other columns, in `BulkInsert.rest` order.
Group = tuple[tuple[Any, ...], Sequence[tuple[Any, ...]]]


# PostgreSQL: up to this many rows go as one INSERT, more by COPY. Measured, 11-column
# index rows: one INSERT of 5 rows 0.42 ms against COPY's 0.48, of 20 rows about even
# (0.93 / 0.87), of 80 rows 3.1 ms against 2.4-2.9 (and 7.2 ms as psycopg's %s query).
FEW_ROWS = 16
# PostgreSQL: a write's batches of up to this many rows go `pipelined` (a resource or a few).
PIPELINED_ROWS = 64
# SQLite: rows go in multi-row INSERTs of these sizes (largest first), so a connection's
# statement cache holds a few statements, whatever the count; a statement stays within
# SQLite's bound-variable limit (999 before SQLite 3.32).
SQLITE_CHUNKS = (256, 64, 16, 4, 1)
SQLITE_MAX_VARIABLES = 999
_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]  # to name column types


class BulkInsert:
    """Many rows into one table, straight through the driver.

    The bulk of a write is version and index rows, and SQLAlchemy's per-row parameter
    processing cost more than the database's own work. SQLite gets multi-row INSERTs of up
    to 64 rows, the values converted as SQLAlchemy itself stores them (UTC text, REAL,
    0/1): the driver's executemany steps each row alone and lets go of the GIL for each
    (~20% more time alone, several times more beside a busy event loop); PostgreSQL gets
    COPY, several times faster than executemany, psycopg adapting the values natively (or,
    for up to `FEW_ROWS` rows, one multi-row INSERT: one round trip where COPY takes two).
    Rows come as tuples, in groups that share their leading columns (a resource's pk and
    type): a row is one tuple joined to its group's, not a dict read column by column.
    """

    def __init__(self, table: Table, lead: tuple[str, ...]) -> None:
        # The database numbers the rows (a surrogate key): not a column we send.
        self.rest = [c.name for c in table.columns if c.name not in lead
                     and not (c.primary_key and c.autoincrement is True)]
        names = [*lead, *self.rest]
        self.table, self.columns = table.name, names
        self._values: dict[int, str] = {}  # row count → INSERT statement
        columns = [table.c[name] for name in names]
        joined = ", ".join(names)
        marks = ", ".join("?" for _ in names)
        self._sqlite_sql = {
            size: f"INSERT INTO {table.name} ({joined}) VALUES "
            + ", ".join(f"({marks})" for _ in range(size))
            for size in SQLITE_CHUNKS if size == 1 or size * len(names) <= SQLITE_MAX_VARIABLES
        }
        self._sqlite_returning: dict[tuple[str, ...], dict[int, str]] = {}
        self.copy_sql = f"COPY {table.name} ({joined}) FROM STDIN"
        # PostgreSQL, rows whose generated columns are wanted back: one array per column,
        # one statement whatever the count (prepared after a few uses, where a VALUES list
        # is a new statement for every count).
        arrays = ", ".join(f"${number}::{column.type.compile(dialect=_POSTGRESQL)}[]"
                           for number, column in enumerate(columns, start=1))
        self._unnest_sql = f"INSERT INTO {table.name} ({joined}) SELECT * FROM unnest({arrays})"
        self.sqlite_conversions = [
            (index, convert)
            for index, column in enumerate(columns)
            if (convert := _sqlite_converter(column.type)) is not None
        ]

    def _values_sql(self, count: int) -> str:
        """PostgreSQL: an INSERT of `count` rows with the server's own numbered parameters
        ($1, $2 and on) for a RawCursor: psycopg would otherwise parse a query of more than 50
        parameters afresh on every execution (it caches only short ones), a regex over it all."""
        found = self._values.get(count)
        if found is None:
            width = len(self.columns)
            rows = ", ".join(
                "(" + ", ".join(f"${row * width + column}" for column in range(1, width + 1))
                + ")" for row in range(count))
            found = self._values[count] = (
                f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {rows}")
        return found

    def run(self, conn: Connection, groups: Sequence[Group]) -> None:
        """Insert the groups' rows."""
        self.insert(conn, [lead + row for lead, rows in groups for row in rows])

    def insert(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows given as tuples in `columns` order (on SQLite the list is converted in
        place). The driver's errors come out as SQLAlchemy's (IntegrityError...), as they
        would from Connection.execute."""
        if rows:
            self._through_driver(conn, rows, ())

    def insert_returning(self, conn: Connection, rows: list[tuple[Any, ...]],
                         returning: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """Insert rows as `insert` does; the `returning` columns of each inserted row, in no
        particular order (neither database promises RETURNING's order): return a key too."""
        return self._through_driver(conn, rows, returning) if rows else []

    def _through_driver(self, conn: Connection, rows: list[tuple[Any, ...]],
                        returning: tuple[str, ...]) -> list[tuple[Any, ...]]:
        dbapi = conn.dialect.loaded_dbapi
        driver = conn.connection.driver_connection
        assert driver is not None
        try:
            if conn.dialect.name != "postgresql":
                return self._sqlite(driver, rows, returning)
            if returning:
                return self._postgresql_returning(driver, rows, returning)
            self._postgresql(driver, rows)
            return []
        except dbapi.Error as error:
            raise DBAPIError.instance(
                f"INSERT INTO {self.table}", None, error, dbapi.Error,
                dialect=conn.dialect) from error

    def _postgresql_returning(self, driver: Any, rows: list[tuple[Any, ...]],
                              returning: tuple[str, ...]) -> list[tuple[Any, ...]]:
        with psycopg.RawCursor(driver) as raw:
            raw.execute(f"{self._unnest_sql} RETURNING {', '.join(returning)}",
                        [list(column) for column in zip(*rows, strict=True)])
            return raw.fetchall()

    def _postgresql(self, driver: Any, rows: list[tuple[Any, ...]]) -> None:
        if driver.pgconn.pipeline_status:  # `pipelined`: COPY cannot run there
            with psycopg.RawCursor(driver) as raw:
                for start in range(0, len(rows), FEW_ROWS):
                    chunk = rows[start:start + FEW_ROWS]
                    raw.execute(self._values_sql(len(chunk)),
                                [value for row in chunk for value in row])
            return
        if len(rows) <= FEW_ROWS:  # one round trip, where COPY takes two
            with psycopg.RawCursor(driver) as raw:
                raw.execute(self._values_sql(len(rows)), [value for row in rows for value in row])
            return
        with driver.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
            for values in rows:
                copy.write_row(values)

    def _sqlite(self, driver: Any, rows: list[tuple[Any, ...]],
                returning: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
        if self.sqlite_conversions:
            conversions = self.sqlite_conversions
            for position, values in enumerate(rows):
                converted = list(values)
                for index, convert in conversions:
                    converted[index] = convert(converted[index])
                rows[position] = tuple(converted)
        statements = self._sqlite_sql
        if returning:
            if returning not in self._sqlite_returning:
                self._sqlite_returning[returning] = {
                    size: f"{sql} RETURNING {', '.join(returning)}"
                    for size, sql in statements.items()}
            statements = self._sqlite_returning[returning]
        answered: list[tuple[Any, ...]] = []
        cursor = driver.cursor()
        try:
            start, count = 0, len(rows)
            for size, sql in statements.items():
                while count - start >= size:
                    cursor.execute(sql, [v for row in rows[start:start + size] for v in row])
                    if returning:
                        answered += cursor.fetchall()
                    start += size
        finally:
            cursor.close()
        return answered


@contextmanager
def pipelined(conn: Connection, batches: Iterable[int]) -> Iterator[None]:
    """On PostgreSQL, the statements sent through the driver inside go out together and are
    answered together (psycopg's pipeline mode): one round trip where each took its own.
    For statements whose results nobody reads: the inserts of `BulkInsert`, whose row counts
    are `batches`. Only when they have rows (an empty pipeline costs a round trip of its
    own) and none has more than `PIPELINED_ROWS` (there rows go as INSERTs of `FEW_ROWS`;
    COPY, which a pipeline cannot carry, is faster for many). A failure surfaces at the
    block's end, as SQLAlchemy's error. Nothing changes on SQLite, which has no round trips."""
    counts = list(batches)
    if conn.dialect.name != "postgresql" or not any(counts) or max(counts) > PIPELINED_ROWS:
        yield
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.pipeline():
            yield
    except psycopg.Error as error:
        raise DBAPIError.instance("pipelined statements", None, error, psycopg.Error,
                                  dialect=conn.dialect) from error


def _sqlite_datetime(value: datetime | str | None) -> str | None:
    # Text is SQLite's already: a caller that formatted a moment it alone has (an audit
    # entry's) keeps it out of the cache below.
    if value is None or type(value) is str:
        return value
    return _sqlite_datetime_text(value)


@lru_cache(maxsize=1 << 16)  # index rows repeat instants (a transaction's, a period's ends)
def _sqlite_datetime_text(value: datetime) -> str:
    # SQLAlchemy's own SQLite DATETIME text; isoformat is a third faster than strftime.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _sqlite_decimal(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _sqlite_converter(column_type: Any) -> Callable[[Any], Any] | None:
    if isinstance(column_type, UtcDateTime):
        return _sqlite_datetime
    if isinstance(column_type, Numeric):
        return _sqlite_decimal
    if isinstance(column_type, Boolean):
        return _sqlite_bool
    return None
