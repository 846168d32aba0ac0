"""Search: the query string → an expression tree → SQL over the index tables.

Parse the query into criteria (one per parameter occurrence: values inside are ORed, criteria
are ANDed), each an expression (search.expressions) that search.predicates turns into SQL,
and select the matching resources in a stable order (their primary key) so paging by cursor
never shifts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, Select, and_, bindparam, func, select, union_all
from sqlalchemy.types import NullType

from yilian.errors import BadRequest, OutcomeIssue
from yilian.fhir.search import values as parse_values
from yilian.fhir.search import walk
from yilian.fhir.search.binding import Binding
from yilian.fhir.search.composite import Branch, layout
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
    Together,
)
from yilian.fhir.search.extract import has_identifiers
from yilian.fhir.search.plan import (
    FROM_RESOURCES,
    Count,
    Names,
    Plan,
    can_start_from,
    choose,
    conjuncts,
    is_type_free,
    pins,
    plan,
    probe,
    type_free_plan,
)
from yilian.fhir.search.registry import ParamType, SearchParam, get_registry, identifier_param
from yilian.fhir.search.sorting import Cursor, SortKey, after, order_by, sort_value
from yilian.fhir.search.statements import STATEMENTS
from yilian.fhir.search.values import split_escaped, unescape
from yilian.fhir.search.walk import Walk, walk_rows, walkable, walks_in_pk_order
from yilian.fhir.store.sql import VERSION_COLUMNS, StoredVersion, stored_version
from yilian.fhir.store.tables import resource, resource_version

# Parameters about the result, not the match (handled by the caller or ignored here).
RESULT_PARAMETERS = frozenset(
    {"_count", "_cursor", "_format", "_pretty", "_summary", "_elements", "_total", "_sort",
     "_include", "_revinclude"}
)

_MODIFIERS: dict[ParamType, frozenset[str]] = {
    ParamType.TOKEN: frozenset({"not", "text", "of-type"}),
    ParamType.STRING: frozenset({"exact", "contains"}),
    ParamType.REFERENCE: frozenset(),  # a target type (`subject:Patient`), below
    ParamType.URI: frozenset({"below", "above"}),
    ParamType.DATE: frozenset(),
    ParamType.NUMBER: frozenset(),
    ParamType.QUANTITY: frozenset(),
    ParamType.COMPOSITE: frozenset(),
}

# Types whose parameters can be searched (the CapabilityStatement lists these).
SUPPORTED_TYPES = frozenset(t.value for t in _MODIFIERS)

# Parameters of the specification this server does not search (yet): named here so that the
# answer says "not supported" rather than "unknown".
UNSUPPORTED_CODES = frozenset({"_text", "_content", "_query", "_filter",
                               "_contained", "_containedType"})


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str  # as written, with its modifier and chain: "subject:Patient.name"
    value: str  # as written
    expression: Expression


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    criteria: tuple[Criterion, ...]
    ignored: tuple[OutcomeIssue, ...]  # what lenient handling skipped, for the outcome entry

    def applied(self) -> list[tuple[str, str]]:
        return [(c.name, c.value) for c in self.criteria]

    def expression(self) -> Expression:
        return All(tuple(c.expression for c in self.criteria))


class _Skip(Exception):
    """A criterion lenient handling ignores (strict handling turns it into a 400)."""


def parse_query(res_type: str, pairs: Sequence[tuple[str, str]], *, strict: bool) -> ParsedQuery:
    criteria: list[Criterion] = []
    ignored: list[OutcomeIssue] = []
    for name, raw in pairs:
        if name.partition(":")[0] in RESULT_PARAMETERS:  # _include:iterate too
            continue
        if "\x00" in raw or "\x00" in name:
            raise BadRequest("YL-2003", f"Parameter '{name}' holds a NUL character",
                             expression=(name,))
        try:
            expression = parse_criterion(res_type, name, raw)
        except BadRequest as error:
            if error.expression == (name,):
                raise
            # A fault inside a chain or _has names the parameter as the client wrote it.
            raise BadRequest(error.code, error.message, expression=(name,)) from error
        except _Skip as why:
            if strict:
                raise BadRequest("YL-2001", str(why), expression=(name,)) from None
            ignored.append(OutcomeIssue("warning", "not-supported", f"Ignored: {why}", (name,)))
            continue
        criteria.append(Criterion(name, raw, expression))
    return ParsedQuery(tuple(criteria), tuple(ignored))


def parse_criterion(res_type: str, name: str, raw: str, *, depth: int = 0) -> Expression:
    """One `name=value` of a search on `res_type`, chains and `_has` included. Malformed
    values are 400s whatever the handling; unknown names and modifiers raise _Skip."""
    if depth > _MAX_DEPTH:
        raise BadRequest("YL-2025", f"Parameter '{name}' chains more than {_MAX_DEPTH} deep",
                         expression=(name,))
    if name.startswith("_has:"):
        return _parse_has(res_type, name, raw, depth)
    head, dot, rest = name.partition(".")
    code, _, modifier_text = head.partition(":")
    modifier = modifier_text or None
    # Each value as written, its escapes kept for its type to split on unescaped separators
    # (search.values); `values` unescaped, for those that are not split further.
    written = split_escaped(raw, ",")
    values = [unescape(value) for value in written]
    if not values or any(v == "" for v in values):
        raise _Skip(f"Parameter '{name}' has an empty value")
    if code in UNSUPPORTED_CODES:
        raise _Skip(f"Search parameter '{code}' is not supported")
    if code == "_id" and not dot:
        if modifier is not None:
            raise _Skip(f"Modifier ':{modifier}' is not supported on _id")
        return Ids(tuple(values))
    if code == "_list" and not dot:
        if modifier is not None:
            raise _Skip(f"Modifier ':{modifier}' is not supported on _list")
        # The items of List/42 are what List/42 points at through its `item` parameter.
        item = get_registry().get("List", "item")
        assert item is not None
        return Has("List", item, Ids(tuple(values)))
    if code == "_lastUpdated" and not dot:
        if modifier is not None:
            raise _Skip(f"Modifier ':{modifier}' is not supported on _lastUpdated")
        return LastUpdated(tuple(parse_values.parse_date(name, v) for v in values))
    param = get_registry().get(res_type, code)
    if param is None:
        raise _Skip(f"Unknown search parameter '{code}' for {res_type}")
    if dot:
        return _parse_chain(res_type, param, modifier, name, rest, raw, depth)
    if param.type is ParamType.COMPOSITE:
        return _parse_composite(param, modifier, name, written)
    if modifier == "missing":
        if len(values) != 1:
            raise BadRequest("YL-2023", f"Parameter '{name}': :missing takes one value",
                             expression=(name,))
        missing = parse_values.parse_missing(name, values[0])
        if param.type is ParamType.REFERENCE:
            # A reference by identifier alone is a value too (it has no literal reference).
            return _either((Missing(param, missing), Missing(identifier_param(param), missing)),
                           all_of=missing)
        return Missing(param, missing)
    if param.type is ParamType.REFERENCE and modifier == "identifier":
        if not has_identifiers(res_type, code):
            raise _Skip(f"Modifier ':identifier' is not supported on '{code}': its "
                        "elements are not References")
        token = identifier_param(param)
        return Match(token, None, tuple(_parse_value(token, None, name, v) for v in written))
    if param.type is ParamType.REFERENCE and modifier is not None:
        if modifier not in _resource_types() or (param.targets
                                                 and modifier not in param.targets):
            raise _Skip(f"Modifier ':{modifier}' is not supported on '{code}'")
        return Match(param, modifier, tuple(values))
    allowed = _MODIFIERS.get(param.type)
    if allowed is None:
        raise _Skip(f"Search on {param.type.value} parameter '{code}' is not supported")
    if modifier is not None and modifier not in allowed:
        raise _Skip(f"Modifier ':{modifier}' is not supported on '{code}'")
    return Match(param, modifier, tuple(_parse_value(param, modifier, name, v) for v in written))


_MAX_DEPTH = 4


def _parse_value(param: SearchParam, modifier: str | None, name: str, written: str) -> Any:
    """One value as written, escapes and all. A quantity is split on its unescaped `|` here;
    a token stays as written, for search.predicates to split into system and code (a token
    built in code, `Match(status, None, ("active",))`, is the same text without escapes);
    other values have no separator and are unescaped whole."""
    if param.type is ParamType.QUANTITY:
        return parse_values.parse_quantity(name, written)
    if param.type is ParamType.TOKEN:
        if modifier == "of-type" and len(split_escaped(written, "|")) != 3:
            raise BadRequest("YL-2002", f"'{written}' is not of the form system|code|value "
                             "for :of-type", expression=(name,))
        return written
    parser: Callable[[str, str], Any] | None = {
        ParamType.NUMBER: parse_values.parse_number,
        ParamType.DATE: parse_values.parse_date,
    }.get(param.type)
    value = unescape(written)
    return value if parser is None else parser(name, value)


def _parse_composite(param: SearchParam, modifier: str | None, name: str,
                     values: Sequence[str]) -> Expression:
    """`code-value-quantity=http://loinc.org|8480-6$gt120`: each component parsed as a value
    of its own parameter, the components met together in any of the composite's branches
    (search/composite.py). The values come as written: a component may hold `\\$`."""
    found = layout(param)
    if found is None:
        raise _Skip(f"Search on composite parameter '{param.code}' is not supported")
    if modifier == "missing":
        if len(values) != 1:
            raise BadRequest("YL-2023", f"Parameter '{name}': :missing takes one value",
                             expression=(name,))
        missing = parse_values.parse_missing(name, unescape(values[0]))
        return _either(tuple(_branch_missing(branch, missing) for branch in found.branches),
                       all_of=missing)
    if modifier is not None:
        raise _Skip(f"Modifier ':{modifier}' is not supported on '{param.code}'")
    size = len(param.components)
    alternatives: list[Expression] = []
    for value in values:
        texts = _split_components(value)
        if len(texts) != size or "" in texts:
            raise BadRequest("YL-2024", f"Parameter '{name}' takes {size} components "
                             f"separated by '$', not '{value}'", expression=(name,))
        for branch in found.branches:
            matches = tuple(Match(part, None, (_parse_value(part, None, name, text),))
                            for part, text in zip(branch.parts, texts, strict=True))
            alternatives.append(Together(matches) if branch.grouped else All(matches))
    return _either(tuple(alternatives))


def _branch_missing(branch: Branch, missing: bool) -> Expression:
    """A grouped branch has rows only for elements with every component; on the resource,
    every part must have a value."""
    if branch.grouped:
        return Missing(branch.parts[0], missing)
    return _either(tuple(Missing(part, missing) for part in branch.parts), all_of=not missing)


def _either(children: tuple[Expression, ...], *, all_of: bool = False) -> Expression:
    if len(children) == 1:
        return children[0]
    return All(children) if all_of else AnyOf(children)


def _parse_chain(res_type: str, param: SearchParam, modifier: str | None, name: str,
                 rest: str, raw: str, depth: int) -> Expression:
    """`subject:Patient.name=x`, `encounter.location.partof=y`: the inner criterion on every
    target type that has the chained parameter."""
    if param.type is not ParamType.REFERENCE:
        raise _Skip(f"'{param.code}' is not a reference parameter: it cannot be chained")
    types = _resource_types()
    if modifier is not None:
        if modifier not in types:
            raise _Skip(f"Modifier ':{modifier}' cannot start a chain")
        candidates: tuple[str, ...] = (modifier,)
    else:
        candidates = param.targets or tuple(sorted(types))
    targets: list[tuple[str, Expression]] = []
    problems: list[str] = []
    for target_type in candidates:
        try:
            targets.append((target_type, parse_criterion(target_type, rest, raw,
                                                         depth=depth + 1)))
        except _Skip as why:
            problems.append(str(why))
    if not targets:
        raise _Skip(problems[0] if len(problems) == 1 else
                    f"No target type of '{param.code}' can be searched by '{rest}'")
    return Chain(param, tuple(targets))


def _parse_has(res_type: str, name: str, raw: str, depth: int) -> Expression:
    """`_has:Observation:patient:code=x` (nested `_has` too)."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise BadRequest("YL-2026", f"'{name}' is not _has:Type:reference:parameter",
                         expression=(name,))
    _, source_type, code, inner_name = parts
    if source_type not in _resource_types():
        raise _Skip(f"Unknown resource type '{source_type}' in '{name}'")
    param = get_registry().get(source_type, code)
    if param is None or param.type is not ParamType.REFERENCE:
        raise _Skip(f"'{code}' is not a reference parameter of {source_type}")
    if param.targets and res_type not in param.targets:
        raise _Skip(f"{source_type}.{code} never points at {res_type}")
    inner = parse_criterion(source_type, inner_name, raw, depth=depth + 1)
    return Has(source_type, param, inner)


