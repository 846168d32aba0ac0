"""Expressions → SQL: one builder per parameter type, over the idx_* tables.

Every node becomes a condition on a subject, an alias of the resource table: `pk IN (the
index rows' resource_pk that match)`. Index rows exist only for current, live versions, so
an inner query needs no version or deletion check of its own; a chain's target joins the
resource table to turn a reference's (type, id) into a pk.

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

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    false,
    not_,
    or_,
    select,
    true,
)

from yilian.errors import BadRequest
from yilian.fhir.search.composite import composite_hash, query_key
from yilian.fhir.search.expressions import (
    All,
    AnyOf,
    Chain,
    Expression,
    Has,
    Ids,
    LastUpdated,
    Match,
    Missing,
)
from yilian.fhir.search.registry import ParamType, SearchParam, get_registry
from yilian.fhir.search.values import DateValue, NumberValue, Prefix, QuantityValue
from yilian.fhir.store.tables import (
    INDEX_TABLES,
    idx_composite,
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)
from yilian.kit.clock import utcnow
from yilian.kit.hashing import hash64
from yilian.kit.text import normalize_for_search

Condition = ColumnElement[bool]


def condition(expr: Expression, subject: FromClause, res_type: str, base_url: str | None
              ) -> Condition:
    """The SQL condition that a row of `subject` (a resource of `res_type`) matches."""
    match expr:
        case All(children):
            return and_(true(), *(condition(c, subject, res_type, base_url) for c in children))
        case AnyOf(children):
            return or_(false(), *(condition(c, subject, res_type, base_url) for c in children))
        case Ids(values):
            return subject.c.res_id.in_(values)
        case LastUpdated(values):
            column = subject.c.last_updated
            return or_(*(_range_prefix(column, column, v.prefix, v.low, v.high, _date_slack(v))
                         for v in values))
        case Missing(param, missing):
            table = INDEX_TABLES[_table_of(param)]
            having = subject.c.pk.in_(_rows(table, res_type, param.code))
            return not_(having) if missing else having
        case Match(param, modifier, values):
            return _match(param, modifier, values, subject, res_type, base_url)
        case Chain(param, targets):
            return subject.c.pk.in_(_chain(param, targets, res_type, base_url))
        case Has(source_type, param, inner):
            return subject.c.pk.in_(_has(source_type, param, inner, res_type, base_url))
    raise AssertionError(f"no SQL for {expr!r}")


def _table_of(param: SearchParam) -> str:
    return "composite" if param.type is ParamType.COMPOSITE else param.type.value


def _rows(table: Any, res_type: str, code: str, *where: Condition) -> Select[Any]:
    """The resource pks with index rows of one parameter that meet `where`."""
    return select(table.c.resource_pk).where(
        table.c.res_type == res_type, table.c.param == code, *where
    )


def _match(param: SearchParam, modifier: str | None, values: Sequence[Any],
           subject: FromClause, res_type: str, base_url: str | None) -> Condition:
    pk = subject.c.pk
    match param.type:
        case ParamType.TOKEN:
            found = pk.in_(_token(res_type, param.code, modifier, values))
            return not_(found) if modifier == "not" else found
        case ParamType.STRING:
            return pk.in_(_rows(idx_string, res_type, param.code,
                                or_(*(_string(modifier, v) for v in values))))
        case ParamType.REFERENCE:
            return pk.in_(_rows(idx_reference, res_type, param.code,
                                or_(*(_reference(param, modifier, v, base_url)
                                      for v in values))))
        case ParamType.URI:
            return pk.in_(_rows(idx_uri, res_type, param.code,
                                or_(*(_uri(modifier, v) for v in values))))
        case ParamType.DATE:
            return pk.in_(_rows(idx_date, res_type, param.code, or_(*(
                _range_prefix(idx_date.c.low, idx_date.c.high, v.prefix, v.low, v.high,
                              _date_slack(v))
                for v in values))))
        case ParamType.NUMBER:
            return pk.in_(_rows(idx_number, res_type, param.code,
                                or_(*(_number(idx_number.c.value, v) for v in values))))
        case ParamType.QUANTITY:
            return pk.in_(_rows(idx_quantity, res_type, param.code,
                                or_(*(_quantity(v) for v in values))))
        case ParamType.COMPOSITE:
            hashes = [h for v in values for h in _composite_hashes(param, v)]
            return pk.in_(_rows(idx_composite, res_type, param.code,
                                idx_composite.c.hash.in_(hashes)))
    raise AssertionError(f"no SQL for {param.type} parameters")


# --- token, string, reference, uri -------------------------------------------------------------


def _token(res_type: str, code: str, modifier: str | None, values: Sequence[str]
           ) -> Select[Any]:
    if modifier == "text":
        return _rows(idx_token, res_type, code, or_(*(
            idx_token.c.text.startswith(normalize_for_search(v), autoescape=True)
            for v in values)))
    if modifier == "of-type":
        clauses = []
        for value in values:
            type_system, type_code, ident = value.split("|")
            clauses.append(and_(idx_token.c.type_system == (type_system or None),
                                idx_token.c.type_code == type_code,
                                idx_token.c.code == ident))
        return _rows(idx_token, res_type, code, or_(*clauses))
    by_code: list[int] = []
    by_system_code: list[int] = []
    by_system: list[int] = []
    for value in values:
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
        alternatives.append(idx_token.c.hash_code.in_(by_code))
    if by_system_code:
        alternatives.append(idx_token.c.hash_sys_code.in_(by_system_code))
    if by_system:
        alternatives.append(idx_token.c.hash_sys.in_(by_system))
    # The hashes carry type and parameter: no need to filter on them again.
    return select(idx_token.c.resource_pk).where(or_(*alternatives))


def _string(modifier: str | None, value: str) -> Condition:
    if modifier == "exact":
        return idx_string.c.value_exact == value
    if modifier == "contains":
        return idx_string.c.value_norm.contains(normalize_for_search(value), autoescape=True)
    return idx_string.c.value_norm.startswith(normalize_for_search(value), autoescape=True)


def _reference(param: SearchParam, modifier: str | None, value: str, base_url: str | None
               ) -> Condition:
    local = value
    if base_url and value.startswith(base_url + "/"):
        local = value[len(base_url) + 1:]
    if "://" in local or local.startswith("urn:"):
        return idx_reference.c.url == value
    parts = local.split("/")
    if len(parts) >= 2:
        return and_(idx_reference.c.target_type == parts[0],
                    idx_reference.c.target_id == parts[1])
    if modifier:
        return and_(idx_reference.c.target_type == modifier, idx_reference.c.target_id == local)
    if len(param.targets) == 1:
        return and_(idx_reference.c.target_type == param.targets[0],
                    idx_reference.c.target_id == local)
    return idx_reference.c.target_id == local


def _uri(modifier: str | None, value: str) -> Condition:
    if modifier == "below":
        return idx_uri.c.uri.startswith(value, autoescape=True)
    if modifier == "above":
        # The stored URI is the value or one of its parents, cut at a '/'.
        parents = [value[:i] for i, char in enumerate(value) if char == "/" and i > 0]
        return idx_uri.c.uri.in_([value, *parents])
    return idx_uri.c.uri == value


# --- ranges: date, number, quantity ------------------------------------------------------------


def _date_slack(value: DateValue) -> timedelta:
    """ap's widening: 10% of the value's distance from now (as HAPI does), at least a day."""
    distance = abs(utcnow() - value.low)
    return max(distance / 10, timedelta(days=1))


def _range_prefix(low: ColumnElement[Any], high: ColumnElement[Any], prefix: Prefix,
                  s_low: datetime, s_high: datetime, slack: timedelta) -> Condition:
    """A target [low, high] against a search range [s_low, s_high] (both ends inclusive)."""
    contained = and_(low >= s_low, high <= s_high)
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


def _quantity(value: QuantityValue) -> Condition:
    matches = _number(idx_quantity.c.value, value.number)
    if value.code is None and value.system is None:
        return matches
    units: list[Condition] = [matches]
    if value.system is not None:
        units.append(idx_quantity.c.system == value.system)
        if value.code is not None:
            units.append(idx_quantity.c.code == value.code)
    elif value.code is not None:
        # `5.4||mg`: a unit code without a system, matched on the coded unit or the
        # human-readable one (many records carry only `unit`).
        units.append(or_(idx_quantity.c.code == value.code,
                         and_(idx_quantity.c.code.is_(None),
                              idx_quantity.c.unit == value.code)))
    return and_(*units)


# --- composite ---------------------------------------------------------------------------------


def _composite_hashes(param: SearchParam, value: str) -> list[int]:
    """`code$value`: one key per component, as the extractor hashes them (equality only)."""
    parts = value.split("$")
    if len(parts) != len(param.components):
        raise BadRequest(
            "YL-2024",
            f"Parameter '{param.code}' takes {len(param.components)} components "
            f"separated by '$', not '{value}'",
            expression=(param.code,),
        )
    registry = get_registry()
    keys: list[str] = []
    for (code, _), text in zip(param.components, parts, strict=True):
        component = registry.get(param.resource_type, code)
        key = query_key(component.type.value, text) if component is not None else None
        if key is None:
            return []
        keys.append(key)
    return [composite_hash(param.code, keys)]


# --- chains --------------------------------------------------------------------------------------


def _chain(param: SearchParam, targets: Sequence[tuple[str, Expression]], res_type: str,
           base_url: str | None) -> Select[Any]:
    """The pks of resources whose `param` points at a live target matching the inner
    expression: reference rows joined to the targets' resource rows by (type, id)."""
    alternatives = []
    for target_type, inner in targets:
        target = resource.alias()
        alternatives.append(
            select(idx_reference.c.resource_pk)
            .join(target, and_(target.c.res_type == idx_reference.c.target_type,
                               target.c.res_id == idx_reference.c.target_id))
            .where(idx_reference.c.res_type == res_type,
                   idx_reference.c.param == param.code,
                   idx_reference.c.target_type == target_type,
                   target.c.deleted == false(),
                   condition(inner, target, target_type, base_url))
        )
    if len(alternatives) == 1:
        return alternatives[0]
    first, *rest = alternatives
    return first.union(*rest)  # type: ignore[return-value]


def _has(source_type: str, param: SearchParam, inner: Expression, res_type: str,
         base_url: str | None) -> Select[Any]:
    """The pks of resources of `res_type` that a matching `source_type` points at."""
    source = resource.alias()
    target = resource.alias()
    return (
        select(target.c.pk)
        .select_from(idx_reference)
        .join(source, source.c.pk == idx_reference.c.resource_pk)
        .join(target, and_(target.c.res_type == idx_reference.c.target_type,
                           target.c.res_id == idx_reference.c.target_id))
        .where(idx_reference.c.res_type == source_type,
               idx_reference.c.param == param.code,
               idx_reference.c.target_type == res_type,
               condition(inner, source, source_type, base_url))
    )

