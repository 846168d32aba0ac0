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
PostgreSQL's, an average per column, do not know it of one code either.

Index rows exist only for current, live versions, so a source of index rows needs no
version or deletion check; a source or chain target on the resource table does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
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
)

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
    date_slack,
    index_table,
    matching_rows,
    of_param,
    range_prefix,
)
from yilian.fhir.search.registry import ParamType
from yilian.fhir.search.values import Prefix
from yilian.fhir.store.tables import idx_reference, resource
from yilian.kit.sqlhints import UnindexedView

PROBE_CAP = 1000  # index rows counted per candidate source, at most
FEW_ENOUGH = 50  # a source with no more rows than this is not worth looking past


class Names:
    """Aliases of the store's tables for one statement, each use its own (t0, t1... of a
    table). They are made once per process: making an alias and its columns costs more
    than the rest of a plan."""

    _made: ClassVar[dict[tuple[str, int], tuple[FromClause, UnindexedView]]] = {}

    def __init__(self) -> None:
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


# The leading columns of the indexes that are not by resource_pk.
_HIDDEN = ("res_type", "target_type", "url")


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
    rank: int  # lower: likely fewer rows
    # Rows expected, where counting would cost too much or tell little; None: count them
    # (up to PROBE_CAP), an index lookup being cheap to count.
    guess: int | None = PROBE_CAP
    unique: bool = False  # each resource once (rows of the resource table)

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

    def select(self, *columns: ColumnElement[Any]) -> Select[Any]:
        """Each matching resource once: its pk (labelled "pk") and `columns`."""
        query = (select(self.pk.label("pk"), *columns).select_from(self.source.rows)
                 .where(*self.source.where, *self.filters))
        return query if self.source.unique else query.distinct()


def plan(expr: Expression, res_type: str, base_url: str | None,
         conn: Connection | None = None, names: Names | None = None) -> Plan:
    """The source and filters of a search on `res_type`; with a connection, the
    candidate sources are counted before one is chosen."""
    names = names or Names()
    conjuncts = _conjuncts(expr)
    chosen = _by_ids(conjuncts, res_type, base_url, names)
    if chosen is None:
        candidates = [_Candidate(n, c, res_type, base_url, names)
                      for n, c in enumerate(conjuncts) if not _sourceless(c)]
        chosen = _choose(candidates, conn)
    if chosen is None:
        rows = names(resource)
        start = Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                         rows.c.deleted == false()), rank=100, unique=True)
        rest = conjuncts
    else:
        index, start = chosen
        rest = conjuncts[:index] + conjuncts[index + 1:]
    filters = tuple(filter_condition(c, start.pk, res_type, base_url, names) for c in rest)
    return Plan(start, filters, names)


def type_free_plan(expr: Expression, types: Sequence[str]) -> Plan:
    """A search across types whose criteria only look at the resource row (ids, update
    times): one pass over the resource table, not one query per type."""
    names = Names()
    rows = names(resource)
    return Plan(Source(rows, rows.c.pk, (rows.c.res_type.in_(types), rows.c.deleted == false(),
                                         _resource_condition(expr, rows)),
                       rank=0, unique=True), (), names)


def is_type_free(expr: Expression) -> bool:
    """Whether the expression's SQL is the same for every resource type (parameters' index
    rows carry the type; ids and update times do not)."""
    if isinstance(expr, All | AnyOf):
        return all(is_type_free(child) for child in expr.children)
    return isinstance(expr, Ids | LastUpdated)


def matching_pks(expr: Expression, res_type: str, base_url: str | None, names: Names
                 ) -> Select[Any]:
    """The pks of live resources of `res_type` that match (inside chains and _has)."""
    inner = plan(expr, res_type, base_url, names=names)
    return select(inner.pk).select_from(inner.source.rows).where(*inner.source.where,
                                                                   *inner.filters)


def _conjuncts(expr: Expression) -> list[Expression]:
    if isinstance(expr, All):
        return [part for child in expr.children for part in _conjuncts(child)]
    return [expr]