def _resource_types() -> frozenset[str]:
    from yilian.fhir.definitions import resource_types

    return resource_types()


def _split_components(value: str) -> list[str]:
    """A composite value's components, as written: split on `$` not escaped as `\\$`."""
    return split_escaped(value, "$")


# What a search looks at: per resource type, the expression its resources must match (one
# type for a type-level search, several for a system-level one with _type).
Scope = Sequence[tuple[str, Expression]]


@dataclass(frozen=True, slots=True)
class _BoundSearch:
    """A search's values (`values`, by bind name) and what its statements are keyed by: the
    shape of each type's expression and the conjunct each starts from."""

    scope: Scope
    bindings: tuple[Binding, ...]
    key: tuple[Any, ...]
    chosen: tuple[int, ...]  # per type; empty for a type-free search
    values: dict[str, Any]
    counts: Count | None = None  # the first page's counts of one type's candidates

    @property
    def pinned(self) -> bool:
        """Whether every type's plan has its joins fixed (plan.pins, search.statements)."""
        if not self.chosen:  # a type-free search: the resource table, by ids or times
            return True
        return all(pins(conjuncts(expression), number)
                   for (_, expression), number in zip(self.scope, self.chosen, strict=True))

    def plans(self) -> list[tuple[str, Plan]]:
        """The plans of a statement being built (with this search's values as defaults)."""
        if not self.chosen:
            types = [res_type for res_type, _ in self.scope]
            names = Names(self.bindings[0])
            return [(types[0], type_free_plan(self.scope[0][1], types, names))]
        return [(res_type, plan(expression, res_type, Names(binding), chosen=chosen))
                for (res_type, expression), binding, chosen
                in zip(self.scope, self.bindings, self.chosen, strict=True)]


