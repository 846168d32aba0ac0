"""One parameter's criterion → the condition its index rows meet: one builder per parameter
type, over an alias of the type's idx_* table (`plan` decides where the rows are looked up:
as the rows a search starts from, or probed by resource_pk to check a candidate).

Prefix semantics (R4 search §3.1.1.4): a date is the range it spans, a target too (a Period
from its start's low to its end's high), and
    eq  the search range contains the target     ne  not eq
    gt  the target ends after the search range    lt  the target starts before it
    ge  gt or eq                                  le  lt or eq
    sa  the target starts after the search range  eb  the target ends before it
    ap  the target overlaps the search range widened by 10% of its distance from now
Numbers and quantities compare the target's value: eq and ne within the implicit range of
the written precision (100 is [99.5, 100.5)), gt/lt/ge/le/sa/eb against the number exactly,
ap within 10% of it (at least the precision range).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, not_, or_

from yilian.fhir.search.registry import ParamType, SearchParam
from yilian.fhir.search.unions import stored_codes
from yilian.fhir.search.values import DateValue, NumberValue, Prefix, QuantityValue
from yilian.fhir.store.tables import INDEX_TABLES
from yilian.kit.clock import utcnow
from yilian.kit.hashing import hash64
from yilian.kit.sqlhints import Columns, starts_with
from yilian.kit.text import normalize_for_search

Condition = ColumnElement[bool]


def index_table(param: SearchParam) -> Table:
    return INDEX_TABLES[param.type.value]


def of_param(rows: Columns, res_type: str, param: SearchParam) -> Condition:
    """The rows of the parameter's values: its own, or those of the parameters it unites
    (search/unions.py)."""
    return _of_codes(rows, res_type, stored_codes(param))


# Made once per (alias, type, codes): aliases are made once per process (plan.Names),
# SQLAlchemy's expressions are immutable, and building these was a tenth of a search.
@lru_cache(maxsize=8192)
def _of_codes(rows: Columns, res_type: str, codes: tuple[str, ...]) -> Condition:
    return and_(rows.c.res_type == res_type,
                rows.c.param == codes[0] if len(codes) == 1 else rows.c.param.in_(codes))


def matching_rows(rows: Columns, param: SearchParam, modifier: str | None,
                  values: Sequence[Any], res_type: str, base_url: str | None) -> Condition:
    """The index rows (an alias of `index_table(param)`) of a resource of `res_type` that
    match any of the values. For `:not` the rows of the code itself: the caller negates."""
    match param.type:
        case ParamType.TOKEN:
            return _token(rows, res_type, param, modifier, values)
        case ParamType.STRING:
            return and_(of_param(rows, res_type, param),
                        or_(*(_string(rows, modifier, v) for v in values)))
        case ParamType.REFERENCE:
            return and_(of_param(rows, res_type, param),
                        or_(*(_reference(rows, param, modifier, v, base_url) for v in values)))
        case ParamType.URI:
            return and_(of_param(rows, res_type, param),
                        or_(*(_uri(rows, modifier, v) for v in values)))
        case ParamType.DATE:
            return and_(of_param(rows, res_type, param), or_(*(
                range_prefix(rows.c.low, rows.c.high, v.prefix, v.low, v.high, date_slack(v))
                for v in values)))
        case ParamType.NUMBER:
            return and_(of_param(rows, res_type, param),
                        or_(*(_number(rows.c.value, v) for v in values)))
        case ParamType.QUANTITY:
            return and_(of_param(rows, res_type, param),
                        or_(*(_quantity(rows, v) for v in values)))
    raise AssertionError(f"no SQL for {param.type} parameters")


# --- token, string, reference, uri -------------------------------------------------------------


def _token(rows: Columns, res_type: str, param: SearchParam, modifier: str | None,
           values: Sequence[str]) -> Condition:
    if modifier == "text":
        return and_(of_param(rows, res_type, param), or_(*(
            starts_with(rows.c.text, normalize_for_search(v)) for v in values)))
    if modifier == "of-type":
        clauses = []
        for value in values:
            type_system, type_code, ident = value.split("|")
            clauses.append(and_(rows.c.type_system == (type_system or None),
                                rows.c.type_code == type_code,
                                rows.c.code == ident))
        return and_(of_param(rows, res_type, param), or_(*clauses))
    by_code: list[int] = []
    by_system_code: list[int] = []
    by_system: list[int] = []
    for value, code in itertools.product(values, stored_codes(param)):
        if "|" not in value:
            by_code.append(hash64(res_type, code, value))
            continue
        system, _, token_code = value.partition("|")
        if not token_code:
            by_system.append(hash64(res_type, code, system))
        else:
            by_system_code.append(hash64(res_type, code, system or None, token_code))
    alternatives = []
    if by_code:
        alternatives.append(rows.c.hash_code.in_(by_code))
    if by_system_code:
        alternatives.append(rows.c.hash_sys_code.in_(by_system_code))
    if by_system:
        alternatives.append(rows.c.hash_sys.in_(by_system))
    # The hashes carry type and parameter: no need to filter on them again.
    return or_(*alternatives)


def _string(rows: Columns, modifier: str | None, value: str) -> Condition:
    if modifier == "exact":
        return rows.c.value_exact == value
    if modifier == "contains":
        return rows.c.value_norm.contains(normalize_for_search(value), autoescape=True)
    return starts_with(rows.c.value_norm, normalize_for_search(value))


def _reference(rows: Columns, param: SearchParam, modifier: str | None, value: str,
               base_url: str | None) -> Condition:
    local = value
    if base_url and value.startswith(base_url + "/"):
        local = value[len(base_url) + 1:]
    if "://" in local or local.startswith("urn:"):
        return rows.c.url == value
    parts = local.split("/")
    if len(parts) >= 2:
        return and_(rows.c.target_type == parts[0], rows.c.target_id == parts[1])
    if modifier:
        return and_(rows.c.target_type == modifier, rows.c.target_id == local)
    if len(param.targets) == 1:
        return and_(rows.c.target_type == param.targets[0], rows.c.target_id == local)
    return rows.c.target_id == local


def _uri(rows: Columns, modifier: str | None, value: str) -> Condition:
    if modifier == "below":
        return starts_with(rows.c.uri, value)
    if modifier == "above":
        # The stored URI is the value or one of its parents, cut at a '/'.
        parents = [value[:i] for i, char in enumerate(value) if char == "/" and i > 0]
        return rows.c.uri.in_([value, *parents])
    return rows.c.uri == value


# --- ranges: date, number, quantity ------------------------------------------------------------


def date_slack(value: DateValue) -> timedelta:
    """ap's widening: 10% of the value's distance from now (as HAPI does), at least a day."""
    distance = abs(utcnow() - value.low)
    return max(distance / 10, timedelta(days=1))


def range_prefix(low: ColumnElement[Any], high: ColumnElement[Any], prefix: Prefix,
                 s_low: datetime, s_high: datetime, slack: timedelta) -> Condition:
    """A target [low, high] against a search range [s_low, s_high] (both ends inclusive).
    `low <= s_high` in `contained` follows from low <= high; written out, it bounds the
    range an index on low is read over (a day, not everything after it)."""
    contained = and_(low >= s_low, low <= s_high, high <= s_high)
    match prefix:
        case Prefix.EQ:
            return contained
        case Prefix.NE:
            return not_(contained)
        case Prefix.GT:
            return high > s_high
        case Prefix.LT:
            return low < s_low
        case Prefix.GE:
            return or_(high > s_high, contained)
        case Prefix.LE:
            return or_(low < s_low, contained)
        case Prefix.SA:
            return low > s_high
        case Prefix.EB:
            return high < s_low
        case Prefix.AP:
            return and_(low <= s_high + slack, high >= s_low - slack)
    raise AssertionError(prefix)


def _number(column: ColumnElement[Any], value: NumberValue) -> Condition:
    number = value.number
    match value.prefix:
        case Prefix.EQ:
            return and_(column >= value.low, column < value.high)
        case Prefix.NE:
            return or_(column < value.low, column >= value.high)
        case Prefix.GT | Prefix.SA:
            return column > number
        case Prefix.LT | Prefix.EB:
            return column < number
        case Prefix.GE:
            return column >= number
        case Prefix.LE:
            return column <= number
        case Prefix.AP:
            slack = max(abs(number) / 10, value.high - number)
            return and_(column >= number - slack, column <= number + slack)
    raise AssertionError(value.prefix)


def _quantity(rows: Columns, value: QuantityValue) -> Condition:
    matches = _number(rows.c.value, value.number)
    if value.code is None and value.system is None:
        return matches
    units: list[Condition] = [matches]
    if value.system is not None:
        units.append(rows.c.system == value.system)
        if value.code is not None:
            units.append(rows.c.code == value.code)
    elif value.code is not None:
        # `5.4||mg`: a unit code without a system, matched on the coded unit or the
        # human-readable one (many records carry only `unit`).
        units.append(or_(rows.c.code == value.code,
                         and_(rows.c.code.is_(None), rows.c.unit == value.code)))
    return and_(*units)
