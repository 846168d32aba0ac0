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

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Table,
    and_,
    literal_column,
    not_,
    or_,
    tuple_,
)

from yilian.fhir.definitions import resource_types
from yilian.fhir.search.dates import DATE_MAX, DATE_MIN
from yilian.fhir.search.expressions import Match
from yilian.fhir.search.registry import ParamType, SearchParam
from yilian.fhir.search.unions import stored_codes
from yilian.fhir.search.values import (
    DateValue,
    NumberValue,
    Prefix,
    QuantityValue,
    split_escaped,
    unescape,
)
from yilian.fhir.store.tables import INDEX_TABLES
from yilian.kit.clock import utcnow
from yilian.kit.hashing import hash64
from yilian.kit.sqlhints import Columns, after_prefix
from yilian.kit.text import MAX_INDEXED_LENGTH, normalize_for_search

Condition = ColumnElement[bool]
Binds = Iterator[BindParameter[Any]]  # a criterion's bind parameters, taken in order


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


# --- a criterion's values, apart from its SQL ----------------------------------------------------
#
# A search's SQL is made once per *shape* (search.binding): what a criterion's values are
# bound as and how they combine (its `form`) is part of the shape; the values themselves are
# bound parameters. `prepare` turns a Match's values into (form, bound values) in the order
# the SQL below takes them; the SQL builders get the form and the bind parameters.


class Bound(Protocol):
    """A criterion's form and its values' bind parameters, in `prepare`'s order."""

    @property
    def form(self) -> tuple[Any, ...]: ...

    @property
    def params(self) -> Sequence[BindParameter[Any]]: ...


def prepare(match: Match, res_type: str, base_url: str | None
            ) -> tuple[tuple[Any, ...], list[Any]]:
    """(form, values to bind) of a criterion on a resource of `res_type`."""
    param, modifier, values = match.param, match.modifier, match.values
    form: list[Any] = []
    bound: list[Any] = []
    match param.type:
        case ParamType.TOKEN:
            _prepare_token(res_type, param, modifier, values, form, bound)
        case ParamType.STRING:
            for value in values:
                if modifier == "exact" and len(value) < MAX_INDEXED_LENGTH:
                    # Shorter than the column, so stored whole: its search form is the
                    # row's value_norm, an index lookup (the exact value alone is not).
                    form.append("exact-norm")
                    bound += [normalize_for_search(value), value]
                elif modifier == "exact":
                    form.append("exact")
                    bound.append(value)
                elif modifier == "contains":
                    form.append("contains")
                    bound.append(f"%{_escape_like(normalize_for_search(value))}%")
                else:
                    form.append(_prefix_range(normalize_for_search(value), bound))
        case ParamType.REFERENCE:
            for value in values:
                form.append(_prepare_reference(param, modifier, value, base_url, bound))
        case ParamType.URI:
            for value in values:
                if modifier == "below":
                    form.append(_prefix_range(value, bound))
                elif modifier == "above":
                    # The stored URI is the value or one of its parents, cut before or
                    # after a '/' (http://acme.org/fhir and http://acme.org/fhir/ alike).
                    form.append("above")
                    bound.append([value, *(parent for i, char in enumerate(value)
                                           if char == "/" and i > 0
                                           for parent in (value[:i], value[:i + 1]))])
                else:
                    form.append("eq")
                    bound.append(value)
        case ParamType.DATE:
            for value in values:
                form.append((value.prefix, within_a_day(value)))  # the plan ranks on both
                bound.extend(date_bounds(value))
        case ParamType.NUMBER:
            for value in values:
                form.append(_prepare_number(value, bound))
        case ParamType.QUANTITY:
            for value in values:
                form.append(_prepare_quantity(value, bound))
        case _:
            raise AssertionError(f"no SQL for {param.type} parameters")
    return (param, modifier, *form), bound


