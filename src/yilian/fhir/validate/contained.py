"""The rules of contained resources (DomainResource dom-2..dom-5, Reference ref-1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def _ids(resource: dict[str, Any]) -> set[str]:
    contained = resource.get("contained")
    if type(contained) is not list:
        return set()
    return {item["id"] for item in contained if type(item) is dict and type(item.get("id")) is str}


def unresolved(
    resource: dict[str, Any], local: list[tuple[str, str]], here: str
) -> Iterator[Issue]:
    """ref-1: every "#id" reference (target, path) names a resource of `here`.contained;
    "#" alone (target "") is a contained resource's reference to its container (dom-3)."""
    ids = _ids(resource)
    for target, path in local:
        if not target:
            if f"{here}.contained[" not in path:
                yield _error(path, '"#" refers to the containing resource: only a contained '
                             "resource can (ref-1)")
        elif target not in ids:
            yield _error(
                path,
                f'"#{target}" does not match the id of any resource in {here}.contained (ref-1)',
            )


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