def _by_ids(conjuncts: Sequence[Expression], res_type: str, base_url: str | None,
            names: Names) -> tuple[int, Source] | None:
    """A few ids to start from: nothing finds fewer rows sooner, so the other criteria's
    sources are not even built (the access checks' rules are large)."""
    for n, conjunct in enumerate(conjuncts):
        if isinstance(conjunct, Ids) and (conjunct.parameter is not None
                                          or len(conjunct.values) <= FEW_ENOUGH):
            found = source(conjunct, res_type, base_url, names)
            assert found is not None
            return n, found
    return None


class _Candidate:
    """A criterion that could be the source, its rank known before its SQL is built: the
    SQL of sources not chosen would be built for nothing (a third of a search's time)."""

    def __init__(self, number: int, expr: Expression, res_type: str, base_url: str | None,
                 names: Names) -> None:
        self.number, self.expr = number, expr
        self._args = (res_type, base_url, names)
        self._built: Source | None = None
        known = _rank_and_guess(expr)
        if known is None:  # known only once built (a nested All)
            self.rank, self.guess = self.source.rank, self.source.guess
        else:
            self.rank, self.guess = known

    @property
    def source(self) -> Source:
        if self._built is None:
            self._built = source(self.expr, *self._args)
            assert self._built is not None
        return self._built


def _choose(candidates: Sequence[_Candidate], conn: Connection | None
            ) -> tuple[int, Source] | None:
    if not candidates:
        return None
    if len(candidates) == 1 or conn is None:
        best = min(candidates, key=lambda c: c.rank)
        return best.number, best.source
    # In rank order, each count stops at the fewest rows found so far: after a patient's
    # dozen Observations, a code's hundred thousand cost a dozen index entries to rule out.
    chosen: _Candidate | None = None
    fewest = PROBE_CAP + 1000
    for candidate in sorted(candidates, key=lambda c: (c.guess is None, c.rank)):
        if candidate.guess is not None:
            rows = candidate.guess
        elif fewest <= FEW_ENOUGH:
            break  # counting more would cost more than it could save
        else:
            found = candidate.source
            limit = min(PROBE_CAP, fewest)
            sample = select(literal(1)).select_from(found.rows).where(*found.where).limit(limit)
            rows = conn.execute(select(func.count()).select_from(sample.subquery())).scalar_one()
            if rows >= limit:  # as many as the best so far, or capped: not fewer
                rows = PROBE_CAP if limit == PROBE_CAP else fewest
        if rows < fewest or chosen is None:
            chosen, fewest = candidate, rows
    assert chosen is not None
    return chosen.number, chosen.source


# --- sources -----------------------------------------------------------------------------------


def source(expr: Expression, res_type: str, base_url: str | None, names: Names
           ) -> Source | None:
    """Where a search could start from to find the resources matching `expr`; None when
    only checking a candidate makes sense (`:not`, `:missing=true`, `ne`)."""
    if _sourceless(expr):
        return None
    rank, guess = _rank_and_guess(expr) or (0, None)  # All and AnyOf: from their parts
    match expr:
        case Ids(values, parameter):
            rows = names(resource)
            return Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                            rows.c.res_id.in_(_ids(values, parameter)),
                                            rows.c.deleted == false()),
                          rank=rank, guess=guess, unique=True)
        case LastUpdated(values):
            rows = names(resource)
            return Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                            rows.c.deleted == false(),
                                            _resource_condition(expr, rows)),
                          rank=rank, guess=guess, unique=True)
        case Missing(param, _):
            rows = names(index_table(param))
            return Source(rows, rows.c.resource_pk, (of_param(rows, res_type, param),),
                          rank=rank, guess=guess)
        case Match(param, modifier, values):
            rows = names(index_table(param))
            return Source(rows, rows.c.resource_pk,
                          (matching_rows(rows, param, modifier, values, res_type, base_url),),
                          rank=rank, guess=guess)
        case Chain():
            return _chain_source(expr, res_type, base_url, names, rank, guess)
        case Together(matches):
            rows, joined, where = _components(matches, res_type, base_url, names)
            return Source(joined, rows.c.resource_pk, where, rank=rank, guess=guess)
        case Has():
            return _has_source(expr, res_type, base_url, names, rank, guess)
        case AnyOf(children):
            found = [p for c in children if (p := source(c, res_type, base_url, names))]
            if len(found) == 1:
                return found[0]
            either = union(*(p.pks().with_only_columns(p.pk.label("pk")) for p in found))
            union_rows = either.subquery()
            return Source(union_rows, union_rows.c.pk, (), rank=max(p.rank for p in found) + 1,
                          guess=PROBE_CAP * len(found), unique=True)
        case All():
            inner = plan(expr, res_type, base_url, names=names)
            return Source(inner.source.rows, inner.pk, (*inner.source.where, *inner.filters),
                          rank=inner.source.rank, guess=inner.source.guess,
                          unique=inner.source.unique)
    raise AssertionError(f"no source for {expr!r}")