def _prefix_range(prefix: str, bound: list[Any]) -> str:
    """Binds the range of strings that start with `prefix` (kit.sqlhints.after_prefix)."""
    bound.append(prefix)
    above = after_prefix(prefix)
    if above is None:
        return "from"
    bound.append(above)
    return "range"


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _prepare_token(res_type: str, param: SearchParam, modifier: str | None,
                   values: Sequence[str], form: list[Any], bound: list[Any]) -> None:
    """Token values come as written (search.query): cut at their unescaped `|`, then
    unescaped, so that `x\\|y` is the code `x|y` of no particular system."""
    if modifier == "text":
        for value in values:
            form.append(_prefix_range(normalize_for_search(unescape(value)), bound))
        return
    if modifier == "of-type":
        codes = stored_codes(param)
        for value in values:
            type_system, type_code, ident = (unescape(p) for p in split_escaped(value, "|"))
            form.append(bool(type_system))
            # The identifier's value is its row's code: the code's hash finds the rows.
            of_code = [hash64(res_type, code, ident) for code in codes]
            bound.append(of_code[0] if len(of_code) == 1 else of_code)
            bound.extend([type_system, type_code, ident] if type_system
                         else [type_code, ident])
        return
    by_code: list[int] = []
    by_system_code: list[tuple[int, int]] = []
    by_system: list[int] = []
    for value in values:
        system, token_code = token_parts(value)
        for code in stored_codes(param):
            if system is None:
                by_code.append(hash64(res_type, code, token_code))
            elif not token_code:
                by_system.append(hash64(res_type, code, system))
            else:  # `|code`: the hash of no system
                by_system_code.append((hash64(res_type, code, system or None),
                                       hash64(res_type, code, token_code)))
    # system|code is a pair of hashes, the leading columns of one index.
    for hashes in (by_code, by_system, by_system_code):
        # One (most searches) is compared, more are a list: SQLAlchemy rewrites the SQL of
        # a list's IN at every run.
        form.append(len(hashes) if len(hashes) < 2 else "list")
        if len(hashes) == 1:
            bound.extend(hashes[0] if isinstance(hashes[0], tuple) else hashes)
        elif hashes:
            bound.append(hashes)


def token_parts(value: str) -> tuple[str | None, str]:
    """(system, code) of `system|code`, `|code` (system ""), `system|` (code "") or `code`
    (system None), cut at the first `|` not escaped."""
    parts = split_escaped(value, "|", 1)
    if len(parts) == 1:
        return None, unescape(value)
    return unescape(parts[0]), unescape(parts[1])


def _prepare_reference(param: SearchParam, modifier: str | None, value: str,
                       base_url: str | None, bound: list[Any]) -> str:
    local = value
    if base_url and value.startswith(base_url + "/"):
        local = value[len(base_url) + 1:]
    if "://" in local or local.startswith("urn:"):
        bound.append(value)
        return "url"
    parts = local.split("/")
    if len(parts) >= 2:
        bound.extend(parts[:2])
        return "typed"
    if modifier:
        bound.extend([modifier, local])
        return "typed"
    if len(param.targets) == 1:
        bound.extend([param.targets[0], local])
        return "typed"
    bound.append(local)
    # A bare id of a many-typed reference: no index leads with target_id (plan ranks it).
    return "id" if ":" not in value else "id:"


def _prepare_number(value: NumberValue, bound: list[Any]) -> Prefix:
    number = value.number
    match value.prefix:
        case Prefix.EQ | Prefix.NE:
            bound.extend([value.low, value.high])
        case Prefix.AP:
            slack = max(abs(number) / 10, value.high - number)
            bound.extend([number - slack, number + slack])
        case _:
            bound.append(number)
    return value.prefix


def _prepare_quantity(value: QuantityValue, bound: list[Any]) -> tuple[Prefix, str]:
    prefix = _prepare_number(value.number, bound)
    if value.system is not None:
        bound.append(value.system)
        if value.code is not None:
            bound.append(value.code)
            return prefix, "system+code"
        return prefix, "system"
    if value.code is not None:
        bound.append(value.code)
        return prefix, "code"
    return prefix, "any"


# --- the SQL of a criterion ---------------------------------------------------------------------


