"""The rules of contained resources (DomainResource dom-2..dom-5, Reference ref-1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from yilian.fhir.validate.issue import Issue

INVARIANT = "invariant"


def _error(path: str, message: str) -> Issue:
    return Issue("error", INVARIANT, path, f"{path}: {message}")


def rules_of_contained(resource: dict[str, Any], here: str) -> Iterator[Issue]:
    """dom-2, dom-4, dom-5: what a resource inside `contained` SHALL NOT have."""
    if "contained" in resource:
        yield _error(
            f"{here}.contained",
            "a contained resource SHALL NOT contain additional contained resources (dom-2)",
        )
    meta = resource.get("meta")
    if type(meta) is dict:
        for key, rule in (("versionId", "dom-4"), ("lastUpdated", "dom-4"), ("security", "dom-5")):
            if key in meta:
                yield _error(
                    f"{here}.meta.{key}", f"a contained resource SHALL NOT have meta.{key} ({rule})"
                )


class LocalRef(NamedTuple):
    """A "#id" reference met on the walk, resolved once the whole resource is walked."""

    target: str  # the contained id; "" for "#" alone
    path: str  # of the reference
    element: str  # its element's definition path, for messages
    allowed: frozenset[str] | None  # the element's target types (None: any)
    declared: str | None  # Reference.type, if given


def _types(resource: dict[str, Any]) -> dict[str, Any]:
    """The contained resources' types by id."""
    contained = resource.get("contained")
    if type(contained) is not list:
        return {}
    return {item["id"]: item.get("resourceType") for item in contained
            if type(item) is dict and type(item.get("id")) is str}


def unresolved(resource: dict[str, Any], local: list[LocalRef], here: str) -> Iterator[Issue]:
    """ref-1: every "#id" reference names a resource of `here`.contained, of a type its
    element may refer to (and its Reference.type, if given); "#" alone (target "") is a
    contained resource's reference to its container (dom-3)."""
    types = _types(resource)
    for ref in local:
        path = ref.path
        if not ref.target:
            if f"{here}.contained[" not in path:
                yield _error(path, '"#" refers to the containing resource: only a contained '
                             "resource can (ref-1)")
        elif ref.target not in types:
            yield _error(
                path,
                f'"#{ref.target}" does not match the id of any resource in {here}.contained '
                "(ref-1)",
            )
        elif ref.allowed is not None and types[ref.target] not in ref.allowed:
            allowed = ", ".join(sorted(ref.allowed))
            yield Issue("error", "invalid", path, f"{path}: {ref.element} may refer to "
                        f"{allowed}, not {types[ref.target]} (#{ref.target})")
        elif ref.declared is not None and ref.declared != types[ref.target]:
            yield Issue("error", "invalid", path, f"{path}: Reference.type {ref.declared} "
                        f"disagrees with #{ref.target}, a {types[ref.target]}")


def _fragments(node: Any, found: set[str]) -> None:
    """Every string value starting with "#" anywhere below `node`."""
    if type(node) is dict:
        for value in node.values():
            _fragments(value, found)
    elif type(node) is list:
        for value in node:
            _fragments(value, found)
    elif type(node) is str and node.startswith("#"):
        found.add(node)


def unreferenced(resource: dict[str, Any], here: str) -> Iterator[Issue]:
    """dom-3: each contained resource is referred to from elsewhere, or refers to its container."""
    contained = resource.get("contained")
    if type(contained) is not list:
        return
    fragments: set[str] = set()
    _fragments(resource, fragments)
    for index, item in enumerate(contained):
        if type(item) is not dict:
            continue
        ident = item.get("id")
        if type(ident) is str and f"#{ident}" in fragments:
            continue
        own: set[str] = set()
        _fragments(item, own)
        if "#" in own:
            continue
        name = f'"{ident}"' if type(ident) is str else "without an id"
        yield _error(
            f"{here}.contained[{index}]",
            f"contained resource {name} is not referenced "
            "from elsewhere in the resource and does not refer to its container (dom-3)",
        )
