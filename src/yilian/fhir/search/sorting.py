"""`_sort` and the paging cursor that stays right when data changes.

A sort key is a parameter's value per resource: the lowest (ascending) or highest
(descending) of its index rows, so a patient with two names sorts by the first in order.
Resources without a value come last either way; the primary key breaks ties. The cursor is
the last row's keys (keyset paging): the next page starts after them, so rows written or
deleted meanwhile neither repeat nor skip rows of later pages, as an offset would.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    Table,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.types import NullType

from yilian.errors import BadRequest
from yilian.fhir.search.predicates import of_param
from yilian.fhir.search.registry import ParamType, SearchParam, get_registry
from yilian.fhir.store.tables import (
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)
from yilian.kit.sqlhints import UnindexedView


@dataclass(frozen=True, slots=True)
class SortKey:
    code: str  # as written, without the '-'
    descending: bool
    param: SearchParam | None  # None for _id and _lastUpdated

    def written(self) -> str:
        return f"-{self.code}" if self.descending else self.code


_SORTABLE = frozenset({ParamType.DATE, ParamType.STRING, ParamType.TOKEN, ParamType.NUMBER,
                       ParamType.QUANTITY, ParamType.REFERENCE, ParamType.URI})


def parse_sort(res_type: str | None, values: Sequence[str]) -> tuple[SortKey, ...]:
    """`_sort=-date,name` (and repeated _sort parameters, in order). Across types (None),
    only _id and _lastUpdated."""
    keys: list[SortKey] = []
    for raw in values:
        for item in raw.split(","):
            code = item.strip()
            descending = code.startswith("-")
            code = code.removeprefix("-")
            if not code:
                raise BadRequest("YL-2030", f"_sort has an empty key in '{raw}'",
                                 expression=("_sort",))
            if code in ("_id", "_lastUpdated"):
                keys.append(SortKey(code, descending, None))
                continue
            param = get_registry().get(res_type, code) if res_type else None
            if param is None or param.type not in _SORTABLE:
                raise BadRequest(
                    "YL-2031",
                    f"_sort: {res_type or 'a search across types'} has no parameter '{code}' "
                    "to sort by"
                    if param is None else
                    f"_sort: '{code}' is a {param.type.value} parameter, which cannot be sorted",
                    expression=("_sort",),
                )
            keys.append(SortKey(code, descending, param))
    return tuple(keys)


def sort_value(key: SortKey, res_type: str, pk: ColumnElement[Any],
               alias: Callable[[Table], FromClause]) -> ColumnElement[Any]:
    """The key's value for the resource with primary key `pk` (`alias`: the statement's)."""
    if key.param is None:
        own = alias(resource)
        column = own.c.res_id if key.code == "_id" else own.c.last_updated
        return select(column).where(own.c.pk == pk).scalar_subquery()
    rows, value = sort_column(key, alias)
    pick = func.max if key.descending else func.min
    return (
        select(pick(value))
        .where(rows.c.resource_pk == pk, of_param(_unindexed_type(rows), res_type, key.param))
        .scalar_subquery()
    )


def sort_column(key: SortKey, alias: Callable[[Table], FromClause]
                ) -> tuple[FromClause, ColumnElement[Any]]:
    """A new alias of the parameter's index table (`alias`: the statement's), and the
    column its sort value is the lowest (ascending) or highest (descending) of."""
    assert key.param is not None
    table, ascending_column, descending_column = _SOURCES[key.param.type]
    rows = alias(table)
    return rows, descending_column(rows) if key.descending else ascending_column(rows)


@lru_cache(maxsize=256)  # one per alias (plan.Names makes them once): of_param's cache key
def _unindexed_type(rows: FromClause) -> UnindexedView:
    return UnindexedView(rows, ("res_type",))


def _col(name: str) -> Any:
    return lambda table: table.c[name]


_SOURCES: dict[ParamType, tuple[Any, Any, Any]] = {
    ParamType.DATE: (idx_date, _col("low"), _col("high")),
    ParamType.STRING: (idx_string, _col("value_norm"), _col("value_norm")),
    ParamType.TOKEN: (idx_token, _col("code"), _col("code")),
    ParamType.NUMBER: (idx_number, _col("value"), _col("value")),
    ParamType.QUANTITY: (idx_quantity, _col("value"), _col("value")),
    ParamType.REFERENCE: (idx_reference, _col("target_id"), _col("target_id")),
    ParamType.URI: (idx_uri, _col("uri"), _col("uri")),
}


def order_by(columns: Sequence[ColumnElement[Any]], keys: Sequence[SortKey],
             pk: ColumnElement[Any]) -> list[Any]:
    ordering: list[Any] = [
        (column.desc() if key.descending else column.asc()).nulls_last()
        for column, key in zip(columns, keys, strict=True)
    ]
    ordering.append(pk.asc())
    return ordering


def after(columns: Sequence[ColumnElement[Any]], keys: Sequence[SortKey],
          pk: ColumnElement[Any], missing: Sequence[bool]) -> ColumnElement[bool]:
    """Rows that come after the cursor's row in `order_by`'s order (nulls last): its values
    bound as `cursor_0`... (`Cursor.bind`), `missing` telling which it has none of."""
    alternatives: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for number, (column, key, none) in enumerate(zip(columns, keys, missing, strict=True)):
        same: ColumnElement[bool]
        if none:
            later: ColumnElement[bool] = false()  # nothing sorts after a missing value
            same = column.is_(None)
        else:
            value = untyped(f"cursor_{number}")
            beyond = column < value if key.descending else column > value
            later = or_(beyond, column.is_(None))
            same = column == value
        alternatives.append(and_(*equal, later))
        equal.append(same)
    alternatives.append(and_(*equal, pk > untyped("cursor_pk")))
    return or_(*alternatives)


def untyped(name: str) -> BindParameter[Any]:
    # A comparison gives it the type of its column (UtcDateTime...).
    return bindparam(name, type_=NullType())


# --- the cursor ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cursor:
    values: tuple[Any, ...]  # the last row's sort values
    pk: int
    # Per type searched, the criterion the first page started from (search.plan.choose):
    # the next pages start from it too, without counting the candidates again.
    source: tuple[int, ...] = ()
    # The page before was read by a walk (search.walk): so is this one, if it can be.
    walked: bool = False

    @property
    def missing(self) -> tuple[bool, ...]:
        """Which sort values the row has none of (the shape of `after`'s condition)."""
        return tuple(value is None for value in self.values)

    def bind(self) -> dict[str, Any]:
        """The values of `after`'s bind parameters."""
        bound = {f"cursor_{n}": value for n, value in enumerate(self.values)
                 if value is not None}
        bound["cursor_pk"] = self.pk
        return bound

    def encode(self) -> str:
        data: dict[str, Any] = {"v": [_dump(v) for v in self.values], "p": self.pk}
        if self.source:
            data["s"] = list(self.source)
        if self.walked:
            data["w"] = 1
        payload = orjson.dumps(data)
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(text: str, keys: int) -> Cursor:
    problem = BadRequest("YL-2010", "The _cursor parameter is not one this server issued for "
                         "this search", expression=("_cursor",))
    try:
        padded = text + "=" * (-len(text) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        values = tuple(_load(v) for v in data["v"])
        pk = data["p"]
        source = tuple(data.get("s", ()))
        walked = data.get("w") == 1
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error,
            InvalidOperation, UnicodeEncodeError):
        raise problem from None
    if type(pk) is not int or len(values) != keys or any(type(n) is not int for n in source):
        raise problem
    return Cursor(values, pk, source, walked)


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if isinstance(value, float):
        return {"d": repr(value)}
    return value  # str, int or None


def _load(value: Any) -> Any:
    if isinstance(value, dict):
        if "t" in value:
            moment = datetime.fromisoformat(value["t"])
            if moment.tzinfo is None:
                raise ValueError("naive instant")
            return moment
        return Decimal(value["d"])
    if value is None or isinstance(value, str | int):
        return value
    raise ValueError("not a sort value")
