"""Search statements, built once per shape (search.binding) and kept for the next search.

On SQLite a kept statement also runs straight through the driver: its SQL compiled once,
each run binding its values as SQLAlchemy would (the same types' processing) without
SQLAlchemy's execution machinery, which cost more than SQLite's own work for most searches.
PostgreSQL runs them through SQLAlchemy: a round trip to the server weighs more there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

SIZE = 2048  # shapes kept: each a statement and its compiled forms

Build = Callable[[], Select[Any]]


class _Driven:
    """A statement compiled for SQLite's driver: positional `?` binds, each value processed
    by its bind parameter's type (UtcDateTime's text...), each result column by its type."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        binds = compiled.binds
        self.expanding = frozenset(name for name in self.names if binds[name].expanding)
        # The types as the dialect runs them (SQLite's DATETIME text for UtcDateTime...).
        self.processors = {
            name: process for name in set(self.names)
            if (process := binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            is not None}
        results = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                   for column in statement.selected_columns]
        self.results = results if any(results) else None

    def run(self, driver: Any, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        params = self.compiled.construct_params(dict(values))
        sql = self.sql
        args: list[Any] = []
        processors = self.processors
        for name in self.names:
            value = params[name]
            process = processors.get(name)
            if name in self.expanding:
                items = list(value)
                marks = ", ".join("?" * len(items))
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", marks, 1)
                args.extend(items if process is None else [process(v) for v in items])
            else:
                args.append(value if process is None else process(value))
        cursor = driver.cursor()
        try:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if self.results is None:
            return rows  # type: ignore[no-any-return]
        processes = self.results
        return [tuple(value if process is None else process(value)
                      for value, process in zip(row, processes, strict=True)) for row in rows]

    def runs(self, values: Mapping[str, Any]) -> bool:
        """Whether the driver can run it with these values: an empty list's IN is SQL that
        SQLAlchemy writes in its own way."""
        return all(values.get(name, True) for name in self.expanding)


class Statements:
    """Statements by key, the least recently used dropped beyond `size`. Threads share it:
    a statement is immutable once built (two threads may build the same one; either
    serves)."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._kept: OrderedDict[Hashable, list[Any]] = OrderedDict()  # [statement, driven]
        self._lock = threading.Lock()
        self.built = 0  # statements built, for tests and benchmarks

    def get(self, key: Hashable, build: Build) -> Select[Any]:
        statement: Select[Any] = self._entry(key, build)[0]
        return statement

    def rows(self, conn: Connection, key: Hashable, build: Build, values: Mapping[str, Any]
             ) -> list[Sequence[Any]]:
        """The rows of the statement kept under `key` (built by `build` the first time),
        run with `values`."""
        entry = self._entry(key, build)
        statement: Select[Any] = entry[0]
        if conn.dialect.name != "sqlite":
            return list(conn.execute(statement, values).all())
        driven: _Driven | None = entry[1]
        if driven is None:
            driven = entry[1] = _Driven(statement, conn.dialect)
        if not driven.runs(values):
            return list(conn.execute(statement, values).all())
        driver = conn.connection.driver_connection
        dbapi = conn.dialect.loaded_dbapi
        try:
            return driven.run(driver, values)
        except dbapi.Error as error:  # as SQLAlchemy's, as Connection.execute raises them
            raise DBAPIError.instance(driven.sql, None, error, dbapi.Error,
                                      dialect=conn.dialect) from error

    def _entry(self, key: Hashable, build: Build) -> list[Any]:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
        made = [build(), None]
        with self._lock:
            self.built += 1
            self._kept[key] = made
            if len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return made


STATEMENTS = Statements()
