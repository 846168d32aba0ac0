"""PostgreSQL: a pinned search statement runs prepared with a generic plan, on a connection
of its own, and only outside a transaction (yilian.fhir.search.statements). Planning each
statement cost several times running it; the plans these statements keep cannot go wrong
with other values, since the search's own plan fixed their joins."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, column, func, literal, select, table, union_all
from sqlalchemy.exc import ProgrammingError

from yilian.fhir.search.statements import Statements
from yilian.kit.db import make_autocommit_engine, make_engine, read_connection
from yilian.kit.dbtypes import UtcDateTime

SETTING = select(func.current_setting("plan_cache_mode"))


@pytest.fixture
def engines(postgres_schema_url: str) -> Iterator[tuple[Engine, Engine]]:
    """PostgreSQL only (the fixture says so and skips when it is not answering)."""
    engine = make_engine(postgres_schema_url)
    reads = make_autocommit_engine(postgres_schema_url)
    yield engine, reads
    reads.dispose()
    engine.dispose()


def test_pinned_statements_keep_generic_plans_outside_transactions(
        engines: tuple[Engine, Engine]) -> None:
    engine, reads = engines
    statements = Statements()
    with read_connection(engine, reads) as conn:
        pinned = statements.rows(conn, "setting", lambda: SETTING, {}, pinned=True)
        other = statements.rows(conn, "setting", lambda: SETTING, {})
        statements.rows(conn, "setting", lambda: SETTING, {}, pinned=True)  # planned again?
        plans = table("pg_prepared_statements", column("generic_plans"),
                      column("custom_plans"))
        prepared = statements.rows(conn, "prepared", lambda: select(
            func.sum(plans.c.generic_plans), func.sum(plans.c.custom_plans)), {}, pinned=True)
    with engine.begin() as conn:  # a write's transaction: its own connection, as planned
        in_transaction = statements.rows(conn, "setting", lambda: SETTING, {}, pinned=True)
    assert pinned[0][0] == "force_generic_plan"
    assert other[0][0] == in_transaction[0][0] == "force_custom_plan"
    generic, custom = prepared[0]
    assert generic >= 2 and custom == 0  # prepared, and kept: never planned for the values


def test_no_session_of_the_server_compiles_queries_just_in_time(
        engines: tuple[Engine, Engine]) -> None:
    """JIT is off in every kind of session: a search's generic plan crossed jit_above_cost
    and spent 29 of its 30 ms compiling (kit.db.POSTGRESQL_SESSION)."""
    engine, reads = engines
    jit = select(func.current_setting("jit"))
    statements = Statements()
    with read_connection(engine, reads) as conn:
        generic = statements.rows(conn, "jit", lambda: jit, {}, pinned=True)[0][0]
        planned = statements.rows(conn, "jit", lambda: jit, {})[0][0]
    with engine.begin() as conn:
        written = conn.execute(jit).scalar_one()
    assert (generic, planned, written) == ("off", "off", "off")


def test_values_lists_and_instants_bind_as_sqlalchemy_binds_them(
        engines: tuple[Engine, Engine]) -> None:
    engine, reads = engines
    statements = Statements()
    numbers = union_all(*(select(literal(n).label("n")) for n in range(1, 6))).subquery()

    def picked() -> Any:
        return (select(numbers.c.n, bindparam("moment", type_=UtcDateTime()))
                .where(numbers.c.n.in_(bindparam("wanted", expanding=True)),
                       numbers.c.n.not_in(bindparam("unwanted", expanding=True)))
                .order_by(numbers.c.n))

    moment = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    with read_connection(engine, reads) as conn:
        def run(wanted: list[int], unwanted: list[int]) -> list[Any]:
            return [tuple(row) for row in statements.rows(
                conn, "picked", picked,
                {"wanted": wanted, "unwanted": unwanted, "moment": moment}, pinned=True)]

        assert run([1, 2, 3], [2]) == [(1, moment), (3, moment)]
        assert run([4, 5, 1], []) == [(1, moment), (4, moment), (5, moment)]  # one statement
        assert run([], [1]) == []
        # The same statement through SQLAlchemy, for the same values.
        expected = [tuple(row) for row in conn.execute(
            picked(), {"wanted": [1, 2, 3], "unwanted": [2], "moment": moment})]
        assert run([1, 2, 3], [2]) == expected


def test_a_failing_statement_raises_as_sqlalchemy_would(engines: tuple[Engine, Engine]) -> None:
    engine, reads = engines
    statements = Statements()
    broken = select(func.no_such_function())
    with read_connection(engine, reads) as conn, pytest.raises(ProgrammingError):
        statements.rows(conn, "broken", lambda: broken, {}, pinned=True)
    with read_connection(engine, reads) as conn:  # and the connection serves the next one
        assert statements.rows(conn, "setting", lambda: SETTING, {}, pinned=True)


def test_the_connections_close_with_their_engine(postgres_schema_url: str) -> None:
    engine = make_engine(postgres_schema_url)
    reads = make_autocommit_engine(postgres_schema_url)
    try:
        with read_connection(engine, reads) as conn:
            pid = Statements().rows(conn, "pid", lambda: select(func.pg_backend_pid()), {},
                                    pinned=True)[0][0]
            assert pid != conn.execute(select(func.pg_backend_pid())).scalar_one()
        reads.dispose()

        def alive() -> bool:
            with engine.connect() as admin:
                found = admin.execute(select(func.count()).select_from(
                    table("pg_stat_activity", column("pid"))).where(column("pid") == pid))
                return bool(found.scalar_one())

        deadline = time.monotonic() + 5
        while alive() and time.monotonic() < deadline:  # the backend ends just after
            time.sleep(0.05)
        assert not alive()
    finally:
        engine.dispose()