def _bind(conn: Connection, scope: Scope, base_url: str | None,
          chosen_before: Sequence[int] = (), *, pk_order: bool = False) -> _BoundSearch:
    """The search bound to its values, each type's source chosen (`chosen_before`: as the
    first page's was, when it may be; `pk_order`: for an answer in pk order)."""
    first_type, first = scope[0]
    if len(scope) > 1 and all(e == first for _, e in scope) and is_type_free(first):
        # `?_id=a,b` or `?_lastUpdated=gt2024` across 146 types: one pass, not 146.
        binding = Binding(base_url)
        key = ("type-free", tuple(t for t, _ in scope), binding.shape(first, first_type))
        return _BoundSearch(scope, (binding,), key, (), binding.values)
    bindings = tuple(Binding(base_url, f"b{n}_" if len(scope) > 1 else "b")
                     for n in range(len(scope)))
    shapes = tuple((res_type, binding.shape(expression, res_type))
                   for (res_type, expression), binding in zip(scope, bindings, strict=True))
    values = bindings[0].values if len(scope) == 1 else {
        name: value for binding in bindings for name, value in binding.values.items()}
    counts = None
    if len(chosen_before) == len(scope) and all(
            can_start_from(conjuncts(expression), number)
            for (_, expression), number in zip(scope, chosen_before, strict=True)):
        chosen = tuple(chosen_before)
    else:
        # Across types, counting each type's candidates would cost more than it saves.
        if len(scope) == 1:
            counts = _Counts(_counter(conn, shapes, first_type, first, bindings[0], values))
        chosen = tuple(choose(conjuncts(expression), counts, pk_order=pk_order)
                       for res_type, expression in scope)
    return _BoundSearch(scope, bindings, ("types", shapes, chosen), chosen, values, counts)


