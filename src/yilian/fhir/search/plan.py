"""Expressions → SQL that stays fast at millions of rows.

A search is answered from one *source*: the rows of one criterion's index lookup (the
Observations of a patient, the Patients with an identifier), each carrying the pk of a live
resource of the searched type. Every other criterion is a *filter*: a correlated EXISTS that
probes the candidate's own index rows by resource_pk. So the work follows the most selective
criterion, and a page in pk order is read straight off a token index, `(hash, resource_pk)`,
stopping at the page's end (keyset paging: `resource_pk > cursor`).

Which criterion is the source: by a static rank (an id before a reference before a code
before a date...) and by counting the first rows of each index lookup (`PROBE_CAP`, stopping
at the fewest so far): `code=heart-rate&date=2019-03-15` starts from the day's hundred
Observations, not the code's hundred thousand. SQLite keeps no statistics to know that;
PostgreSQL's, an average per column, do not know it of one code either. The choice is made
from the criteria's kinds and those counts alone, before any SQL is built: a search's
statement is built once per shape and choice (search.binding, search.statements).

Index rows exist only for current, live versions, so a source of index rows needs no
version or deletion check; a source or chain target on the resource table does.
"""

from __future__ import annotations

import functools
import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    FromClause,
    Select,
    Table,
    and_,
    bindparam,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    union,
    union_all,
)

from yilian.fhir.search.binding import FEW_ENOUGH, Binding
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
    Not,
    Together,
)
from yilian.fhir.search.predicates import (
    Condition,
    index_table,
    matching_rows,
    of_param,
    range_prefix,
    within_a_day,
)
from yilian.fhir.search.registry import ParamType
from yilian.fhir.search.values import Prefix
from yilian.fhir.store.tables import idx_reference, resource
from yilian.kit.sqlhints import Unindexed, UnindexedView

PROBE_CAP = 1000  # index rows counted per candidate source, at most
# A `_has` whose matching sources reach this many is walked, not gathered (`choose`): with
# 2,000 sources among 50,000 targets a page of 20 takes about 500 checks. Measured at 50,000
# patients (conditions of up to 8,921): gathered, as the hand-written SQL does, p95 64 ms
# on PostgreSQL and 26 ms on SQLite; walked, 4 and 2 ms.
DENSE_HAS = 2000


class Names:
    """Aliases of the store's tables for one statement, each use its own (t0, t1... of a
    table), and the statement's bound values (search.binding). Aliases are made once per
    process: making an alias and its columns costs more than the rest of a plan."""

    _made: ClassVar[dict[tuple[str, int], tuple[FromClause, UnindexedView]]] = {}

    def __init__(self, binding: Binding) -> None:
        self.binding = binding
        self._used: Counter[str] = Counter()

    def __call__(self, table: Table) -> FromClause:
        return self._next(table)[0]

    def probing(self, table: Table) -> tuple[FromClause, UnindexedView]:
        """An alias, and a view of it for the conditions of rows found by resource_pk: no
        other index may be chosen to read them (kit.sqlhints)."""
        return self._next(table)

    def _next(self, table: Table) -> tuple[FromClause, UnindexedView]:
        number = self._used[table.name]
        self._used[table.name] += 1
        made = self._made.get((table.name, number))
        if made is None:
            alias = table.alias(f"{_SHORT.get(table.name, table.name)}{number}")
            made = self._made[(table.name, number)] = (alias, UnindexedView(alias, _HIDDEN))
        return made


# The leading columns of the indexes that are not by resource_pk. A token's system hash too:
# `identifier=system|` probed through (hash_sys, hash_code, resource_pk) read every row of
# the system for each candidate (37 ms a page at 50,000 patients); a code's hash, which
# leads an index with resource_pk next, stays.
_HIDDEN = ("res_type", "target_type", "url", "hash_sys")


_SHORT = {"resource": "r", "idx_string": "s", "idx_token": "t", "idx_reference": "f",
          "idx_date": "d", "idx_number": "n", "idx_quantity": "q", "idx_uri": "u",
          "idx_composite": "c"}