def _sourceless(expr: Expression) -> bool:
    """Criteria only checked on candidates found otherwise: `:not`, `:missing=true`, `ne`."""
    match expr:
        case Missing(_, missing):
            return missing
        case Match(_, modifier, values):
            return modifier == "not" or any(_prefix(v) is Prefix.NE for v in values)
        case Not():
            return True
        case AnyOf(children):
            return not children or any(_sourceless(c) for c in children)
    return False


def _rank_and_guess(expr: Expression) -> tuple[int, int | None] | None:
    """A source's rank (lower: likely fewer rows) and the rows it is expected to find
    (None: count them, up to PROBE_CAP, an index lookup being cheap to count), known
    without building it; None for All and AnyOf, known from their parts' sources."""
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
    return None


def _prefix(value: Any) -> Prefix | None:
    number = getattr(value, "number", None)  # a quantity's prefix is its number's
    return getattr(number if number is not None else value, "prefix", None)


# Static ranks: what usually finds fewer rows first. Not probed: lookups without an index
# to count from cheaply (`:contains`, `:text`, a bare id of a many-typed reference).
_RANKS = {ParamType.REFERENCE: 10, ParamType.TOKEN: 20, ParamType.URI: 25,
          ParamType.STRING: 30, ParamType.DATE: 40, ParamType.NUMBER: 45,
          ParamType.QUANTITY: 45}


def _match_rank(match: Match) -> tuple[int, bool]:
    param, modifier = match.param, match.modifier
    if modifier in ("contains", "text", "of-type"):
        return 70, False
    if param.type is ParamType.REFERENCE and len(param.targets) != 1 and not modifier and any(
            "/" not in v and ":" not in v for v in match.values):
        return 60, False  # target_id alone: no index leads with it
    return _RANKS[param.type], True


def _chain_source(chain: Chain, res_type: str, base_url: str | None, names: Names,
                  rank: int, guess: int | None) -> Source:
    """Resources whose reference points at a live target matching the inner expression: the
    targets first, then the reference rows to them by (type, id)."""
    rows = names(idx_reference)
    pointing = []
    for target_type, inner in chain.targets:
        target = names(resource)
        ids = select(target.c.res_id).where(
            target.c.pk.in_(matching_pks(inner, target_type, base_url, names)))
        pointing.append(and_(rows.c.target_type == target_type, rows.c.target_id.in_(ids)))
    return Source(rows, rows.c.resource_pk,
                  (of_param(rows, res_type, chain.param), or_(*pointing)),
                  rank=rank, guess=guess)


def _components(matches: Sequence[Match], res_type: str, base_url: str | None, names: Names,
                *, probing: bool = False) -> tuple[FromClause, FromClause, tuple[Condition, ...]]:
    """A composite's component rows, joined by element: the first component's rows (looked
    up by its own index, or by resource_pk when `probing`), the join, and the conditions on
    each component's rows."""
    first, *others = matches
    rows, view = names.probing(index_table(first.param))
    joined: FromClause = rows
    where = [matching_rows(view if probing else rows, first.param, None, first.values,
                           res_type, base_url)]
    for match in others:
        other, probed = names.probing(index_table(match.param))
        joined = joined.join(other, and_(other.c.resource_pk == rows.c.resource_pk,
                                         other.c.grp == rows.c.grp))
        where.append(matching_rows(probed, match.param, None, match.values, res_type,
                                   base_url))
    return rows, joined, tuple(where)


