"""Search as the record's own writes and reads need it: criteria → SQL over the index tables.

Parse the query into criteria (one per parameter occurrence: values inside are ORed, criteria
are ANDed), build one predicate per parameter type against its index table, and select the
matching resources in a stable order (their primary key) so paging by cursor never shifts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Select, and_, not_, or_, select, true

from yilian.errors import BadRequest, OutcomeIssue
from yilian.fhir.search.registry import ParamType, SearchParam, get_registry
from yilian.fhir.store.tables import (
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)
from yilian.kit.hashing import hash64
from yilian.kit.text import normalize_for_search

# Parameters about the result, not the match (handled by the caller or ignored here).
RESULT_PARAMETERS = frozenset(
    {"_count", "_cursor", "_format", "_pretty", "_summary", "_elements", "_total", "_sort",
     "_include", "_revinclude", "_contained", "_containedType"}
)


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str  # as written, with its modifier: "identifier:of-type"
    code: str
    modifier: str | None
    param: SearchParam | None  # None for _id
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    criteria: tuple[Criterion, ...]
    ignored: tuple[OutcomeIssue, ...]  # what lenient handling skipped, for the outcome entry

    def applied(self) -> list[tuple[str, str]]:
        return [(c.name, ",".join(c.values)) for c in self.criteria]


_SUPPORTED_MODIFIERS: dict[ParamType, frozenset[str | None]] = {
    ParamType.TOKEN: frozenset({None, "not", "text", "of-type"}),
    ParamType.STRING: frozenset({None, "exact", "contains"}),
    ParamType.REFERENCE: frozenset({None}),
    ParamType.URI: frozenset({None, "below"}),
}


SUPPORTED_TYPES = frozenset(t.value for t in _SUPPORTED_MODIFIERS)


def parse_query(res_type: str, pairs: Sequence[tuple[str, str]], *, strict: bool) -> ParsedQuery:
    registry = get_registry()
    criteria: list[Criterion] = []
    ignored: list[OutcomeIssue] = []

    def refuse(name: str, why: str) -> None:
        if strict:
            raise BadRequest("YL-2001", why, expression=(name,))
        ignored.append(OutcomeIssue("warning", "not-supported", f"Ignored: {why}", (name,)))

    for name, raw in pairs:
        if name in RESULT_PARAMETERS:
            continue
        code, _, modifier_text = name.partition(":")
        modifier = modifier_text or None
        if "\x00" in raw or "\x00" in name:
            raise BadRequest("YL-2003", f"Parameter '{name}' holds a NUL character",
                             expression=(name,))
        values = tuple(_split_or(raw))
        if not values or any(v == "" for v in values):
            refuse(name, f"Parameter '{name}' has an empty value")
            continue
        if code == "_id":
            if modifier is not None:
                refuse(name, f"Modifier ':{modifier}' is not supported on _id")
                continue
            criteria.append(Criterion(name, code, None, None, values))
            continue
        param = registry.get(res_type, code)
        if param is None:
            refuse(name, f"Unknown search parameter '{code}' for {res_type}")
            continue
        allowed = _SUPPORTED_MODIFIERS.get(param.type)
        if allowed is None:
            refuse(name, f"Search on {param.type.value} parameter '{code}' is not supported yet")
            continue
        if param.type is ParamType.REFERENCE and modifier in registry_types():
            criteria.append(Criterion(name, code, modifier, param, values))
            continue
        if modifier not in allowed:
            refuse(name, f"Modifier ':{modifier}' is not supported on '{code}'")
            continue
        criteria.append(Criterion(name, code, modifier, param, values))
    return ParsedQuery(tuple(criteria), tuple(ignored))


def registry_types() -> frozenset[str]:
    from yilian.fhir.definitions import resource_types

    return resource_types()


def _split_or(raw: str) -> list[str]:
    """Split on commas that are not escaped with a backslash; unescape \\, \\| \\$."""
    values: list[str] = []
    current: list[str] = []
    escaped = False
    for char in raw:
        if escaped:
            current.append(char if char in ",$|\\" else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return values


def _split_token(value: str) -> tuple[str | None, str | None, bool]:
    """(system, code, has_bar) for `system|code`, `|code`, `system|`, `code`."""
    if "|" not in value:
        return None, value, False
    system, _, code = value.partition("|")
    return (system or None), (code or None), True


def _token_predicate(res_type: str, criterion: Criterion) -> ColumnElement[bool]:
    code_name = criterion.code
    if criterion.modifier == "text":
        matches = [
            idx_token.c.text.startswith(normalize_for_search(v), autoescape=True)
            for v in criterion.values
        ]
        inner: ColumnElement[bool] = and_(
            idx_token.c.res_type == res_type, idx_token.c.param == code_name, or_(*matches)
        )
        return resource.c.pk.in_(select(idx_token.c.resource_pk).where(inner))
    if criterion.modifier == "of-type":
        clauses = []
        for value in criterion.values:
            parts = value.split("|")
            if len(parts) != 3:
                raise BadRequest(
                    "YL-2002",
                    f"'{value}' is not of the form system|code|value for :of-type",
                    expression=(criterion.name,),
                )
            type_system, type_code, ident = parts
            clauses.append(
                and_(
                    idx_token.c.type_system == (type_system or None),
                    idx_token.c.type_code == type_code,
                    idx_token.c.code == ident,
                )
            )
        return resource.c.pk.in_(
            select(idx_token.c.resource_pk).where(
                idx_token.c.res_type == res_type, idx_token.c.param == code_name, or_(*clauses)
            )
        )
    hashes_code: list[int] = []
    hashes_sys_code: list[int] = []
    hashes_sys: list[int] = []
    for value in criterion.values:
        system, code, has_bar = _split_token(value)
        if not has_bar:
            hashes_code.append(hash64(res_type, code_name, code))
        elif code is None:
            hashes_sys.append(hash64(res_type, code_name, system))
        else:
            hashes_sys_code.append(hash64(res_type, code_name, system, code))
    alternatives = []
    if hashes_code:
        alternatives.append(idx_token.c.hash_code.in_(hashes_code))
    if hashes_sys_code:
        alternatives.append(idx_token.c.hash_sys_code.in_(hashes_sys_code))
    if hashes_sys:
        alternatives.append(idx_token.c.hash_sys.in_(hashes_sys))
    matching = resource.c.pk.in_(select(idx_token.c.resource_pk).where(or_(*alternatives)))
    return not_(matching) if criterion.modifier == "not" else matching


def _string_predicate(res_type: str, criterion: Criterion) -> ColumnElement[bool]:
    matches = []
    for value in criterion.values:
        if criterion.modifier == "exact":
            matches.append(idx_string.c.value_exact == value)
        elif criterion.modifier == "contains":
            matches.append(
                idx_string.c.value_norm.contains(normalize_for_search(value), autoescape=True)
            )
        else:
            matches.append(
                idx_string.c.value_norm.startswith(normalize_for_search(value), autoescape=True)
            )
    return resource.c.pk.in_(
        select(idx_string.c.resource_pk).where(
            idx_string.c.res_type == res_type,
            idx_string.c.param == criterion.code,
            or_(*matches),
        )
    )


def _reference_predicate(
    res_type: str, criterion: Criterion, base_url: str | None
) -> ColumnElement[bool]:
    assert criterion.param is not None
    targets = criterion.param.targets
    matches = []
    for value in criterion.values:
        local = value
        if base_url and value.startswith(base_url + "/"):
            local = value[len(base_url) + 1 :]
        if "://" in local or local.startswith("urn:"):
            matches.append(idx_reference.c.url == value)
            continue
        parts = local.split("/")
        if len(parts) >= 2:
            target_type, target_id = parts[0], parts[1]
            matches.append(
                and_(idx_reference.c.target_type == target_type,
                     idx_reference.c.target_id == target_id)
            )
        elif criterion.modifier:
            matches.append(
                and_(idx_reference.c.target_type == criterion.modifier,
                     idx_reference.c.target_id == local)
            )
        elif len(targets) == 1:
            matches.append(
                and_(idx_reference.c.target_type == targets[0],
                     idx_reference.c.target_id == local)
            )
        else:
            matches.append(idx_reference.c.target_id == local)
    return resource.c.pk.in_(
        select(idx_reference.c.resource_pk).where(
            idx_reference.c.res_type == res_type,
            idx_reference.c.param == criterion.code,
            or_(*matches),
        )
    )


def _uri_predicate(res_type: str, criterion: Criterion) -> ColumnElement[bool]:
    matches = [
        idx_uri.c.uri.startswith(v, autoescape=True) if criterion.modifier == "below"
        else idx_uri.c.uri == v
        for v in criterion.values
    ]
    return resource.c.pk.in_(
        select(idx_uri.c.resource_pk).where(
            idx_uri.c.res_type == res_type, idx_uri.c.param == criterion.code, or_(*matches)
        )
    )


def predicate(
    res_type: str, criterion: Criterion, base_url: str | None = None
) -> ColumnElement[bool]:
    if criterion.param is None:  # _id
        return resource.c.res_id.in_(criterion.values)
    match criterion.param.type:
        case ParamType.TOKEN:
            return _token_predicate(res_type, criterion)
        case ParamType.STRING:
            return _string_predicate(res_type, criterion)
        case ParamType.REFERENCE:
            return _reference_predicate(res_type, criterion, base_url)
        case ParamType.URI:
            return _uri_predicate(res_type, criterion)
    raise AssertionError(f"no predicate for {criterion.param.type}")


def select_matches(
    res_type: str, parsed: ParsedQuery, *, base_url: str | None = None
) -> Select[int, str]:
    conditions = [predicate(res_type, c, base_url) for c in parsed.criteria]
    return select(resource.c.pk, resource.c.res_id).where(
        resource.c.res_type == res_type,
        resource.c.deleted == False,  # noqa: E712  (SQL, not Python truthiness)
        and_(true(), *conditions),
    )


def search_ids(conn: Connection, res_type: str, parsed: ParsedQuery, *, limit: int) -> list[str]:
    """Ids of up to `limit` resources matching the criteria."""
    query = select_matches(res_type, parsed).order_by(resource.c.pk).limit(limit)
    return [row[1] for row in conn.execute(query)]


def search_page(
    conn: Connection,
    res_type: str,
    parsed: ParsedQuery,
    *,
    count: int,
    after_pk: int | None,
    base_url: str | None,
) -> tuple[list[int], int | None]:
    """Primary keys of one page in pk order, and the cursor for the next page."""
    query = select_matches(res_type, parsed, base_url=base_url)
    if after_pk is not None:
        query = query.where(resource.c.pk > after_pk)
    rows = conn.execute(query.order_by(resource.c.pk).limit(count + 1)).all()
    pks = [row[0] for row in rows[:count]]
    return pks, (pks[-1] if len(rows) > count and pks else None)
