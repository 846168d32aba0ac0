"""Many rows into one table through the driver: every row lands, whatever the count (SQLite
sends them in multi-row INSERTs of fixed sizes, PostgreSQL as one INSERT or by COPY), and a
refused row fails the whole insert with SQLAlchemy's own error."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from yilian.fhir.store.bulk import BulkInsert, pipelined
from yilian.fhir.store.tables import audit_entity, audit_log, resource
from yilian.kit.db import make_engine, write_transaction

LOG = BulkInsert(audit_log, ())
GROUPED_LOG = BulkInsert(audit_log, ("seq",))
ENTITY = BulkInsert(audit_entity, ())
START = datetime(2026, 11, 24, 8, 30, 15, 123456, tzinfo=UTC)


def _log_rows(first: int, count: int) -> list[tuple[object, ...]]:
    return [(seq, START + timedelta(seconds=seq), f"user u{seq}", "read", seq % 3 * 4,
             f'{{"seq":{seq}}}', "0" * 64, f"{seq:064x}")
            for seq in range(first, first + count)]


# 341 = 5 × 64 + 16 + 4 + 1: statements of every size SQLite uses, several of the largest.
@pytest.mark.parametrize("count", [0, 1, 3, 5, 21, 341, 700])
def test_every_row_lands_with_its_values(database_url: str, count: int) -> None:
    engine = make_engine(database_url)
    try:
        with write_transaction(engine) as conn:
            LOG.insert(conn, _log_rows(1, count))
            # A group's rows after its leading values (here none), in the columns' order.
            GROUPED_LOG.run(conn, [((10_000,), [(START, "user grouped", "search-type", 0, "{}",
                                         "a" * 64, "b" * 64)])])
            ENTITY.insert(conn, [(seq, f"Patient/{seq}") for seq in range(1, count + 1)])
        with engine.connect() as conn:
            rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
            refs = conn.execute(select(audit_entity.c.seq, audit_entity.c.reference)
                                .order_by(audit_entity.c.seq)).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows[:count]] == _log_rows(1, count)
    assert rows[-1].seq == 10_000 and rows[-1].actor == "user grouped"
    assert len(rows) == count + 1
    assert [tuple(ref) for ref in refs] == [(seq, f"Patient/{seq}")
                                            for seq in range(1, count + 1)]


def test_instants_are_stored_as_sqlalchemy_stores_them(tmp_path: Path,
                                                       sqlite_template: Path) -> None:
    """The SQLite text must compare and sort with what SQLAlchemy itself writes."""
    path = tmp_path / "bulk.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    moment = datetime(2026, 1, 2, 19, 4, 5, 7, tzinfo=timezone(timedelta(hours=8)))
    try:
        with write_transaction(engine) as conn:
            LOG.insert(conn, [(1, moment, "a", "read", 0, "{}", "0", "1")])
            conn.execute(insert(audit_log).values(seq=2, recorded=moment, actor="b",
                                                  subtype="read", outcome=0, entry="{}",
                                                  prev_hash="1", hash="2"))
            raw = conn.exec_driver_sql("SELECT recorded FROM audit_log ORDER BY seq").all()
    finally:
        engine.dispose()
    assert raw[0] == raw[1] == ("2026-01-02 11:04:05.000007",)


def test_a_refused_row_fails_the_insert_with_sqlalchemys_error(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with pytest.raises(IntegrityError), write_transaction(engine) as conn:
            LOG.insert(conn, _log_rows(1, 300) + _log_rows(150, 1))  # seq 150 twice
        with engine.connect() as conn:
            assert conn.execute(select(audit_log.c.seq)).first() is None  # nothing written
    finally:
        engine.dispose()


RESOURCES = BulkInsert(resource, ())


# 5 columns: SQLite's statements of 64, 16, 4 and 1 rows; PostgreSQL's one unnest.
@pytest.mark.parametrize("count", [0, 1, 7, 150])
def test_rows_numbered_by_the_database_come_back_with_their_numbers(database_url: str,
                                                                   count: int) -> None:
    """The resource table numbers its rows: the insert leaves `pk` to the database and
    answers each row's number beside the key it asked for, whatever the order."""
    assert "pk" not in RESOURCES.columns
    rows = [("Patient", f"p{number}", number % 3 + 1, START + timedelta(seconds=number),
             number % 2 == 0) for number in range(count)]
    engine = make_engine(database_url)
    try:
        with write_transaction(engine) as conn:
            answered = RESOURCES.insert_returning(conn, list(rows), ("pk", "res_id"))
        with engine.connect() as conn:
            stored = conn.execute(select(resource.c.pk, resource.c.res_type, resource.c.res_id,
                                         resource.c.version, resource.c.last_updated,
                                         resource.c.deleted)).all()
    finally:
        engine.dispose()
    assert sorted(answered) == sorted((row.pk, row.res_id) for row in stored)
    assert len({pk for pk, _ in answered}) == count
    assert sorted(tuple(row)[1:] for row in stored) == sorted(rows)


def test_a_refused_numbered_row_fails_the_insert_with_sqlalchemys_error(
        database_url: str) -> None:
    engine = make_engine(database_url)
    twice = ("Patient", "same", 1, START, False)
    try:
        with pytest.raises(IntegrityError), write_transaction(engine) as conn:
            RESOURCES.insert_returning(conn, [twice, twice], ("pk",))
        with engine.connect() as conn:
            assert conn.execute(select(resource.c.pk)).first() is None
    finally:
        engine.dispose()


# 37 rows: inside a pipeline they go as INSERTs of 16, 16 and 5 (COPY cannot run there).
@pytest.mark.parametrize("count", [1, 37])
def test_pipelined_rows_land_with_their_values(database_url: str, count: int) -> None:
    engine = make_engine(database_url)
    try:
        with write_transaction(engine) as conn, pipelined(conn, [count, count]):
            LOG.insert(conn, _log_rows(1, count))
            ENTITY.insert(conn, [(seq, f"Patient/{seq}") for seq in range(1, count + 1)])
        with engine.connect() as conn:
            seqs = conn.execute(select(audit_log.c.seq, audit_log.c.recorded)
                                .order_by(audit_log.c.seq)).all()
            refs = conn.execute(select(audit_entity.c.reference)
                                .order_by(audit_entity.c.seq)).scalars().all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in seqs] == [(seq, START + timedelta(seconds=seq))
                                            for seq in range(1, count + 1)]
    assert refs == [f"Patient/{seq}" for seq in range(1, count + 1)]


def test_a_refused_pipelined_row_fails_the_transaction_with_sqlalchemys_error(
        database_url: str) -> None:
    """On PostgreSQL the refusal comes back when the pipeline ends, as it would have from
    the statement: SQLAlchemy's IntegrityError, and nothing of the transaction written."""
    engine = make_engine(database_url)
    try:
        with pytest.raises(IntegrityError), write_transaction(engine) as conn, \
                pipelined(conn, [3, 2]):
            LOG.insert(conn, _log_rows(1, 3))
            ENTITY.insert(conn, [(1, "Patient/1"), (1, "Patient/1")])  # a key twice
        with engine.connect() as conn:
            assert conn.execute(select(audit_log.c.seq)).first() is None
    finally:
        engine.dispose()