def _has_source(has: Has, res_type: str, base_url: str | None, names: Names,
                rank: int, guess: int | None) -> Source:
    """Resources that a matching resource of the source type points at: the sources first,
    then their reference rows by resource_pk, then the targets by (type, id)."""
    refs, probed = names.probing(idx_reference)
    targets = select(refs.c.target_id).where(
        refs.c.resource_pk.in_(matching_pks(has.inner, has.source_type, base_url, names)),
        of_param(probed, has.source_type, has.param), probed.c.target_type == res_type,
    )
    rows = names(resource)
    return Source(rows, rows.c.pk, (rows.c.res_type == res_type, rows.c.res_id.in_(targets),
                                    rows.c.deleted == false()),
                  rank=rank, guess=guess, unique=True)


# --- filters -----------------------------------------------------------------------------------


def filter_condition(expr: Expression, pk: ColumnElement[Any], res_type: str,
                     base_url: str | None, names: Names) -> Condition:
    """Whether the live resource of `res_type` with primary key `pk` matches: each
    criterion probes that resource's own index rows."""
    match expr:
        case All(children):
            return and_(true(), *(filter_condition(c, pk, res_type, base_url, names)
                                  for c in children))
        case AnyOf(children):
            return or_(false(), *(filter_condition(c, pk, res_type, base_url, names)
                                  for c in children))
        case Ids() | LastUpdated():
            rows = names(resource)
            return _probe(rows, rows.c.pk == pk, _resource_condition(expr, rows))
        case Missing(param, missing):
            rows, probed = names.probing(index_table(param))
            having = _probe(rows, rows.c.resource_pk == pk,
                            of_param(probed, res_type, param))
            return not_(having) if missing else having
        case Match(param, modifier, values):
            rows, probed = names.probing(index_table(param))
            found = _probe(rows, rows.c.resource_pk == pk, matching_rows(
                probed, param, modifier, values, res_type, base_url))
            return not_(found) if modifier == "not" else found
        case Together(matches):
            rows, joined, where = _components(matches, res_type, base_url, names,
                                              probing=True)
            return _probe(joined, rows.c.resource_pk == pk, *where)
        case Not(inner):
            return not_(filter_condition(inner, pk, res_type, base_url, names))
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
                    filter_condition(inner, target.c.pk, target_type, base_url, names)))
            return or_(false(), *alternatives)
        case Has(source_type, param, inner):
            subject = names(resource)
            refs = names(idx_reference)
            return _probe(
                subject.join(refs, and_(refs.c.target_type == res_type,
                                        refs.c.target_id == subject.c.res_id)),
                subject.c.pk == pk, of_param(refs, source_type, param),
                filter_condition(inner, refs.c.resource_pk, source_type, base_url, names))
    raise AssertionError(f"no SQL for {expr!r}")


def _ids(values: tuple[str, ...], parameter: str | None
         ) -> tuple[str, ...] | BindParameter[Any]:
    return values if parameter is None else bindparam(parameter, expanding=True)


def _probe(rows: FromClause, *where: Condition) -> Condition:
    """EXISTS, run for each candidate. `OFFSET 0` keeps PostgreSQL from turning it into a
    semi-join, which would read every row of the criterion (a whole year of dates) to
    check the twenty candidates of a page."""
    return select(literal_column("1")).select_from(rows).where(*where).offset(0).exists()


def _resource_condition(expr: Expression, rows: FromClause) -> Condition:
    """Ids and update times, on the resource row itself."""
    match expr:
        case All(children):
            return and_(true(), *(_resource_condition(c, rows) for c in children))
        case AnyOf(children):
            return or_(false(), *(_resource_condition(c, rows) for c in children))
        case Ids(values, parameter):
            return rows.c.res_id.in_(_ids(values, parameter))
        case LastUpdated(values):
            column = rows.c.last_updated
            return or_(*(range_prefix(column, column, v.prefix, v.low, v.high, date_slack(v))
                         for v in values))
    raise AssertionError(f"{expr!r} is not about the resource row")
