"""Search statements, built once per shape (search.binding) and kept for the next search.

On SQLite a kept statement also runs straight through the driver: its SQL compiled once,
each run binding its values as SQLAlchemy would (the same types' processing) without
SQLAlchemy's execution machinery, which cost more than SQLite's own work for most searches.

On PostgreSQL, planning a search's statement cost several times running it (measured at a
million resources: 0.2 ms to plan a page by identifier, 0.02 ms to run it), and the server
plans every statement anew (kit.db: generic plans made the access rules' queries 50-100
times slower). A *pinned* statement, one whose plan the search itself has fixed
(search.plan.pins: a source of equal values or the resource table, the other criteria
EXISTS probes of the candidate's own rows), has nothing to gain from its values: it runs
prepared, its generic plan kept, on a connection of its own (`GenericPlans`), outside any
transaction as the reads it serves are.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Select, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from yilian.kit.db import POSTGRESQL_SESSION, is_autocommit

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
                if items and type(items[0]) is tuple:  # rows: `(a, b) IN ((?, ?), ...)`
                    row = "(" + ", ".join("?" * len(items[0])) + ")"
                    sql = sql.replace(f"__[POSTCOMPILE_{name}]",
                                      ", ".join(row for _ in items), 1)
                    args.extend(part for item in items for part in item)
                    continue
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


class _Prepared:
    """A statement compiled for psycopg, to run prepared: `%(name)s` binds (a list's as one
    array: `= ANY(%(name)s)`, the same SQL whatever its length), each value processed by its
    bind parameter's type, each result column by its type."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        binds = compiled.bind_names  # parameter → its name in the SQL (anonymous ones too)
        sql = compiled.string
        self.expanding = frozenset(name for bind, name in binds.items() if bind.expanding)
        for name in self.expanding:
            sql = sql.replace(f"NOT IN (__[POSTCOMPILE_{name}])", f"<> ALL(%({name})s)")
            sql = sql.replace(f"IN (__[POSTCOMPILE_{name}])", f"= ANY(%({name})s)")
        self.sql = sql
        # A list in a form not rewritten above, or of rows (`(a, b) IN ...`): SQLAlchemy's.
        self.usable = "__[POSTCOMPILE_" not in sql and not any(
            bind.expanding and getattr(bind.type, "_is_tuple_type", False) for bind in binds)
        self.processors = {
            name: process for bind, name in binds.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect))
            is not None}
        self.dialect = dialect
        self.types = [column.type for column in statement.selected_columns]
        # Each result column's processing, as SQLAlchemy picks it from the column's type and
        # the type the server answers with: known after the first run.
        self.results: list[Any] | None = None

    def run(self, driver: Any, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        params = self.compiled.construct_params(dict(values))
        for name, process in self.processors.items():
            if name in params:
                value = params[name]
                params[name] = ([process(v) for v in value] if name in self.expanding
                                else process(value))
        for name in self.expanding:
            params[name] = list(params[name])
        with driver.cursor() as cursor:
            cursor.execute(self.sql, params, prepare=True)
            rows: list[Sequence[Any]] = cursor.fetchall()
            if self.results is None:
                dialect = self.dialect
                self.results = [
                    kind.dialect_impl(dialect).result_processor(dialect, column.type_code)
                    for kind, column in zip(self.types, cursor.description, strict=True)]
        processes = self.results
        if not any(processes):
            return rows
        return [tuple(value if process is None else process(value)
                      for value, process in zip(row, processes, strict=True)) for row in rows]


class GenericPlans:
    """PostgreSQL connections, one per thread and engine, that keep each statement's generic
    plan (`plan_cache_mode = force_generic_plan`, every statement prepared on first use), in
    autocommit. Closed when their engine is disposed; a connection that fails is dropped and
    the statement run once more on a new one (a restarted database)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._opened: weakref.WeakKeyDictionary[Engine, list[Any]] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    def run(self, engine: Engine, prepared: _Prepared, values: Mapping[str, Any]
            ) -> list[Sequence[Any]]:
        import psycopg

        try:
            return prepared.run(self._connection(engine), values)
        except psycopg.OperationalError:
            self._drop(engine)
        return prepared.run(self._connection(engine), values)

    def _mine(self) -> weakref.WeakKeyDictionary[Engine, Any]:
        """This thread's connections, by their engine (weakly: an engine collected without
        being disposed must not hand its connection to a later one)."""
        mine: weakref.WeakKeyDictionary[Engine, Any] | None = getattr(
            self._local, "connections", None)
        if mine is None:
            mine = self._local.connections = weakref.WeakKeyDictionary()
        return mine

    def _connection(self, engine: Engine) -> Any:
        mine = self._mine()
        connection = mine.get(engine)
        if connection is not None and not connection.closed:
            return connection
        import psycopg

        connection = psycopg.connect(
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True, prepare_threshold=0, connect_timeout=3)
        connection.execute("SET plan_cache_mode = force_generic_plan")
        connection.execute(POSTGRESQL_SESSION)
        mine[engine] = connection
        with self._guard:
            if engine not in self._opened:
                self._opened[engine] = []
                event.listen(engine, "engine_disposed", self._close_all)
            self._opened[engine].append(connection)
        return connection

    def _drop(self, engine: Engine) -> None:
        connection = self._mine().pop(engine, None)
        if connection is not None:
            connection.close()

    def _close_all(self, engine: Engine) -> None:
        with self._guard:
            opened = self._opened.pop(engine, [])
        for connection in opened:
            connection.close()


GENERIC_PLANS = GenericPlans()


class Statements:
    """Statements by key, the least recently used dropped beyond `size`. Threads share it:
    a statement is immutable once built (two threads may build the same one; either
    serves)."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        # [statement, its _Driven form (SQLite), its _Prepared form (PostgreSQL)]: one
        # process may search both (the tests do)
        self._kept: OrderedDict[Hashable, list[Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.built = 0  # statements built, for tests and benchmarks

    def get(self, key: Hashable, build: Build) -> Select[Any]:
        statement: Select[Any] = self._entry(key, build)[0]
        return statement

    def rows(self, conn: Connection, key: Hashable, build: Build, values: Mapping[str, Any],
             *, pinned: bool = False) -> list[Sequence[Any]]:
        """The rows of the statement kept under `key` (built by `build` the first time),
        run with `values`; `pinned`: its joins are fixed by the search's plan (above)."""
        entry = self._entry(key, build)
        statement: Select[Any] = entry[0]
        if conn.dialect.name != "sqlite":
            if pinned and is_autocommit(conn):
                prepared: _Prepared | None = entry[2]
                if prepared is None:
                    prepared = entry[2] = _Prepared(statement, conn.dialect)
                if prepared.usable:
                    dbapi = conn.dialect.loaded_dbapi
                    try:
                        return GENERIC_PLANS.run(conn.engine, prepared, values)
                    except dbapi.Error as error:  # as SQLAlchemy's, as from Connection.execute
                        raise DBAPIError.instance(prepared.sql, None, error, dbapi.Error,
                                                  dialect=conn.dialect) from error
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
        made = [build(), None, None]
        with self._lock:
            self.built += 1
            self._kept[key] = made
            if len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return made


STATEMENTS = Statements()