class _Counts:
    """A search's counts of its candidate sources' first rows, each made once: one that
    found fewer than its limit is the exact count, and answers any later limit."""

    def __init__(self, count: Count) -> None:
        self._count = count
        self._exact: dict[int, int] = {}

    def __call__(self, number: int, limit: int) -> int:
        exact = self._exact.get(number)
        if exact is not None:
            return min(exact, limit)
        found = self._count(number, limit)
        if found < limit:
            self._exact[number] = found
        return found


def _counter(conn: Connection, shapes: Any, res_type: str, expression: Expression,
             binding: Binding, values: dict[str, Any]) -> Count:
    parts = conjuncts(expression)

    def count(number: int, limit: int) -> int:
        rows = STATEMENTS.rows(conn, ("probe", shapes, number), lambda: probe(
            parts[number], res_type, Names(binding), bindparam("probe_limit", type_=Integer())),
            {**values, "probe_limit": limit}, pinned=pins(parts[number:number + 1], 0))
        found: int = rows[0][0]
        return found

    return count


_LIMIT = bindparam("page_limit", type_=Integer())


def search_plan(conn: Connection, res_type: str, expression: Expression,
                base_url: str | None, *, pk_order: bool = True) -> Plan:
    """The plan of a search on `res_type`, its source chosen as a search's is (by default
    one without _sort)."""
    return _bind(conn, [(res_type, expression)], base_url, pk_order=pk_order).plans()[0][1]


