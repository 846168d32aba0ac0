"""A page read by walking an index in the page's order, for searches that match many.

A sorted search is otherwise answered by finding every match, computing each one's sort
value and sorting them all: at 659,000 Observations, `code=<blood pressure>&_sort=-date`
sorted 110,000 matches for a page of 20 (219 ms), `Observation?_sort=date` 659,000 (823 ms).
A page in pk order from a range or a chain is the same: `value-quantity=gt100` read and
sorted every value above 100 (255 ms), `subject:Patient.name=wang` every Observation of
2,500 patients (86 ms). When the matches are many, the index of the sort parameter (or the
type's pk index), read in its order, meets them soon: the candidates come in the page's
order, each is checked against every criterion (the probes of search.plan.filter_condition)
and the page ends after a few dozen.

A resource comes once per value it has; it is taken where its sort value is (the lowest
value ascending, the highest descending), at its first row in that order. The walk is
bounded: it reads at most `walk_rows` index rows past the cursor, the bound found first by
reading the index alone (`Walk.boundary`). When those do not fill the page (the matches
were fewer or fell later, or resources without a value must follow) the caller answers the
search the usual way; what was read cost a few milliseconds. The caller walks the first
page only when the search's source counts many (`dense`), and the next pages when the one
before was walked.

Sorts: single keys whose index is in the key's order: dates (low ascending, high
descending), strings, numbers, quantities and uris, `_lastUpdated` and `_id`, of a
parameter stored under one code (a union's several codes are several ranges of the index)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, and_, false, or_, select

from yilian.fhir.search.expressions import Chain, Expression, Has, Ids, Match
from yilian.fhir.search.plan import (
    FROM_RESOURCES,
    Count,
    Names,
    conjuncts,
    equal_lookup,
    filter_condition,
)
from yilian.fhir.search.predicates import token_parts
from yilian.fhir.search.registry import ParamType
from yilian.fhir.search.sorting import SortKey, sort_column, sort_value, untyped
from yilian.fhir.search.unions import stored_codes
from yilian.fhir.search.values import QuantityValue
from yilian.fhir.store.tables import resource

# A walk worth trying: the search's source (its fewest candidates) counts at least this
# many. With fewer, finding and sorting them all costs less than a walk that may miss.
DENSE_SORT = 5000
# For a chain, its targets (plan.probe): counting the resources that point at them means
# reading all the targets first (at a million resources, 0.1-0.5 s for the encounters of a
# campus's wards). Each target is pointed at by some: `subject:Patient.name=wang`, a few
# thousand patients, is dense; `patient.identifier=...`, one, is not.
DENSE_TARGETS = 50
# Index rows a walk reads at most past the cursor, or as many per result: enough for a
# page when one candidate in a hundred matches; a walk that falls short costs a few ms.
WALK_ROWS = 2000
WALK_ROWS_PER_RESULT = 100
# A shorter walk first, of as many rows per result: enough when one candidate in ten
# matches. PostgreSQL checks every row up to the boundary before it sorts the page (a
# bitmap scan, then the ties sorted by pk), where SQLite stops at the page's end.
FIRST_WALK_ROWS_PER_RESULT = 10

_WALKED = frozenset({ParamType.DATE, ParamType.STRING, ParamType.NUMBER,
                     ParamType.QUANTITY, ParamType.URI})


def walkable(sort: tuple[SortKey, ...]) -> bool:
    """Whether the sort can be read off one index in its order."""
    if len(sort) != 1:
        return False
    param = sort[0].param
    return param is None or (param.type in _WALKED and len(stored_codes(param)) == 1)


def walks_in_pk_order(parts: Sequence[Expression], chosen: int) -> bool:
    """Whether a page in pk order may be walked: the search starts from a range, a chain,
    a union or a token's system alone, whose rows are not in pk order (all of them are read
    and sorted). A lookup of equal values is read in pk order off its index, or is few; a
    `_has` is walked already when dense (plan.DENSE_HAS)."""
    if chosen == FROM_RESOURCES:
        return False
    part = parts[chosen]
    if isinstance(part, Match):
        if not _index_range(part):
            return False
        if part.param.type is ParamType.TOKEN and part.modifier is None and all(
                _system_alone(value) for value in part.values):
            return True  # the system's rows, in code then pk order
    return not isinstance(part, Has | Ids) and not equal_lookup(part)


def _system_alone(value: object) -> bool:
    """A token value `system|`."""
    if not isinstance(value, str):
        return False
    system, code = token_parts(value)
    return bool(system) and not code


def _index_range(match: Match) -> bool:
    """Whether the criterion's rows are a range of its index and nothing more, so that
    counting the first of them is cheap: not a scan (`:text`, `:contains`), nor a range
    whose rows are then checked for a unit (when few have it, counting the first
    thousands reads all of them)."""
    if match.modifier in ("text", "contains"):
        return False
    return not any(isinstance(value, QuantityValue)
                   and (value.code is not None or value.system is not None)
                   for value in match.values)


def dense(part: Expression, count: Count, chosen: int) -> bool:
    """Whether the source the search starts from (conjunct `chosen`, `part`) is worth a
    walk: it counts many rows, or a chain many targets."""
    limit = DENSE_TARGETS if isinstance(part, Chain) else DENSE_SORT
    return count(chosen, limit) >= limit


def walk_rows(page_limit: int) -> tuple[int, ...]:
    """The lengths of the walks tried for a page, shorter first."""
    longest = max(WALK_ROWS, WALK_ROWS_PER_RESULT * page_limit)
    return tuple(sorted({min(FIRST_WALK_ROWS_PER_RESULT * page_limit, longest), longest}))


class Walk:
    """The index rows of the sort key in its order (pk order among equal values), or with
    no key the type's resources in pk order; past the cursor (`cursor_0`, `cursor_pk`
    bound) when `after_cursor`."""

    def __init__(self, key: SortKey | None, res_type: str, names: Names, *,
                 after_cursor: bool) -> None:
        self.key, self.res_type, self.names = key, res_type, names
        self.descending = key is not None and key.descending
        if key is None or key.param is None:  # the resource table's own indexes
            rows = names(resource)
            self.rows: FromClause = rows
            self.pk: ColumnElement[Any] = rows.c.pk
            self.value: ColumnElement[Any] = (
                rows.c.pk if key is None
                else rows.c.res_id if key.code == "_id" else rows.c.last_updated)
            self.where: list[Any] = [rows.c.res_type == res_type]
            # Checked on the page's candidates only: the boundary reads the index alone
            # (a deleted resource's row counts towards the walk's length, no more).
            self.live: list[Any] = [rows.c.deleted == false()]
            self.once = True  # a row per resource
        else:
            table_rows, self.value = sort_column(key, names)
            self.rows, self.pk = table_rows, table_rows.c.resource_pk
            codes = stored_codes(key.param)
            self.where = [table_rows.c.res_type == res_type, table_rows.c.param == codes[0]]
            self.live = []  # index rows are a live resource's
            self.once = False
        self.past: list[Any] = []  # the rows past the cursor's, of those `where` reaches
        if after_cursor and key is None:
            self.where.append(self.pk > untyped("cursor_pk"))
        elif after_cursor:
            value, last = untyped("cursor_0"), untyped("cursor_pk")
            beyond = self.value < value if self.descending else self.value > value
            self.where.append(self.value <= value if self.descending else self.value >= value)
            self.past.append(or_(beyond, and_(self.value == value, self.pk > last)))

    def _in_order(self) -> Any:
        return self.value.desc() if self.descending else self.value.asc()

    def boundary(self) -> Select[Any]:
        """The value of the walk's last row (`walk_offset` bound): none when fewer. Read
        off the index alone: from the cursor's value on, the rows tied with it before the
        cursor's pk counted too."""
        return (select(self.value).select_from(self.rows).where(*self.where)
                .order_by(self._in_order()).offset(untyped("walk_offset")).limit(1))

    def page(self, expression: Expression, *, bounded: bool) -> Select[Any]:
        """The page's rows, (pk, sort_0) or (pk) in pk order: candidates in the walk's
        order, up to the boundary (`walk_boundary` bound) when `bounded`, each checked
        against every criterion."""
        where = [*self.where, *self.past, *self.live]
        if bounded:
            end = untyped("walk_boundary")
            where.append(self.value >= end if self.descending else self.value <= end)
        if not self.once:  # at the resource's own sort value: its first row in the walk
            assert self.key is not None
            where.append(self.value == sort_value(self.key, self.res_type, self.pk,
                                                  self.names))
        where += [filter_condition(part, self.pk, self.res_type, self.names)
                  for part in conjuncts(expression)]
        if self.key is None:
            return (select(self.pk.label("pk")).select_from(self.rows).where(*where)
                    .order_by(self.pk))
        query = (select(self.pk.label("pk"), self.value.label("sort_0"))
                 .select_from(self.rows).where(*where))
        if not self.once:  # two rows at the same value (a period's start, another date)
            query = query.distinct()
        return query.order_by(self._in_order(), self.pk.asc())