@dataclass(frozen=True, slots=True)
class Source:
    """Rows that each carry the pk of a live resource matching one criterion (a resource
    may come more than once: select DISTINCT where it matters)."""

    rows: FromClause
    pk: ColumnElement[Any]
    where: tuple[Condition, ...]
    unique: bool = False  # each resource once (rows of the resource table)
    # What a page in pk order is ordered by: the pk, or the pk that SQLite must not read
    # through an index (`_id=a,b,c`: through the type's pk index, every resource of the
    # type is walked in order instead of three looked up; 214 ms at 659,000 Observations).
    order: ColumnElement[Any] | None = None

    def pks(self) -> Select[Any]:
        return select(self.pk).select_from(self.rows).where(*self.where)


@dataclass(frozen=True, slots=True)
class Plan:
    source: Source
    filters: tuple[Condition, ...]
    alias: Callable[[Table], FromClause]  # the statement's, for what is added to it (sorting)

    @property
    def pk(self) -> ColumnElement[Any]:
        return self.source.pk

    @property
    def pk_order(self) -> ColumnElement[Any]:
        """What a page in pk order is ordered by."""
        order = self.source.order
        return self.source.pk if order is None else order

    def select(self, *columns: ColumnElement[Any]) -> Select[Any]:
        """Each matching resource once: its pk (labelled "pk") and `columns`."""
        query = (select(self.pk.label("pk"), *columns).select_from(self.source.rows)
                 .where(*self.source.where, *self.filters))
        return query if self.source.unique else query.distinct()


# Counts the first rows of a conjunct's source, up to a limit: (conjunct's number, limit).
Count = Callable[[int, int], int]


FROM_RESOURCES = -1  # `choose`: no conjunct can be the source; the resource table is


def plan(expr: Expression, res_type: str, names: Names, *, chosen: int | None = None
         ) -> Plan:
    """The source and filters of a search on `res_type`: the source is the conjunct
    numbered `chosen` (`choose`'s answer; None: the one it ranks first)."""
    parts = conjuncts(expr)
    if chosen is None:
        chosen = choose(parts)
    if chosen == FROM_RESOURCES:
        rows = names(resource)
        start = Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                         rows.c.deleted == false()), unique=True)
        rest = parts
    else:
        found = source(parts[chosen], res_type, names)
        assert found is not None, "a sourceless conjunct was chosen"
        start = found
        rest = parts[:chosen] + parts[chosen + 1:]
    filters = tuple(filter_condition(c, start.pk, res_type, names) for c in rest)
    return Plan(start, filters, names)


def type_free_plan(expr: Expression, types: Sequence[str], names: Names) -> Plan:
    """A search across types whose criteria only look at the resource row (ids, update
    times): one pass over the resource table, not one query per type."""
    rows = names(resource)
    return Plan(Source(rows, rows.c.pk, (rows.c.res_type.in_(types), rows.c.deleted == false(),
                                         _resource_condition(expr, types[0], rows, names)),
                       unique=True), (), names)


def is_type_free(expr: Expression) -> bool:
    """Whether the expression's SQL is the same for every resource type (parameters' index
    rows carry the type; ids and update times do not)."""
    if isinstance(expr, All | AnyOf):
        return all(is_type_free(child) for child in expr.children)
    return isinstance(expr, Ids | LastUpdated)


def matching_pks(expr: Expression, res_type: str, names: Names) -> Select[Any]:
    """The pks of live resources of `res_type` that match (inside chains and _has)."""
    inner = plan(expr, res_type, names)
    return select(inner.pk).select_from(inner.source.rows).where(*inner.source.where,
                                                                   *inner.filters)


def conjuncts(expr: Expression) -> list[Expression]:
    """The criteria ANDed at the top of `expr`: those `choose` picks a source among."""
    if isinstance(expr, All):
        return [part for child in expr.children for part in conjuncts(child)]
    return [expr]


