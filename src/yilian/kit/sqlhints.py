"""Hints for SQLite's query planner, which keeps no statistics unless ANALYZE is run.

Without statistics SQLite prefers the index that matches the most columns of a condition.
In a subquery that looks a resource's rows up by `resource_pk`, an index on
`(res_type, param, value)` matches more columns and wins, though it reads every row of the
parameter instead of the resource's few. SQLite's documented remedy is a unary `+` on a
column: the term can no longer use an index. PostgreSQL plans from statistics and gets the
plain column.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import ColumnElement, FromClause
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal


class Unindexed(ColumnElement[Any]):
    """A column that SQLite must not look up through an index."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012  (SQLAlchemy's own declaration)
        ("column", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(Unindexed)
def _plain(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(Unindexed, "sqlite")
def _sqlite(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


class ColumnAccess(Protocol):
    def __getattr__(self, name: str) -> ColumnElement[Any]: ...


class Columns(Protocol):
    """What conditions are built from: a table's or alias's columns, as `rows.c.name`."""

    @property
    def c(self) -> ColumnAccess: ...

    def __hash__(self) -> int: ...  # by identity: conditions on them are cached


class UnindexedView:
    """The columns of `rows`, those named in `hidden` wrapped in `Unindexed`: conditions
    built on the view find the rows through the remaining columns' indexes only."""

    def __init__(self, rows: FromClause, hidden: Iterable[str]) -> None:
        self.rows = rows
        self.c = _ViewColumns(rows, hidden)


class _ViewColumns:
    def __init__(self, rows: FromClause, hidden: Iterable[str]) -> None:
        self._columns = rows.c
        self._hidden = {name: Unindexed(rows.c[name]) for name in hidden if name in rows.c}

    def __getattr__(self, name: str) -> ColumnElement[Any]:
        hidden = self._hidden.get(name)
        column: ColumnElement[Any] = (hidden if hidden is not None
                                      else getattr(self._columns, name))
        return column


def after_prefix(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix` (None: no bound):
    `column` begins with `prefix` when `prefix <= column < after_prefix(prefix)`, a range of
    its index. The column must compare by code point (store.tables.Prefixed): SQLite's LIKE
    ignores ASCII case and reads no index, PostgreSQL's reads none unless the column's
    collation is "C"."""
    stem = prefix.rstrip(chr(0x10FFFF))
    if not stem:
        return None
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: no text holds them
        following = 0xE000
    return stem[:-1] + chr(following)