def search_ids(conn: Connection, res_type: str, expression: Expression, *, limit: int
               ) -> list[str]:
    """Ids of up to `limit` resources matching the expression."""
    bound = _bind(conn, [(res_type, expression)], None, pk_order=True)

    def build() -> Select[Any]:
        found = bound.plans()[0][1]
        page = found.select().order_by(found.pk_order).limit(_LIMIT).subquery()
        return (select(resource.c.res_id).join(page, page.c.pk == resource.c.pk)
                .order_by(page.c.pk))

    rows = STATEMENTS.rows(conn, ("ids", bound.key), build,
                           {**bound.values, "page_limit": limit}, pinned=bound.pinned)
    return [row[0] for row in rows]


def search_page(
    conn: Connection,
    scope: Scope,
    *,
    count: int,
    sort: Sequence[SortKey] = (),
    cursor: Cursor | None = None,
    base_url: str | None,
) -> tuple[list[StoredVersion], list[int], Cursor | None]:
    """One page in the sort's order (then pk order): the resources' current versions, their
    primary keys, and the cursor of the next page (None on the last)."""
    bound = _bind(conn, scope, base_url, () if cursor is None else cursor.source,
                  pk_order=not sort)
    sort = tuple(sort)
    missing = None if cursor is None else cursor.missing

    def build() -> Select[Any]:
        plans = bound.plans()
        if not sort and len(plans) == 1:
            # pk order alone: read off the source in its index's order, stop at the page's end.
            found = plans[0][1]
            query = found.select()
            if missing is not None:
                query = query.where(found.pk > bindparam("cursor_pk", type_=NullType()))
            return _with_versions(query.order_by(found.pk_order).limit(_LIMIT), sort)
        sort_type = scope[0][0]  # several types sort only by _id and _lastUpdated
        parts = [found.select(*(sort_value(key, sort_type, found.pk, found.alias)
                                .label(f"sort_{i}")
                                for i, key in enumerate(sort)))
                 for _, found in plans]
        matches = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
        columns = [matches.c[f"sort_{i}"] for i in range(len(sort))]
        query = select(matches.c.pk, *columns)
        if missing is not None:
            query = query.where(after(columns, sort, matches.c.pk, missing))
        return _with_versions(
            query.order_by(*order_by(columns, sort, matches.c.pk)).limit(_LIMIT), sort)

    values = {**bound.values, "page_limit": count + 1}
    if cursor is not None:
        values.update(cursor.bind())
    rows = None
    if _walks(bound, sort, count, cursor):
        rows = _walked_page(conn, bound, sort[0] if sort else None, values,
                            after_cursor=cursor is not None)
    walked = rows is not None
    if rows is None:
        rows = STATEMENTS.rows(conn, ("page", bound.key, sort, missing), build, values,
                               pinned=bound.pinned)
    page = rows[:count]
    keys = 1 + len(sort)  # pk and sort values, then the version's columns
    found = ([stored_version(row[keys:]) for row in page], [row[0] for row in page])
    if len(rows) <= count or not page:
        return *found, None
    last = page[-1]
    return *found, Cursor(tuple(last[1:keys]), last[0], bound.chosen, walked=walked)


def _walks(bound: _BoundSearch, sort: tuple[SortKey, ...], count: int, cursor: Cursor | None
           ) -> bool:
    """Whether to try a walk (search.walk) for this page: the first page when the search
    matches many, the next ones when the page before was walked (without counting again);
    not past the last resource with a sort value (those without follow in pk order)."""
    if not count or len(bound.scope) != 1:
        return False
    if cursor is not None and cursor.missing[:1] == (True,):
        return False
    parts = conjuncts(bound.scope[0][1])
    chosen = bound.chosen[0]
    if not (walkable(sort) or (not sort and walks_in_pk_order(parts, chosen))):
        return False
    if cursor is not None:
        return cursor.walked
    return chosen == FROM_RESOURCES or (
        bound.counts is not None and walk.dense(parts[chosen], bound.counts, chosen))