def choose(parts: Sequence[Expression], count: Count | None = None, *,
           pk_order: bool = False) -> int:
    """Which conjunct the search starts from (FROM_RESOURCES: none can). A few
    ids first: nothing finds fewer rows sooner. Then by rank and, with `count`, by counting
    the first rows of each candidate's index lookup. Known from the conjuncts' shape (and the
    counts): the SQL of sources not chosen is never built.

    `pk_order`: the answer is wanted in pk order (a page without _sort). A `_has` source
    gathers every target before the first is known; when its sources are many
    (`DENSE_HAS`), the resources are walked in pk order instead, each checked, and a page
    ends after a few dozen checks."""
    found = _choose(parts, count)
    if (pk_order and count is not None and found != FROM_RESOURCES
            and isinstance(parts[found], Has) and count(found, DENSE_HAS) >= DENSE_HAS):
        return FROM_RESOURCES
    return found


def _choose(parts: Sequence[Expression], count: Count | None) -> int:
    for number, conjunct in enumerate(parts):
        if isinstance(conjunct, Ids) and (conjunct.parameter is not None
                                          or len(conjunct.values) <= FEW_ENOUGH):
            return number
    candidates = [(number, *_rank_and_guess(c)) for number, c in enumerate(parts)
                  if not _sourceless(c)]
    if not candidates:
        return FROM_RESOURCES
    if len(candidates) == 1 or count is None:
        return min(candidates, key=lambda c: c[1])[0]
    # In rank order, each count stops at the fewest rows found so far: after a patient's
    # dozen Observations, a code's hundred thousand cost a dozen index entries to rule out.
    chosen = FROM_RESOURCES
    fewest = PROBE_CAP + 1000
    for number, _rank, guess in sorted(candidates, key=lambda c: (c[2] is None, c[1])):
        if guess is not None:
            rows = guess
        elif fewest <= FEW_ENOUGH:
            break  # counting more would cost more than it could save
        else:
            limit = min(PROBE_CAP, fewest)
            rows = count(number, limit)
            if rows >= limit:  # as many as the best so far, or capped: not fewer
                rows = PROBE_CAP if limit == PROBE_CAP else fewest
        if rows < fewest or chosen == FROM_RESOURCES:
            chosen, fewest = number, rows
    return chosen


def pins(parts: Sequence[Expression], chosen: int) -> bool:
    """Whether the plan starting from conjunct `chosen` is the same whatever the values
    (search.statements): its source is the resource table or one lookup of equal values
    (ids, codes, references), not a range whose best reading depends on its width, a set of
    targets or a union; and every other criterion probes the candidate's own rows (a chain
    or `_has` probes other resources' through joins a database orders by the values).
    Measured at a million resources with generic plans: a `_has` walked went from 4 to
    66 ms, a family name prefix from 2 to 5 ms."""
    if chosen != FROM_RESOURCES and not equal_lookup(parts[chosen]):
        return False
    return all(_own_rows(part) for part in parts)


def equal_lookup(expr: Expression) -> bool:
    """An index lookup of equal values (ids, codes, references): not a range, a set of
    targets or a union."""
    match expr:
        case Ids() | Missing():
            return True
        case Match(param, modifier):
            return param.type in (ParamType.TOKEN, ParamType.REFERENCE, ParamType.URI) and (
                modifier not in ("text", "contains", "below", "above"))
    return False


def _own_rows(expr: Expression) -> bool:
    match expr:
        case Match() | Ids() | LastUpdated() | Missing() | Together():
            return True
        case All(children) | AnyOf(children):
            return all(_own_rows(child) for child in children)
        case Not(inner):
            return _own_rows(inner)
    return False


def can_start_from(parts: Sequence[Expression], chosen: int) -> bool:
    """Whether a search may start from the conjunct numbered `chosen` (as a cursor says the
    first page did): the results are the same from any, only the work differs."""
    return chosen == FROM_RESOURCES or (0 <= chosen < len(parts)
                                        and not _sourceless(parts[chosen]))


