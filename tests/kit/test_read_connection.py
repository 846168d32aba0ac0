"""A read's connection: no transaction at all on PostgreSQL, one snapshot on SQLite."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Connection, Engine, text

from yilian.kit.db import make_autocommit_engine, make_engine, read_connection, run_read


def test_reads_hold_no_transaction_on_postgresql_and_one_snapshot_on_sqlite(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    reads = make_autocommit_engine(database_url)
    try:
        with read_connection(engine, reads) as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            driver = conn.connection.driver_connection
            if database_url.startswith("sqlite"):
                assert driver.in_transaction  # BEGIN: the statements share a snapshot
            else:
                from psycopg.pq import TransactionStatus

                # No BEGIN was sent, and no COMMIT will be: two round trips saved.
                assert driver.info.transaction_status == TransactionStatus.IDLE
                # Searches plan for their values, as on the transactional engine.
                mode = conn.execute(text("SHOW plan_cache_mode")).scalar_one()
                assert mode == "force_custom_plan"
        with read_connection(engine) as conn:  # without an autocommit engine: a transaction
            conn.execute(text("SELECT 1"))
            assert conn.in_transaction()
            driver = conn.connection.driver_connection
            if not database_url.startswith("sqlite"):
                from psycopg.pq import TransactionStatus

                assert driver.info.transaction_status == TransactionStatus.INTRANS
    finally:
        reads.dispose()
        engine.dispose()


def test_a_read_runs_again_on_a_new_connection_when_the_database_dropped_its_own(
    database_url: str,
) -> None:
    """The autocommit engine does not ping before each use (a round trip as costly as a
    read): a read that meets a connection the database ended runs again on a new one."""
    if database_url.startswith("sqlite"):
        return  # a file has no server to drop connections
    engine = make_engine(database_url)
    reads = make_autocommit_engine(database_url, pool_size=1)
    try:
        def backend(conn: Connection) -> int:
            pid: int = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            return pid

        first = run_read(engine, backend, autocommit=reads)  # its connection goes back idle
        with engine.begin() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"),
                                 {"pid": first}).scalar_one()
        second = run_read(engine, backend, autocommit=reads)
        assert second != first
        calls: list[int] = []

        def fails(conn: Connection) -> int:
            calls.append(1)
            raise ValueError("not a lost connection")

        with pytest.raises(ValueError):
            run_read(engine, fails, autocommit=reads)
        assert len(calls) == 1  # other errors are not run again
    finally:
        reads.dispose()
        engine.dispose()


def _ended(admin: Engine, pid: int) -> None:
    """End a backend and wait until it is gone (pg_terminate_backend only signals it)."""
    with admin.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    for _ in range(200):
        with admin.begin() as conn:
            if not conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}).scalar():
                return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} still there")


@pytest.mark.parametrize("autocommit", [False, True])
def test_a_connection_the_database_ended_is_replaced_before_it_is_used(
    database_url: str, autocommit: bool,
) -> None:
    """No ping before each use (a round trip); a pooled connection the database ended is
    replaced when taken from the pool: the next write (or read) does not fail on it."""
    if database_url.startswith("sqlite"):
        return  # a file has no server to end connections
    make = make_autocommit_engine if autocommit else make_engine
    engine = make(database_url, pool_size=1)
    admin = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.commit()
        _ended(admin, first)
        with engine.connect() as conn:  # no retry around it: the first try must succeed
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.commit()
        assert second != first
    finally:
        admin.dispose()
        engine.dispose()
