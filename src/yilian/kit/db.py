"""Database engines and transactions, the same on SQLite and PostgreSQL.

Reads and writes are distinct: a write transaction on SQLite starts with BEGIN IMMEDIATE so
that two writers never deadlock upgrading their locks (they queue on busy_timeout instead),
and a read transaction never takes the write lock. `run_write` reruns a unit of work that lost
a race (unique violation, serialization failure) so a caller sees one outcome, not a retry.
"""

from __future__ import annotations

import fcntl
import os
import select
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError

T = TypeVar("T")

_WRITE_OPTION = "yilian_write"
_AUTOCOMMIT_OPTION = "yilian_autocommit"


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine tuned for the FHIR store: WAL and a generous busy timeout on SQLite."""
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("use a file for SQLite: every connection must see the same data")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
            hide_parameters=True,  # parameters are patients' data: never in messages or logs
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True,
    )
    _plan_each_time(engine)
    _skip_closed_connections(engine)
    return engine


def _skip_closed_connections(engine: Engine) -> None:
    """A pooled connection the database ended (a restart, an administrator, an idle
    timeout) is replaced when it is taken from the pool, without the round trip of
    SQLAlchemy's pre-ping (one of a create's seven on PostgreSQL): the server says goodbye
    when it ends a connection, so an idle connection with anything to read, or at its end,
    is one it ended. One that vanished without a word fails its first statement, as it
    would after a ping that came back just before."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not _looks_open(dbapi_connection):
            raise DisconnectionError("the database ended this connection")  # pool: next


def _looks_open(connection: Any) -> bool:
    """An idle psycopg connection the server has not ended, as far as can be told without
    asking it (a poll of its socket, microseconds)."""
    from psycopg import pq

    if connection.closed or connection.pgconn.status != pq.ConnStatus.OK:
        return False
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


# Every PostgreSQL session of the server's: no JIT compilation. PostgreSQL compiles a
# query whose estimated cost passes `jit_above_cost`, whatever it then reads: a page of
# Observations walked in date order (search.walk), run with its generic plan, took 30 ms
# of which 29 compiling, 1 ms without. The server's queries read a few rows each.
POSTGRESQL_SESSION = "SET jit = off"


def _plan_each_time(engine: Engine) -> None:
    """psycopg prepares a statement after five runs, and PostgreSQL may then switch to a
    generic plan: for the access rules' queries, whose best plan depends on the ids given,
    that plan was measured 50-100 times slower (7 ms → 270-810 ms per admission). Planning
    each time costs well under a millisecond. And no JIT (`POSTGRESQL_SESSION`)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
            cursor.execute(POSTGRESQL_SESSION)
        dbapi_connection.commit()


def make_autocommit_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for single-statement reads through raw pooled DBAPI connections: each
    statement is its own transaction, and nothing is rolled back when a connection returns
    to the pool (there is nothing to roll back)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_reset_on_return=None,
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_reset_on_return=None,
        # No ping before each use: it is a round trip, as costly as the read itself. A
        # connection the database ended is mostly seen at checkout (_skip_closed_connections);
        # one ended since fails its read, which `run_read` runs again.
        pool_pre_ping=False,
        hide_parameters=True,
        # Reads run on the event loop: a database that went away must not hold it for long.
        connect_args={"connect_timeout": 3},
    )
    # Its connections also serve searches (read_connection), whose best plans depend on
    # their values; a read by id's statement plans in microseconds.
    _plan_each_time(engine)
    _skip_closed_connections(engine)
    engine.update_execution_options(**{_AUTOCOMMIT_OPTION: True})
    return engine


def is_autocommit(connection: Connection) -> bool:
    """Whether the connection is of an autocommit engine (no transaction, nothing to see
    that another connection would not)."""
    return bool(connection.get_execution_options().get(_AUTOCOMMIT_OPTION, False))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        # Checkpoint every 64 MiB of WAL, not SQLite's 4 MiB: a transaction Bundle writes
        # ~3 MiB, and a checkpoint in every commit cost a fifth of ingestion (measured:
        # 1,211-1,262 → 1,447-1,519 resources/s in process). The file is cut back after.
        cursor.execute("PRAGMA wal_autocheckpoint=16384")
        cursor.execute("PRAGMA journal_size_limit=67108864")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        # Straight to the driver: through exec_driver_sql, a BEGIN cost a tenth of a search.
        driver = connection.connection.driver_connection
        assert driver is not None
        try:
            driver.execute(statement)
        except sqlite3.Error as error:  # as SQLAlchemy's, as exec_driver_sql raised them
            raise DBAPIError.instance(statement, None, error, sqlite3.Error,
                                      dialect=connection.dialect) from error


class _SqliteWriterLock:
    """SQLite has one writer at a time. Waiting on its busy timeout is polling with sleeps
    that grow to 100 ms, so a writer that just finished hands over late and throughput falls
    with every process added. Writers queue here instead: threads of this process on a lock,
    then one thread per process on an flock of a file beside the database, which the kernel
    hands to the next process the moment it is released."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database}-writer.lock" if database else None
        self._fd: int | None = None
        self._owner = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            fd = self._file()
            if fd is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without the GIL
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int | None:
        if self._path is None:
            return None
        pid = os.getpid()
        if self._fd is None or self._owner != pid:
            # One open file per process: flock belongs to the open file, so a forked child
            # must not share its parent's.
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._owner = pid
        return self._fd