def probe(expr: Expression, res_type: str, names: Names, limit: Any) -> Select[Any]:
    """How many of the first `limit` rows of the conjunct's source there are; for `_has`,
    of its matching sources (its targets are only known once all of those are read); for a
    chain, of its targets (likewise: the resources pointing at them come after all)."""
    sample: Select[Any] | CompoundSelect[Any]
    if isinstance(expr, Has):
        sample = matching_pks(expr.inner, expr.source_type, names).limit(limit)
    elif isinstance(expr, Chain):
        sample = union_all(*(matching_pks(inner, target_type, names)
                             for target_type, inner in expr.targets)).limit(limit)
    elif isinstance(expr, AnyOf) and len(expr.children) > 1:
        # At most the sum of its lookups' counts (a resource two of them find, counted twice).
        counts = [probe(child, res_type, names, limit).scalar_subquery()
                  for child in expr.children]
        return select(functools.reduce(operator.add, counts))
    else:
        found = source(expr, res_type, names)
        assert found is not None
        sample = select(literal(1)).select_from(found.rows).where(*found.where).limit(limit)
    return select(func.count()).select_from(sample.subquery())


# --- sources -----------------------------------------------------------------------------------


def source(expr: Expression, res_type: str, names: Names) -> Source | None:
    """Where a search could start from to find the resources matching `expr`; None when
    only checking a candidate makes sense (`:not`, `:missing=true`, `ne`)."""
    if _sourceless(expr):
        return None
    match expr:
        case Ids():
            rows = names(resource)
            return Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                            rows.c.res_id.in_(_ids(expr, res_type, names)),
                                            rows.c.deleted == false()), unique=True,
                          order=Unindexed(rows.c.pk))
        case LastUpdated():
            rows = names(resource)
            return Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                            rows.c.deleted == false(),
                                            _resource_condition(expr, res_type, rows, names)),
                          unique=True)
        case Missing(param, _):
            rows = names(index_table(param))
            return Source(rows, rows.c.resource_pk, (of_param(rows, res_type, param),))
        case Match(param):
            rows = names(index_table(param))
            return Source(rows, rows.c.resource_pk,
                          (matching_rows(rows, names.binding.bound(expr, res_type), res_type),))
        case Chain():
            return _chain_source(expr, res_type, names)
        case Together(matches):
            rows, joined, where = _components(matches, res_type, names)
            return Source(joined, rows.c.resource_pk, where)
        case Has():
            return _has_source(expr, res_type, names)
        case AnyOf(children):
            found = [p for c in children if (p := source(c, res_type, names))]
            if len(found) == 1:
                return found[0]
            either = union(*(p.pks().with_only_columns(p.pk.label("pk")) for p in found))
            union_rows = either.subquery()
            return Source(union_rows, union_rows.c.pk, (), unique=True)
        case All():
            inner = plan(expr, res_type, names)
            return Source(inner.source.rows, inner.pk, (*inner.source.where, *inner.filters),
                          unique=inner.source.unique)
    raise AssertionError(f"no source for {expr!r}")


# Index tables with no index leading with (res_type, param): a parameter's rows all together
# are found there only by reading the table.
_NO_PARAM_INDEX = frozenset({ParamType.TOKEN, ParamType.REFERENCE})


def _sourceless(expr: Expression) -> bool:
    """Criteria only checked on candidates found otherwise: `:not`, `:missing=true`, `ne`;
    and `:missing=false` of a token or reference (every row of the parameter, which those
    tables can only read through: the type's resources in pk order, each probed, end a
    page after a few when most have a value)."""
    match expr:
        case Missing(param, missing):
            return missing or param.type in _NO_PARAM_INDEX
        case Match(_, modifier, values):
            return modifier == "not" or any(_prefix(v) is Prefix.NE for v in values)
        case Not():
            return True
        case AnyOf(children):
            return not children or any(_sourceless(c) for c in children)
    return False


