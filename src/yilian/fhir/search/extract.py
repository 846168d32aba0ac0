"""Write-time index extraction: a resource → the rows of the idx_* tables.

Runs on every create/update, so everything that can be decided once is decided per resource
type on first use: each parameter's expression is compiled to walker paths with a row builder
per path (or, outside the walker's grammar, to a fhirpathpy evaluator), and a resource is then
indexed by running that plan. Parameters not indexed: type `special` (_query, Location near)
and the full-text ones without an expression (_text, _content).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Any, Protocol, cast

from yilian.fhir.search.composite import layout
from yilian.fhir.search.fallback import Evaluator, compile_fhirpath, infer_type
from yilian.fhir.search.paths import (
    KEY,
    Compiled,
    Step,
    Unsupported,
    compile_expression,
    walk,
    walk_from,
)
from yilian.fhir.search.registry import (
    IDENTIFIER_SUFFIX,
    NOT_INDEXED_CODES,
    ParamType,
    SearchParam,
    SearchRegistry,
    get_registry,
)
from yilian.fhir.search.rows import (
    BUILDERS,
    Builder,
    ReferenceRow,
    Row,
    reference_identifier,
    reference_reference,
    token_boolean,
)
from yilian.fhir.search.unions import is_stored

_log = logging.getLogger(__name__)

TABLES = ("string", "token", "reference", "date", "number", "quantity", "uri")

# Rows by table name (keys of yilian.fhir.store.tables.INDEX_TABLES); every table is present.
IndexRows = dict[str, list[Row]]

JsonObject = dict[str, Any]


class Route(StrEnum):
    WALKER = "walker"
    FHIRPATH = "fhirpath"
    SKIPPED = "skipped"


class _Indexer(Protocol):
    @property
    def param(self) -> str: ...

    @property
    def table(self) -> str: ...

    def rows(self, resource: JsonObject, res_type: str) -> list[Any]: ...


def _dedupe(rows: list[Any]) -> list[Any]:
    """Drop repeated rows (a union's branches, or the same name given twice), keeping order."""
    if len(rows) < 2:
        return rows
    unique = dict.fromkeys(rows)
    return rows if len(unique) == len(rows) else list(unique)


@dataclass(frozen=True, slots=True)
class _PathIndexer:
    param: str
    table: str
    leaves: tuple[tuple[tuple[Step, ...], Builder], ...]

    def rows(self, resource: JsonObject, res_type: str) -> list[Any]:
        rows: list[Any] = []
        param = self.param
        for steps, builder in self.leaves:
            for value in walk(resource, resource, steps):
                builder(rows, param, res_type, value)
        return _dedupe(rows)


@dataclass(frozen=True, slots=True)
class _PresenceIndexer:
    """`X.exists() and X != false` (Patient.deceased): true for a deceased date too."""

    param: str
    table: str
    paths: tuple[tuple[Step, ...], ...]

    def rows(self, resource: JsonObject, res_type: str) -> list[Any]:
        values = [v for steps in self.paths for v in walk(resource, resource, steps)]
        rows: list[Any] = []
        token_boolean(rows, self.param, res_type, bool(values) and values != [False])
        return rows


@dataclass(frozen=True, slots=True)
class _FhirPathIndexer:
    param: str
    table: str
    param_type: str
    evaluate: Evaluator

    def rows(self, resource: JsonObject, res_type: str) -> list[Any]:
        rows: list[Any] = []
        builders = BUILDERS[self.param_type]
        try:
            values = self.evaluate(resource)
        except Exception as error:
            # An expression that cannot be evaluated on this resource (e.g. `as` on a
            # collection) must not refuse the write: the parameter just finds nothing here.
            _log.warning("search parameter %s.%s not indexed: %s", res_type, self.param, error)
            return rows
        for value in values:
            fhir_type = infer_type(self.param_type, value)
            builder = builders.get(fhir_type) if fhir_type else None
            if builder is not None:
                builder(rows, self.param, res_type, value)
        return _dedupe(rows)


@dataclass(frozen=True, slots=True)
class _Component:
    param: str  # `{composite}${n}`
    table: str
    leaves: tuple[tuple[tuple[Step, ...], Builder], ...]  # from the element


@dataclass(frozen=True, slots=True)
class _GroupedIndexer:
    """A composite's components, element by element, in their types' tables; the rows of
    one element share its ordinal in `grp` (composite.py)."""

    # Per path to the elements the composite selects: its components, in order.
    parts: tuple[tuple[tuple[Step, ...], tuple[_Component, ...]], ...]

    def add_rows(self, tables: IndexRows, resource: JsonObject, res_type: str) -> None:
        group = 0
        for steps, components in self.parts:
            for element in walk(resource, resource, steps):
                found: list[tuple[str, list[Any]]] = []
                # The last component (the value) is the one most often absent: look at it
                # first and skip the element without building the others' rows.
                for component in reversed(components):
                    rows: list[Any] = []
                    for leaf_steps, builder in component.leaves:
                        for value in walk(element, resource, leaf_steps):
                            builder(rows, component.param, res_type, value)
                    if not rows:
                        break
                    found.append((component.table, rows))
                else:
                    for table, rows in found:
                        tables[table].extend(row._replace(grp=group) for row in rows)
                    group += 1


@dataclass(frozen=True, slots=True)
class _Op:
    """One compiled path of one parameter, run when the resource has its first property."""

    rest: tuple[Step, ...]  # the steps after the first property
    builder: Builder
    param: str
    table: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The compiled indexing of one resource type.

    Most paths start at a property most resources of the type do not have (an Observation
    has ~10 of the 30-odd properties its 44 parameters look at), so path ops are grouped by
    their first property and a resource only runs the groups of the properties it has.
    """

    by_first_key: Mapping[str, tuple[_Op, ...]]
    always: tuple[_Indexer, ...]  # presence, fhirpathpy and paths not starting with a key
    composites: tuple[_GroupedIndexer, ...]


# --- compiling a plan --------------------------------------------------------------------------


def _path_indexer(param: SearchParam, compiled: Compiled) -> _Indexer:
    table = param.type.value
    if compiled.exists_not_false:
        return _PresenceIndexer(param.code, table, tuple(leaf.steps for leaf in compiled.leaves))
    builders = BUILDERS[table]
    leaves = tuple(
        (leaf.steps, _of_targets(builders[leaf.type], param.targets)
         if leaf.type == "Resource" else builders[leaf.type])
        for leaf in compiled.leaves
        if leaf.type in builders
    )  # fmt: skip
    return _PathIndexer(param.code, table, leaves)


def _of_targets(builder: Builder, targets: tuple[str, ...]) -> Builder:
    """Bundle.entry[0].resource is `composition` only when it is a Composition (and
    `message` only for a MessageHeader): any Bundle's first entry would match otherwise."""
    allowed = frozenset(targets)

    def build(rows: list[Any], param: str, res_type: str, value: Any) -> None:
        if type(value) is dict and value.get("resourceType") in allowed:
            builder(rows, param, res_type, value)

    return build


def _grouped_indexer(param: SearchParam) -> _GroupedIndexer | None:
    """The rows a composite writes itself: its components, for the elements no other
    parameter's rows cover (search/composite.py); None if there are none to write."""
    found = layout(param)
    if found is None or not found.own_elements:
        return None
    own = found.branches[-1].parts
    elements = {leaf.steps: leaf for leaf in
                compile_expression(param.expression or "", param.resource_type).leaves}
    parts = []
    for steps in found.own_elements:
        components = []
        for part in own:
            assert part.expression is not None
            relative = compile_expression(part.expression, param.resource_type,
                                          start=elements[steps].node)
            indexer = _path_indexer(part, relative)
            if not isinstance(indexer, _PathIndexer):
                return None
            components.append(_Component(part.code, indexer.table, indexer.leaves))
        parts.append((steps, tuple(components)))
    return _GroupedIndexer(tuple(parts))


def compile_param(
    param: SearchParam, registry: SearchRegistry | None = None, *, force_fhirpath: bool = False
) -> tuple[Route, _Indexer | None]:
    """How one parameter is indexed for its resource type (force_fhirpath: for tests that
    compare the walker with fhirpathpy)."""
    if (
        param.type is ParamType.SPECIAL
        or param.expression is None
        or param.code in NOT_INDEXED_CODES
    ):
        return Route.SKIPPED, None
    if param.type is ParamType.COMPOSITE:
        # Rows of its own (or none: its components' parameters) from `_grouped_indexer`.
        return (Route.SKIPPED if layout(param) is None else Route.WALKER), None
    if not force_fhirpath:
        try:
            compiled = compile_expression(param.expression, param.resource_type)
            return Route.WALKER, _path_indexer(param, compiled)
        except Unsupported:
            pass
    evaluate = compile_fhirpath(param.expression)
    table = param.type.value
    return Route.FHIRPATH, _FhirPathIndexer(param.code, table, table, evaluate)


@cache
def plan(res_type: str) -> Plan:
    """The compiled plan of a resource type (built on first use, then reused)."""
    registry = get_registry()
    by_key: dict[str, list[_Op]] = {}
    always: list[_Indexer] = []
    composites: list[_GroupedIndexer] = []
    for param in registry.params_for(res_type).values():
        if not is_stored(param):
            continue  # its values are the rows of the parameters it unites
        _, indexer = compile_param(param, registry)
        if param.type is ParamType.COMPOSITE:
            if grouped := _grouped_indexer(param):
                composites.append(grouped)
        elif isinstance(indexer, _PathIndexer):
            for steps, builder, code, table in _with_identifiers(indexer):
                if steps and steps[0][0] == KEY:
                    by_key.setdefault(steps[0][1], []).append(_Op(steps[1:], builder, code, table))
                else:
                    always.append(_PathIndexer(code, table, ((steps, builder),)))
        elif indexer is not None:
            always.append(indexer)
    return Plan(
        MappingProxyType({key: tuple(ops) for key, ops in by_key.items()}),
        tuple(always),
        tuple(composites),
    )


def _with_identifiers(indexer: _PathIndexer) -> list[tuple[tuple[Step, ...], Builder, str, str]]:
    """The indexer's leaves as (steps, builder, parameter code, table), and for each leaf
    of a reference parameter that selects References, one more for their identifiers (the
    `:identifier` modifier's tokens: registry.identifier_param)."""
    leaves = [(steps, builder, indexer.param, indexer.table) for steps, builder in indexer.leaves]
    leaves += [(steps, reference_identifier, indexer.param + IDENTIFIER_SUFFIX, "token")
               for steps, builder in indexer.leaves if builder is reference_reference]
    return leaves


@cache
def has_identifiers(res_type: str, code: str) -> bool:
    """Whether a reference parameter selects References, whose identifiers its
    `:identifier` modifier searches (not a canonical's or a Resource's parameter)."""
    compiled = plan(res_type)
    wanted = code + IDENTIFIER_SUFFIX
    return any(op.param == wanted for ops in compiled.by_first_key.values() for op in ops) \
        or any(indexer.param == wanted for indexer in compiled.always)


def warm_up() -> None:
    """Compile every resource type's plan now (~0.4 s) rather than on its first write."""
    registry = get_registry()
    for res_type in registry.resource_types():
        plan(res_type)


def extract_index_rows(resource: Mapping[str, Any], *, local_base: str | None = None
                       ) -> IndexRows:
    """The index rows of a resource, by table; rows lack resource_pk and res_type (the store
    adds them). Contained resources are not indexed (they are not searchable on their own).
    `local_base`: this server's FHIR base; an absolute reference under it is to one of its
    own resources, any other absolute reference to another server's (`_local_or_remote`)."""
    res_type = resource.get("resourceType")
    tables: IndexRows = {name: [] for name in TABLES}
    if not isinstance(res_type, str):
        return tables
    data: JsonObject = resource if isinstance(resource, dict) else dict(resource)
    compiled = plan(res_type)
    by_first_key = compiled.by_first_key
    for key, value in data.items():
        ops = by_first_key.get(key)
        if ops is None or value is None:
            continue
        values = [v for v in value if v is not None] if type(value) is list else [value]
        for op in ops:
            found = walk_from(values, data, op.rest) if op.rest else values
            if found:
                rows = tables[op.table]
                for item in found:
                    op.builder(rows, op.param, res_type, item)
    for indexer in compiled.always:
        tables[indexer.table].extend(indexer.rows(data, res_type))
    for composite in compiled.composites:
        composite.add_rows(tables, data, res_type)
    for name, rows in tables.items():
        if len(rows) > 1:
            tables[name] = _dedupe(rows)
    references = cast(list[ReferenceRow], tables["reference"])
    for row in references:  # a loop, not any(): a generator cost every resource ~1 µs
        if row.url is not None and row.target_id is not None:
            tables["reference"] = [_local_or_remote(row, local_base) for row in references]
            break
    return tables


def _local_or_remote(row: ReferenceRow, local_base: str | None) -> ReferenceRow:
    """An absolute reference's row: Type/id of one of this server's resources when the URL
    is under its base (as a relative reference's row, url-less: R4 search.html, "a relative
    reference resolving to the same value as a specified absolute URL ... qualifies as a
    match"); the URL alone when it is another server's, whose Patient/1 is not this one's
    (it must match no search, chain, include or compartment of the local Patient/1)."""
    if row.url is None or row.target_id is None:
        return row
    if local_base and row.url.startswith(local_base.rstrip("/") + "/"):
        return row._replace(url=None)
    return row._replace(target_type=None, target_id=None, target_version=None)


def routing_summary() -> dict[str, Counter[str]]:
    """How parameters are indexed, by route: "definitions" counts each official definition
    once (a shared one by the least direct route any of its types takes), "per_type" counts
    every (resource type, parameter) pair."""
    registry = get_registry()
    by_url: dict[str, set[Route]] = {}
    per_type: Counter[str] = Counter()
    for res_type in registry.resource_types():
        for param in registry.params_for(res_type).values():
            route, _ = compile_param(param, registry)
            by_url.setdefault(param.url, set()).add(route)
            per_type[route.value] += 1
    definitions: Counter[str] = Counter()
    for routes in by_url.values():
        route = next(r for r in (Route.FHIRPATH, Route.WALKER, Route.SKIPPED) if r in routes)
        definitions[route.value] += 1
    return {"definitions": definitions, "per_type": per_type}