def matching_rows(rows: Columns, bound: Bound, res_type: str) -> Condition:
    """The index rows (an alias of `index_table(param)`) of a resource of `res_type` that
    match any of the criterion's values. For `:not` the rows of the code itself: the caller
    negates."""
    param, modifier, *forms = bound.form
    binds = iter(bound.params)
    match param.type:
        case ParamType.TOKEN:
            return _token(rows, res_type, param, modifier, forms, binds)
        case ParamType.STRING:
            return and_(of_param(rows, res_type, param), or_(*(
                and_(rows.c.value_norm == next(binds), rows.c.value_exact == next(binds))
                if form == "exact-norm" else
                rows.c.value_exact == next(binds) if form == "exact" else
                rows.c.value_norm.like(next(binds), escape="/") if form == "contains" else
                _starts_with(rows.c.value_norm, form, binds) for form in forms)))
        case ParamType.REFERENCE:
            return and_(of_param(rows, res_type, param),
                        or_(*(_reference(rows, form, binds, param) for form in forms)))
        case ParamType.URI:
            return and_(of_param(rows, res_type, param), or_(*(
                rows.c.uri.in_(next(binds)) if form == "above" else
                rows.c.uri == next(binds) if form == "eq" else
                _starts_with(rows.c.uri, form, binds) for form in forms)))
        case ParamType.DATE:
            return and_(of_param(rows, res_type, param), or_(*(
                range_prefix(rows.c.low, rows.c.high, prefix, next(binds), next(binds))
                for prefix, _ in forms)))
        case ParamType.NUMBER:
            return and_(of_param(rows, res_type, param),
                        or_(*(_number(rows.c.value, prefix, binds) for prefix in forms)))
        case ParamType.QUANTITY:
            return and_(of_param(rows, res_type, param),
                        or_(*(_quantity(rows, form, binds) for form in forms)))
    raise AssertionError(f"no SQL for {param.type} parameters")


def _starts_with(column: ColumnElement[str], form: str, binds: Binds) -> Condition:
    low = column >= next(binds)
    return low if form == "from" else and_(low, column < next(binds))


def _token(rows: Columns, res_type: str, param: SearchParam, modifier: str | None,
           forms: Sequence[Any], binds: Binds) -> Condition:
    if modifier == "text":
        return and_(of_param(rows, res_type, param),
                    or_(*(_starts_with(rows.c.text, form, binds) for form in forms)))
    if modifier == "of-type":
        several = len(stored_codes(param)) > 1  # a list of hashes, as `_prepare_token` binds
        return and_(of_param(rows, res_type, param), or_(*(
            and_(rows.c.hash_code.in_(next(binds)) if several
                 else rows.c.hash_code == next(binds),
                 rows.c.type_system == next(binds) if with_system
                 else rows.c.type_system.is_(None),
                 rows.c.type_code == next(binds), rows.c.code == next(binds))
            for with_system in forms)))
    by_code, by_system, by_pair = forms
    pair = tuple_(rows.c.hash_sys, rows.c.hash_code)
    alternatives = [column.in_(next(binds)) if used == "list" else column == next(binds)
                    for column, used in ((rows.c.hash_code, by_code),
                                         (rows.c.hash_sys, by_system)) if used]
    if by_pair == "list":
        alternatives.append(pair.in_(next(binds)))
    elif by_pair:
        alternatives.append(and_(rows.c.hash_sys == next(binds),
                                 rows.c.hash_code == next(binds)))
    # The hashes carry type and parameter: no need to filter on them again.
    return or_(*alternatives)


def _reference(rows: Columns, form: str, binds: Binds, param: SearchParam) -> Condition:
    if form == "url":
        return rows.c.url == next(binds)
    if form == "typed":
        return and_(rows.c.target_type == next(binds), rows.c.target_id == next(binds))
    # A bare id of a many-typed reference: any of the types the parameter reaches (a row's
    # type is always one of them, or none for a URL), named so that the reference index,
    # which leads with the type, is looked up once per type instead of read through.
    return and_(_one_of_types(rows.c.target_type, reference_targets(param)),
                rows.c.target_id == next(binds))