def _rank_and_guess(expr: Expression) -> tuple[int, int | None]:
    """A source's rank (lower: likely fewer rows) and the rows it is expected to find
    (None: count them, up to PROBE_CAP, an index lookup being cheap to count), known
    without building it: from the criterion's kind and the kinds of its values."""
    match expr:
        case Ids(values, parameter):
            return 0, len(values) if parameter is None else 1
        case LastUpdated():
            return 85, None
        case Missing():
            return 80, PROBE_CAP + 80
        case Match():
            rank, probed = _match_rank(expr)
            return rank, None if probed else PROBE_CAP + rank
        case Chain():
            return 35, PROBE_CAP // 2  # the targets are usually few
        case Together():
            return 32, None
        case Has():
            return 50, PROBE_CAP - 1  # fewer than a capped count
        case AnyOf(children):  # the union of its children's sources (all have one)
            if len(children) == 1:
                return _rank_and_guess(children[0])
            ranked = [_rank_and_guess(c) for c in children]
            rank = max(r for r, _ in ranked) + 1
            if all(guess is None or isinstance(c, Ids)
                   for c, (_, guess) in zip(children, ranked, strict=True)):
                # Lookups each counted (`probe`): a patient's compartment, its dozen
                # Observations by subject or performer, before a code's hundred thousand.
                return rank, None
            return rank, PROBE_CAP * len(children)
        case All():  # the source its own plan starts from
            parts = conjuncts(expr)
            chosen = choose(parts)
            return (100, PROBE_CAP) if chosen == FROM_RESOURCES else _rank_and_guess(
                parts[chosen])
    raise AssertionError(f"no source for {expr!r}")


def _prefix(value: Any) -> Prefix | None:
    number = getattr(value, "number", None)  # a quantity's prefix is its number's
    return getattr(number if number is not None else value, "prefix", None)


# Static ranks: what usually finds fewer rows first. Not probed: lookups without an index
# to count from cheaply (`:contains`, `:text`). An identifier `:of-type` is a token's code
# lookup, ranked as one.
_RANKS = {ParamType.REFERENCE: 10, ParamType.TOKEN: 20, ParamType.URI: 25,
          ParamType.STRING: 30, ParamType.DATE: 40, ParamType.NUMBER: 45,
          ParamType.QUANTITY: 45}


def _match_rank(match: Match) -> tuple[int, bool]:
    param, modifier = match.param, match.modifier
    if modifier in ("contains", "text"):
        return 70, False
    if param.type is ParamType.DATE and all(within_a_day(v) for v in match.values):
        return 15, True  # a day's rows: counted first, a code's count stops at as many
    return _RANKS[param.type], True


def _chain_source(chain: Chain, res_type: str, names: Names) -> Source:
    """Resources whose reference points at a live target matching the inner expression: the
    targets first, then the reference rows to them by (type, id)."""
    rows = names(idx_reference)
    pointing = []
    for target_type, inner in chain.targets:
        target = names(resource)
        ids = select(target.c.res_id).where(
            target.c.pk.in_(matching_pks(inner, target_type, names)))
        pointing.append(and_(rows.c.target_type == target_type, rows.c.target_id.in_(ids)))
    return Source(rows, rows.c.resource_pk, (of_param(rows, res_type, chain.param), or_(*pointing)))


def _components(matches: Sequence[Match], res_type: str, names: Names, *, probing: bool = False
                ) -> tuple[FromClause, FromClause, tuple[Condition, ...]]:
    """A composite's component rows, joined by element: the first component's rows (looked
    up by its own index, or by resource_pk when `probing`), the join, and the conditions on
    each component's rows."""
    first, *others = matches
    rows, view = names.probing(index_table(first.param))
    joined: FromClause = rows
    binding = names.binding
    where = [matching_rows(view if probing else rows, binding.bound(first, res_type), res_type)]
    for match in others:
        other, probed = names.probing(index_table(match.param))
        joined = joined.join(other, and_(other.c.resource_pk == rows.c.resource_pk,
                                         other.c.grp == rows.c.grp))
        where.append(matching_rows(probed, binding.bound(match, res_type), res_type))
    return rows, joined, tuple(where)


def _has_source(has: Has, res_type: str, names: Names) -> Source:
    """Resources that a matching resource of the source type points at: the sources first,
    then their reference rows by resource_pk, then the targets by (type, id)."""
    refs, probed = names.probing(idx_reference)
    targets = select(refs.c.target_id).where(
        refs.c.resource_pk.in_(matching_pks(has.inner, has.source_type, names)),
        of_param(probed, has.source_type, has.param), probed.c.target_type == res_type,
    )
    rows = names(resource)
    return Source(rows, rows.c.pk, (rows.c.res_type == res_type, rows.c.res_id.in_(targets),
                                    rows.c.deleted == false()), unique=True)