def _walked_page(conn: Connection, bound: _BoundSearch, key: SortKey | None,
                 values: dict[str, Any], *, after_cursor: bool) -> list[Sequence[Any]] | None:
    """The page's rows read off the sort key's index, or the type's in pk order without a
    key (search.walk); None when the walk's first rows do not fill the page: answer it the
    usual way."""
    (res_type, expression), = bound.scope
    page_limit = values["page_limit"]
    shape = (bound.key, key, after_cursor)

    def walked() -> Walk:
        return Walk(key, res_type, Names(bound.bindings[0]), after_cursor=after_cursor)

    def page(bounded: bool) -> Callable[[], Select[Any]]:
        return lambda: _with_versions(walked().page(expression, bounded=bounded).limit(_LIMIT),
                                      () if key is None else (key,))

    for length in walk_rows(page_limit):
        end = STATEMENTS.rows(conn, ("walk-end", shape), lambda: walked().boundary(),
                              {**values, "walk_offset": length - 1}, pinned=True)
        bounded = bool(end)
        rows = STATEMENTS.rows(conn, ("walk", shape, bounded), page(bounded),
                               {**values, "walk_boundary": end[0][0]} if bounded else values,
                               pinned=pins(conjuncts(expression), FROM_RESOURCES))
        if len(rows) >= page_limit:
            return rows
        if not bounded:  # the rest of the index was read: a longer walk finds no more
            return None
    return None


def _with_versions(page: Select[Any], sort: Sequence[SortKey]) -> Select[Any]:
    """The page's rows (pk, sort values) with their resources' current versions, in the
    page's order: one statement, not a second to read them."""
    rows = page.subquery("page")
    columns = [rows.c[f"sort_{i}"] for i in range(len(sort))]
    versions = resource.join(resource_version, and_(
        resource_version.c.resource_pk == resource.c.pk,
        resource_version.c.version == resource.c.version))
    return (select(rows.c.pk, *columns, *VERSION_COLUMNS)
            .select_from(rows.join(versions, resource.c.pk == rows.c.pk))
            .order_by(*order_by(columns, sort, rows.c.pk)))


def count_matches(conn: Connection, scope: Scope, *, base_url: str | None) -> int:
    bound = _bind(conn, scope, base_url)

    def build() -> Select[Any]:
        parts = [found.select() for _, found in bound.plans()]
        matching = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
        return select(func.count()).select_from(matching)

    total: int = STATEMENTS.rows(conn, ("count", bound.key), build, bound.values,
                                 pinned=bound.pinned)[0][0]
    return total


def parse_for_types(types: Sequence[str], pairs: Sequence[tuple[str, str]], *, strict: bool
                    ) -> tuple[dict[str, ParsedQuery], tuple[OutcomeIssue, ...]]:
    """A system-level search's criteria, on each type: a criterion must apply to all of them
    (R4: only parameters common to the types), else it is ignored or, strictly, refused."""
    parsed = {res_type: parse_query(res_type, pairs, strict=False) for res_type in types}
    ignored: dict[str, OutcomeIssue] = {}
    for query in parsed.values():
        for issue in query.ignored:
            ignored.setdefault(issue.expression[0] if issue.expression else "", issue)
    if strict and ignored:
        first = next(iter(ignored.values()))
        raise BadRequest("YL-2001", first.diagnostics.removeprefix("Ignored: "),
                         expression=first.expression)
    kept = {res_type: ParsedQuery(tuple(c for c in query.criteria if c.name not in ignored), ())
            for res_type, query in parsed.items()}
    return kept, tuple(ignored.values())


def compartment_expression(compartment_type: str, compartment_id: str, res_type: str
                           ) -> Expression:
    """What makes a resource of `res_type` part of Patient/123's compartment (the official
    CompartmentDefinition): any of its listed parameters points at the patient."""
    from yilian.fhir.definitions import patient_compartment

    if compartment_type != "Patient":
        raise BadRequest("YL-2060", f"Search in the {compartment_type} compartment is not "
                         "supported; the Patient compartment is")
    entry = next((r for r in patient_compartment()["resource"] if r["code"] == res_type), None)
    codes: list[str] = entry.get("param", []) if entry else []
    if not codes:
        raise BadRequest("YL-2061", f"{res_type} resources are not part of a patient's "
                         "compartment", expression=(res_type,))
    registry = get_registry()
    # The compartment's own resource is in it (Patient lists only `link` for Patient).
    children: list[Expression] = [Ids((compartment_id,))] if res_type == compartment_type else []
    for code in codes:
        if code == "{def}":
            if res_type != compartment_type:
                children.append(Ids((compartment_id,)))
            continue
        param = registry.get(res_type, code)
        if param is not None:
            children.append(Match(param, None, (f"Patient/{compartment_id}",)))
    return AnyOf(tuple(children))
