"""Expressions → SQL that stays fast at millions of rows.

A search is answered from one *source*: the rows of one criterion's index lookup (the
Observations of a patient, the Patients with an identifier), each carrying the pk of a live
resource of the searched type. Every other criterion is a *filter*: a correlated EXISTS that
probes the candidate's own index rows by resource_pk. So the work follows the most selective
criterion, and a page in pk order is read straight off a token index, `(hash, resource_pk)`,
stopping at the page's end (keyset paging: `resource_pk > cursor`).

Which criterion is the source: by a static rank (an id before a reference before a code
before a date...), and on SQLite, which keeps no statistics, by counting the first rows of
each index lookup (`PROBE_CAP`): `code=heart-rate&date=2019-03-15` starts from the day's
hundred Observations, not the code's hundred thousand. PostgreSQL plans from its own
statistics, the EXISTS and IN subqueries being semi-joins it may turn around.

Index rows exist only for current, live versions, so a source of index rows needs no
version or deletion check; a source or chain target on the resource table does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    and_,
    exists,
    false,
    func,
    literal,
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
from yilian.kit.sqlhints import unindexed

PROBE_CAP = 1000  # index rows counted per candidate source, at most


@dataclass(frozen=True, slots=True)
class Source:
    """Rows that each carry the pk of a live resource matching one criterion (a resource
    may come more than once: select DISTINCT where it matters)."""

    rows: FromClause
    pk: ColumnElement[Any]
    where: tuple[Condition, ...]
    rank: int  # lower: likely fewer rows
    # Rows expected, for SQLite which keeps no statistics to guess from; None: count them
    # (up to PROBE_CAP), an index lookup being cheap to count.
    guess: int | None = PROBE_CAP
    unique: bool = False  # each resource once (rows of the resource table)

    def pks(self) -> Select[Any]:
        return select(self.pk).select_from(self.rows).where(*self.where)


@dataclass(frozen=True, slots=True)
class Plan:
    source: Source
    filters: tuple[Condition, ...]

    @property
    def pk(self) -> ColumnElement[Any]:
        return self.source.pk

    def select(self, *columns: ColumnElement[Any]) -> Select[Any]:
        """Each matching resource once: its pk (labelled "pk") and `columns`."""
        query = (select(self.pk.label("pk"), *columns).select_from(self.source.rows)
                 .where(*self.source.where, *self.filters))
        return query if self.source.unique else query.distinct()


def plan(expr: Expression, res_type: str, base_url: str | None,
         conn: Connection | None = None) -> Plan:
    """The source and filters of a search on `res_type`; with a SQLite connection, the
    candidate sources are counted before one is chosen."""
    conjuncts = _conjuncts(expr)
    candidates = [(n, found) for n, c in enumerate(conjuncts)
                  if (found := source(c, res_type, base_url)) is not None]
    chosen = _choose(candidates, conn)
    if chosen is None:
        rows = resource.alias()
        start = Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                         rows.c.deleted == false()), rank=100, unique=True)
        rest = conjuncts
    else:
        index, start = chosen
        rest = conjuncts[:index] + conjuncts[index + 1:]
    return Plan(start, tuple(filter_condition(c, start.pk, res_type, base_url) for c in rest))


def type_free_plan(expr: Expression, types: Sequence[str]) -> Plan:
    """A search across types whose criteria only look at the resource row (ids, update
    times): one pass over the resource table, not one query per type."""
    rows = resource.alias()
    return Plan(Source(rows, rows.c.pk, (rows.c.res_type.in_(types), rows.c.deleted == false(),
                                         _resource_condition(expr, rows)),
                       rank=0, unique=True), ())


def is_type_free(expr: Expression) -> bool:
    """Whether the expression's SQL is the same for every resource type (parameters' index
    rows carry the type; ids and update times do not)."""
    if isinstance(expr, All | AnyOf):
        return all(is_type_free(child) for child in expr.children)
    return isinstance(expr, Ids | LastUpdated)


def matching_pks(expr: Expression, res_type: str, base_url: str | None) -> Select[Any]:
    """The pks of live resources of `res_type` that match (inside chains and _has)."""
    inner = plan(expr, res_type, base_url)
    return select(inner.pk).select_from(inner.source.rows).where(*inner.source.where,
                                                                   *inner.filters)


def _conjuncts(expr: Expression) -> list[Expression]:
    if isinstance(expr, All):
        return [part for child in expr.children for part in _conjuncts(child)]
    return [expr]


def _choose(candidates: Sequence[tuple[int, Source]], conn: Connection | None
            ) -> tuple[int, Source] | None:
    if not candidates:
        return None
    if len(candidates) == 1 or conn is None or conn.dialect.name != "sqlite":
        return min(candidates, key=lambda c: c[1].rank)

    def score(candidate: tuple[int, Source]) -> tuple[int, int]:
        found = candidate[1]
        if found.guess is not None:
            return (found.guess, found.rank)
        sample = select(literal(1)).select_from(found.rows).where(*found.where).limit(PROBE_CAP)
        counted: int = conn.execute(select(func.count()).select_from(sample.subquery())
                                    ).scalar_one()
        return (counted, found.rank)

    return min(candidates, key=score)


# --- sources -----------------------------------------------------------------------------------


def source(expr: Expression, res_type: str, base_url: str | None) -> Source | None:
    """Where a search could start from to find the resources matching `expr`; None when
    only checking a candidate makes sense (`:not`, `:missing=true`, `ne`)."""
    match expr:
        case Ids(values):
            rows = resource.alias()
            return Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                            rows.c.res_id.in_(values),
                                            rows.c.deleted == false()),
                          rank=0, guess=len(values), unique=True)
        case LastUpdated(values):
            rows = resource.alias()
            return Source(rows, rows.c.pk, (rows.c.res_type == res_type,
                                            rows.c.deleted == false(),
                                            _resource_condition(expr, rows)),
                          rank=85, guess=None, unique=True)
        case Missing(param, missing):
            if missing:
                return None
            rows = index_table(param).alias()
            return Source(rows, rows.c.resource_pk, (of_param(rows, res_type, param.code),),
                          rank=80, guess=PROBE_CAP + 80)
        case Match(param, modifier, values):
            if modifier == "not" or any(_prefix(v) is Prefix.NE for v in values):
                return None
            rows = index_table(param).alias()
            rank, probed = _match_rank(expr)
            return Source(rows, rows.c.resource_pk,
                          (matching_rows(rows, param, modifier, values, res_type, base_url),),
                          rank=rank, guess=None if probed else PROBE_CAP + rank)
        case Chain():
            return _chain_source(expr, res_type, base_url)
        case Has():
            return _has_source(expr, res_type, base_url)
        case AnyOf(children):
            parts = [source(c, res_type, base_url) for c in children]
            if not parts or any(p is None for p in parts):
                return None
            found = [p for p in parts if p is not None]
            if len(found) == 1:
                return found[0]
            either = union(*(p.pks().with_only_columns(p.pk.label("pk")) for p in found))
            union_rows = either.subquery()
            return Source(union_rows, union_rows.c.pk, (), rank=max(p.rank for p in found) + 1,
                          guess=PROBE_CAP * len(found), unique=True)
        case All():
            inner = plan(expr, res_type, base_url)
            return Source(inner.source.rows, inner.pk, (*inner.source.where, *inner.filters),
                          rank=inner.source.rank, guess=inner.source.guess,
                          unique=inner.source.unique)
    raise AssertionError(f"no source for {expr!r}")


def _prefix(value: Any) -> Prefix | None:
    number = getattr(value, "number", None)  # a quantity's prefix is its number's
    return getattr(number if number is not None else value, "prefix", None)


# Static ranks: what usually finds fewer rows first. Not probed: lookups without an index
# to count from cheaply (`:contains`, `:text`, a bare id of a many-typed reference).
_RANKS = {ParamType.REFERENCE: 10, ParamType.TOKEN: 20, ParamType.URI: 25,
          ParamType.STRING: 30, ParamType.COMPOSITE: 32, ParamType.DATE: 40,
          ParamType.NUMBER: 45, ParamType.QUANTITY: 45}


def _match_rank(match: Match) -> tuple[int, bool]:
    param, modifier = match.param, match.modifier
    if modifier in ("contains", "text", "of-type"):
        return 70, False
    if param.type is ParamType.REFERENCE and len(param.targets) != 1 and not modifier and any(
            "/" not in v and ":" not in v for v in match.values):
        return 60, False  # target_id alone: no index leads with it
    return _RANKS[param.type], True


def _chain_source(chain: Chain, res_type: str, base_url: str | None) -> Source:
    """Resources whose reference points at a live target matching the inner expression: the
    targets first, then the reference rows to them by (type, id)."""
    rows = idx_reference.alias()
    pointing = []
    for target_type, inner in chain.targets:
        target = resource.alias()
        ids = select(target.c.res_id).where(
            target.c.pk.in_(matching_pks(inner, target_type, base_url)))
        pointing.append(and_(rows.c.target_type == target_type, rows.c.target_id.in_(ids)))
    return Source(rows, rows.c.resource_pk,
                  (of_param(rows, res_type, chain.param.code), or_(*pointing)),
                  rank=35, guess=PROBE_CAP // 2)  # the targets are usually few


def _has_source(has: Has, res_type: str, base_url: str | None) -> Source:
    """Resources that a matching resource of the source type points at: the sources first,
    then their reference rows by resource_pk, then the targets by (type, id)."""
    refs = idx_reference.alias()
    targets = select(refs.c.target_id).where(
        refs.c.resource_pk.in_(matching_pks(has.inner, has.source_type, base_url)),
        unindexed(and_(of_param(refs, has.source_type, has.param.code),
                       refs.c.target_type == res_type),
                  refs.c.res_type, refs.c.target_type),
    )
    rows = resource.alias()
    return Source(rows, rows.c.pk, (rows.c.res_type == res_type, rows.c.res_id.in_(targets),
                                    rows.c.deleted == false()),
                  rank=50, guess=PROBE_CAP - 1, unique=True)  # fewer than a capped count


# --- filters -----------------------------------------------------------------------------------


def filter_condition(expr: Expression, pk: ColumnElement[Any], res_type: str,
                     base_url: str | None) -> Condition:
    """Whether the live resource of `res_type` with primary key `pk` matches: each
    criterion probes that resource's own index rows."""
    match expr:
        case All(children):
            return and_(true(), *(filter_condition(c, pk, res_type, base_url)
                                  for c in children))
        case AnyOf(children):
            return or_(false(), *(filter_condition(c, pk, res_type, base_url)
                                  for c in children))
        case Ids() | LastUpdated():
            rows = resource.alias()
            return exists().where(rows.c.pk == pk, _resource_condition(expr, rows))
        case Missing(param, missing):
            rows = index_table(param).alias()
            having = exists().where(rows.c.resource_pk == pk,
                                    _probing(of_param(rows, res_type, param.code), rows))
            return not_(having) if missing else having
        case Match(param, modifier, values):
            rows = index_table(param).alias()
            found = exists().where(rows.c.resource_pk == pk, _probing(
                matching_rows(rows, param, modifier, values, res_type, base_url), rows))
            return not_(found) if modifier == "not" else found
        case Chain(param, targets):
            alternatives = []
            for target_type, inner in targets:
                refs = idx_reference.alias()
                target = resource.alias()
                alternatives.append(
                    exists()
                    .select_from(refs.join(target, and_(target.c.res_type == refs.c.target_type,
                                                        target.c.res_id == refs.c.target_id)))
                    .where(refs.c.resource_pk == pk,
                           _probing(and_(of_param(refs, res_type, param.code),
                                         refs.c.target_type == target_type), refs),
                           target.c.deleted == false(),
                           filter_condition(inner, target.c.pk, target_type, base_url)))
            return or_(false(), *alternatives)
        case Has(source_type, param, inner):
            subject = resource.alias()
            refs = idx_reference.alias()
            return (
                exists()
                .select_from(subject.join(refs, and_(refs.c.target_type == res_type,
                                                     refs.c.target_id == subject.c.res_id)))
                .where(subject.c.pk == pk, of_param(refs, source_type, param.code),
                       filter_condition(inner, refs.c.resource_pk, source_type, base_url))
            )
    raise AssertionError(f"no SQL for {expr!r}")


def _probing(condition: Condition, rows: FromClause) -> Condition:
    """A condition on a resource's index rows, found by resource_pk: no other index may be
    chosen to read them (kit.sqlhints)."""
    hidden = [rows.c[name] for name in ("res_type", "target_type", "url") if name in rows.c]
    return unindexed(condition, *hidden)


def _resource_condition(expr: Expression, rows: FromClause) -> Condition:
    """Ids and update times, on the resource row itself."""
    match expr:
        case All(children):
            return and_(true(), *(_resource_condition(c, rows) for c in children))
        case AnyOf(children):
            return or_(false(), *(_resource_condition(c, rows) for c in children))
        case Ids(values):
            return rows.c.res_id.in_(values)
        case LastUpdated(values):
            column = rows.c.last_updated
            return or_(*(range_prefix(column, column, v.prefix, v.low, v.high, date_slack(v))
                         for v in values))
    raise AssertionError(f"{expr!r} is not about the resource row")