_SQLITE_WRITERS: dict[str, _SqliteWriterLock] = {}
_SQLITE_WRITERS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> _SqliteWriterLock | None:
    if not is_sqlite(engine):
        return None
    key = str(engine.url)
    with _SQLITE_WRITERS_GUARD:
        lock = _SQLITE_WRITERS.get(key)
        if lock is None:
            lock = _SQLITE_WRITERS[key] = _SqliteWriterLock(engine.url.database)
        return lock


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    lock = _writer_lock(engine)
    with lock.held() if lock is not None else nullcontext(), engine.connect() as raw:
        connection = raw.execution_options(**{_WRITE_OPTION: True})
        with connection.begin():
            yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection, connection.begin():
        yield connection


@contextmanager
def read_connection(engine: Engine, autocommit: Engine | None = None) -> Iterator[Connection]:
    """A connection for a read's statements. On PostgreSQL, from `autocommit` (an engine of
    make_autocommit_engine) when given: in READ COMMITTED each statement takes its own
    snapshot even inside a transaction, so BEGIN and COMMIT were two round trips that
    changed nothing (a search of three statements paid five). SQLite keeps its transaction:
    one snapshot for all the statements, and no round trip to pay for it."""
    if autocommit is None or is_sqlite(engine):
        with read_transaction(engine) as connection:
            yield connection
        return
    with autocommit.connect() as connection:
        yield connection


def run_read(engine: Engine, work: Callable[[Connection], T], *,
             autocommit: Engine | None = None) -> T:
    """Run `work` on a read connection (`read_connection`), and once more on a new one when
    the first turned out dead (the database restarted): connections of an autocommit engine
    are not pinged before use. `work` must be free of side effects outside the database."""
    try:
        with read_connection(engine, autocommit) as connection:
            return work(connection)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    with read_connection(engine, autocommit) as connection:
        return work(connection)


class LostRace(Exception):
    """A write lost its race with other writers every time it was tried."""


def lost_race(error: BaseException) -> bool:
    """A unique violation, serialization failure, deadlock or SQLite lock: the same work
    may succeed when rerun. Other integrity errors (NOT NULL, foreign keys) are bugs."""
    original = getattr(error, "orig", error)
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in ("23505", "40001", "40P01"):
        return True
    text = str(original)
    return "UNIQUE constraint failed" in text or "database is locked" in text


def run_write(engine: Engine, work: Callable[[Connection], T], *, attempts: int = 4) -> T:
    """Run `work` in one write transaction, rerunning it when it lost a race to another writer.

    `work` must be free of side effects outside the transaction (events go out after commit).
    Raises LostRace when every attempt lost.
    """
    for attempt in range(1, attempts + 1):
        try:
            with write_transaction(engine) as connection:
                return work(connection)
        except Exception as error:
            if not lost_race(error):
                raise
            if attempt == attempts:
                raise LostRace(f"the write lost to concurrent writers {attempts} times") from error
    raise AssertionError("unreachable")