# --- filters -----------------------------------------------------------------------------------


def filter_condition(expr: Expression, pk: ColumnElement[Any], res_type: str, names: Names
                     ) -> Condition:
    """Whether the live resource of `res_type` with primary key `pk` matches: each
    criterion probes that resource's own index rows."""
    match expr:
        case All(children):
            return and_(true(), *(filter_condition(c, pk, res_type, names) for c in children))
        case AnyOf(children):
            return or_(false(), *(filter_condition(c, pk, res_type, names) for c in children))
        case Ids() | LastUpdated():
            rows = names(resource)
            return _probe(rows, rows.c.pk == pk, _resource_condition(expr, res_type, rows, names))
        case Missing(param, missing):
            rows, probed = names.probing(index_table(param))
            having = _probe(rows, rows.c.resource_pk == pk,
                            of_param(probed, res_type, param))
            return not_(having) if missing else having
        case Match(param, modifier):
            rows, probed = names.probing(index_table(param))
            found = _probe(rows, rows.c.resource_pk == pk, matching_rows(
                probed, names.binding.bound(expr, res_type), res_type))
            return not_(found) if modifier == "not" else found
        case Together(matches):
            rows, joined, where = _components(matches, res_type, names, probing=True)
            return _probe(joined, rows.c.resource_pk == pk, *where)
        case Not(inner):
            return not_(filter_condition(inner, pk, res_type, names))
        case Chain(param, targets):
            alternatives = []
            for target_type, inner in targets:
                refs, probed = names.probing(idx_reference)
                target = names(resource)
                alternatives.append(_probe(
                    refs.join(target, and_(target.c.res_type == refs.c.target_type,
                                           target.c.res_id == refs.c.target_id)),
                    refs.c.resource_pk == pk, of_param(probed, res_type, param),
                    probed.c.target_type == target_type, target.c.deleted == false(),
                    filter_condition(inner, target.c.pk, target_type, names)))
            return or_(false(), *alternatives)
        case Has(source_type, param, inner):
            subject = names(resource)
            refs = names(idx_reference)
            return _probe(
                subject.join(refs, and_(refs.c.target_type == res_type,
                                        refs.c.target_id == subject.c.res_id)),
                subject.c.pk == pk, of_param(refs, source_type, param),
                filter_condition(inner, refs.c.resource_pk, source_type, names))
    raise AssertionError(f"no SQL for {expr!r}")


def _ids(ids: Ids, res_type: str, names: Names) -> BindParameter[Any]:
    """The ids, bound: by the caller under the parameter's name, or as the search's value."""
    if ids.parameter is not None:
        return bindparam(ids.parameter, expanding=True)
    return names.binding.bound(ids, res_type).params[0]


def _probe(rows: FromClause, *where: Condition) -> Condition:
    """EXISTS, run for each candidate. `OFFSET 0` keeps PostgreSQL from turning it into a
    semi-join, which would read every row of the criterion (a whole year of dates) to
    check the twenty candidates of a page."""
    return select(literal_column("1")).select_from(rows).where(*where).offset(0).exists()


def _resource_condition(expr: Expression, res_type: str, rows: FromClause, names: Names
                        ) -> Condition:
    """Ids and update times, on the resource row itself."""
    match expr:
        case All(children):
            return and_(true(), *(_resource_condition(c, res_type, rows, names)
                                  for c in children))
        case AnyOf(children):
            return or_(false(), *(_resource_condition(c, res_type, rows, names)
                                  for c in children))
        case Ids():
            return rows.c.res_id.in_(_ids(expr, res_type, names))
        case LastUpdated():
            column = rows.c.last_updated
            bound = iter(names.binding.bound(expr, res_type).params)
            return or_(*(range_prefix(column, column, value.prefix, next(bound), next(bound))
                         for value in expr.values))
    raise AssertionError(f"{expr!r} is not about the resource row")