@lru_cache(maxsize=1024)
def _one_of_types(column: ColumnElement[Any], types: tuple[str, ...]) -> Condition:
    """`column IN ('Patient', 'Group', ...)` written out: the types are fixed for a
    parameter, so the statement keeps one text (no list to expand at every run, one plan
    on PostgreSQL). Resource type names are letters alone."""
    assert all(name.isalpha() and name.isascii() for name in types), types
    return column.in_([literal_column(f"'{name}'") for name in types])


def reference_targets(param: SearchParam) -> tuple[str, ...]:
    """The types a reference parameter's values can point at (every type for an
    any-resource reference)."""
    return param.targets or tuple(sorted(resource_types()))


# --- ranges: date, number, quantity ------------------------------------------------------------


def date_slack(value: DateValue) -> timedelta:
    """ap's widening: 10% of the value's distance from now (as HAPI does), at least a day."""
    distance = abs(utcnow() - value.low)
    return max(distance / 10, timedelta(days=1))


def within_a_day(value: DateValue) -> bool:
    """An eq date of a day or less (`date=2019-03-01`): usually fewer rows than a code."""
    return value.prefix is Prefix.EQ and value.high - value.low < timedelta(days=1)


def date_bounds(value: DateValue) -> tuple[datetime, datetime]:
    """The search range `range_prefix` compares with: the value's, widened for ap. Widened
    past year 1 or 9999 (`ap0001` reaches back 200 years) it stops at the calendar's ends,
    where open Periods end too: nothing lies beyond them to be matched."""
    if value.prefix is Prefix.AP:
        slack = date_slack(value)
        return (value.low - min(slack, value.low - DATE_MIN),
                value.high + min(slack, DATE_MAX - value.high))
    return value.low, value.high


def range_prefix(low: ColumnElement[Any], high: ColumnElement[Any], prefix: Prefix,
                 s_low: object, s_high: object) -> Condition:
    """A target [low, high] against a search range [s_low, s_high] (both ends inclusive;
    for ap, already widened: `date_bounds`). `low <= s_high` in `contained` follows from
    low <= high; written out, it bounds the range an index on low is read over (a day, not
    everything after it)."""
    match prefix:
        case Prefix.EQ:
            return and_(low >= s_low, low <= s_high, high <= s_high)
        case Prefix.NE:
            return not_(and_(low >= s_low, low <= s_high, high <= s_high))
        case Prefix.GT:
            return high > s_high
        case Prefix.LT:
            return low < s_low
        case Prefix.GE:
            return or_(high > s_high, and_(low >= s_low, low <= s_high, high <= s_high))
        case Prefix.LE:
            return or_(low < s_low, and_(low >= s_low, low <= s_high, high <= s_high))
        case Prefix.SA:
            return low > s_high
        case Prefix.EB:
            return high < s_low
        case Prefix.AP:
            return and_(low <= s_high, high >= s_low)
    raise AssertionError(prefix)


def _number(column: ColumnElement[Any], prefix: Prefix, binds: Binds) -> Condition:
    match prefix:
        case Prefix.EQ:
            return and_(column >= next(binds), column < next(binds))
        case Prefix.NE:
            return or_(column < next(binds), column >= next(binds))
        case Prefix.GT | Prefix.SA:
            return column > next(binds)
        case Prefix.LT | Prefix.EB:
            return column < next(binds)
        case Prefix.GE:
            return column >= next(binds)
        case Prefix.LE:
            return column <= next(binds)
        case Prefix.AP:
            return and_(column >= next(binds), column <= next(binds))
    raise AssertionError(prefix)


def _quantity(rows: Columns, form: tuple[Prefix, str], binds: Binds) -> Condition:
    prefix, units = form
    matches = _number(rows.c.value, prefix, binds)
    match units:
        case "system+code":
            return and_(matches, rows.c.system == next(binds), rows.c.code == next(binds))
        case "system":
            return and_(matches, rows.c.system == next(binds))
        case "code":
            # `5.4||mg`: a unit code without a system, matched on the coded unit or the
            # human-readable one (many records carry only `unit`).
            code = next(binds)
            return and_(matches, or_(rows.c.code == code,
                                     and_(rows.c.code.is_(None), rows.c.unit == code)))
    return matches
