"""`_include` and `_revinclude`: the resources a page points at, and those pointing at it.

    _include=Observation:subject            what the page's Observations' subject points at
    _include=Observation:subject:Patient    only the Patients among them
    _include=*                              every reference of the page's resources
    _revinclude=Provenance:target           Provenances whose target is a page resource
    _include:iterate=Patient:organization   also from resources included on the way

Included resources come from the index rows, so a reference to something that is not in the
record (or was deleted) includes nothing. Iteration stops when a round adds nothing new, after
`MAX_ROUNDS` rounds, or at `MAX_INCLUDED` resources.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, or_, select

from yilian.errors import BadRequest
from yilian.fhir.search.registry import ParamType, get_registry
from yilian.fhir.search.statements import STATEMENTS
from yilian.fhir.store.sql import VERSION_COLUMNS, StoredVersion, stored_version
from yilian.fhir.store.tables import idx_reference, resource, resource_version

MAX_ROUNDS = 4
MAX_INCLUDED = 1000


@dataclass(frozen=True, slots=True)
class Include:
    name: str  # `_include`, `_revinclude:iterate`... as written
    value: str
    reverse: bool
    iterate: bool
    source_type: str | None  # None for `*`
    param: str | None  # None for `*`
    target_type: str | None


def parse_include(name: str, value: str) -> Include:
    """One _include/_revinclude; a 400 when it names no reference parameter."""
    head, _, modifier = name.partition(":")
    if modifier not in ("", "iterate", "recurse"):
        raise BadRequest("YL-2040", f"{head} takes no modifier ':{modifier}'",
                         expression=(name,))
    reverse = head == "_revinclude"
    iterate = modifier in ("iterate", "recurse")  # recurse: R3's name for iterate
    if value == "*":
        return Include(name, value, reverse, iterate, None, None, None)
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadRequest("YL-2041", f"{name}={value}: expected Type:parameter[:targetType]",
                         expression=(name,))
    source_type, code = parts[0], parts[1]
    target_type = parts[2] if len(parts) == 3 else None
    param = get_registry().get(source_type, code)
    if param is None or param.type is not ParamType.REFERENCE:
        raise BadRequest("YL-2042", f"{name}={value}: {source_type} has no reference "
                         f"parameter '{code}'", expression=(name,))
    if target_type is not None and param.targets and target_type not in param.targets:
        raise BadRequest("YL-2043", f"{name}={value}: {source_type}.{code} never points at "
                         f"{target_type}", expression=(name,))
    return Include(name, value, reverse, iterate, source_type, code, target_type)


def included(conn: Connection, page: Sequence[StoredVersion], pks: Sequence[int],
             includes: Sequence[Include],
             readable: Callable[[list[StoredVersion]], list[StoredVersion]] | None = None,
             ) -> list[StoredVersion]:
    """The resources the includes add to a page (none of the page's own), in a stable order;
    only those `readable` keeps, and `:iterate` goes on from those only."""
    if not includes or not page:
        return []
    seen: set[tuple[str, str]] = {(v.res_type, v.res_id) for v in page}
    found: list[StoredVersion] = []
    frontier = list(zip(page, pks, strict=True))
    for round_number in range(MAX_ROUNDS):
        active = [i for i in includes if round_number == 0 or i.iterate]
        if not active or not frontier:
            break
        reached: dict[int, StoredVersion] = {}
        for include in active:
            found_query = (_reverse if include.reverse else _forward)(include, frontier)
            if found_query is not None:
                key, build, values = found_query
                # Pinned: from at most a page's (or MAX_INCLUDED) resources, by index.
                for row in STATEMENTS.rows(conn, key, build, values, pinned=True):
                    reached[row[0]] = stored_version(row[1:])
        fresh: list[tuple[StoredVersion, int]] = []
        for pk, version in sorted(reached.items()):
            key = (version.res_type, version.res_id)
            if key in seen or version.deleted:
                continue
            seen.add(key)
            fresh.append((version, pk))
            if len(found) + len(fresh) >= MAX_INCLUDED:
                break
        if readable is not None and fresh:
            kept = {id(version) for version in readable([version for version, _ in fresh])}
            fresh = [(version, pk) for version, pk in fresh if id(version) in kept]
        found += [version for version, _ in fresh]
        frontier = fresh
        if len(found) >= MAX_INCLUDED:
            break
    return found


# What runs an include: the statement's key, how to build it, the values to bind.
_Query = tuple[tuple[Any, ...], Callable[[], Select[Any]], dict[str, Any]]

_CURRENT = resource.join(resource_version, and_(
    resource_version.c.resource_pk == resource.c.pk,
    resource_version.c.version == resource.c.version))


def _current_versions(pks: Select[Any]) -> Select[Any]:
    """(pk, the current version's columns) of the resources `pks` selects, each once: read
    in the statement that finds them, not in a second one."""
    return select(resource.c.pk, *VERSION_COLUMNS).select_from(_CURRENT).where(
        resource.c.pk.in_(pks))


def _forward(include: Include, frontier: Sequence[tuple[StoredVersion, int]]
             ) -> _Query | None:
    sources = [pk for version, pk in frontier
               if include.source_type is None or version.res_type == include.source_type]
    if not sources:
        return None
    key = ("_include", include.source_type, include.param, include.target_type)
    return key, lambda: _forward_statement(include), {"sources": sources}


def _forward_statement(include: Include) -> Select[Any]:
    """The targets of the references of the resources bound as `sources`."""
    rows = select(idx_reference.c.target_type, idx_reference.c.target_id).where(
        idx_reference.c.resource_pk.in_(bindparam("sources", expanding=True)),
        idx_reference.c.target_id.is_not(None),
    )
    if include.param is not None:
        rows = rows.where(idx_reference.c.res_type == include.source_type,
                          idx_reference.c.param == include.param)
    if include.target_type is not None:
        rows = rows.where(idx_reference.c.target_type == include.target_type)
    targets = rows.subquery()
    return _current_versions(
        select(resource.c.pk)
        .join(targets, and_(resource.c.res_type == targets.c.target_type,
                            resource.c.res_id == targets.c.target_id))
        .where(resource.c.deleted == False)  # noqa: E712
    )


def _reverse(include: Include, frontier: Sequence[tuple[StoredVersion, int]]
             ) -> _Query | None:
    by_type: dict[str, list[str]] = {}
    for version, _ in frontier:
        if include.target_type is None or version.res_type == include.target_type:
            by_type.setdefault(version.res_type, []).append(version.res_id)
    if not by_type:
        return None
    types = tuple(by_type)
    key = ("_revinclude", include.source_type, include.param, types)
    return key, lambda: _reverse_statement(include, types), {
        f"targets_{n}": res_ids for n, res_ids in enumerate(by_type.values())}


def _reverse_statement(include: Include, types: Sequence[str]) -> Select[Any]:
    """The resources pointing at those of each type bound as `targets_0`... by id."""
    pointing = or_(*(and_(idx_reference.c.target_type == res_type,
                          idx_reference.c.target_id.in_(bindparam(f"targets_{n}",
                                                                  expanding=True)))
                     for n, res_type in enumerate(types)))
    query = select(idx_reference.c.resource_pk).where(pointing)
    if include.param is not None:
        query = query.where(idx_reference.c.res_type == include.source_type,
                            idx_reference.c.param == include.param)
    return _current_versions(query)
