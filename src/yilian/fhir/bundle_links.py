"""Where a Bundle entry's resource points at other entries: the links a transaction
rewrites when it gives entries their ids (http.html#trules), and paths for messages."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from yilian.fhir.messages import JsonObject
from yilian.fhir.search import fhirmodel


@dataclass(frozen=True, slots=True)
class Links:
    """Where a resource points at other entries: objects holding a `reference` string, and
    other string slots (container, key) whose whole value is a fullUrl of the Bundle."""

    references: list[JsonObject]
    values: list[tuple[Any, Any]]


NO_LINKS = Links([], [])


def find_links(resource: JsonObject, full_urls: Collection[str]) -> Links:
    """Every Reference in `resource`, and the uri-like values that are one of `full_urls`."""
    references: list[JsonObject] = []
    values: list[tuple[Any, Any]] = []
    stack = [resource]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if type(node.get("reference")) is str:
            references.append(node)
        for key, value in node.items():
            kind = type(value)
            if kind is dict:
                push(value)
            elif kind is list:
                for index, item in enumerate(value):
                    if type(item) is dict:
                        push(item)
                    elif full_urls and type(item) is str and item in full_urls:
                        values.append((value, index))
            elif full_urls and kind is str and key != "reference" and value in full_urls:
                values.append((node, key))
    if values:  # rare: a string that is an entry's fullUrl; which it may be, its type says
        values = [slot for slot in values if _is_uri_typed(resource, *slot)]
    return Links(references, values)


# The element types whose values a transaction rewrites when they are an entry's fullUrl
# (http.html#trules): "Elements of type canonical are not replaced", nor other strings (an
# identifier's value that happens to be a fullUrl is the identifier's business).
_URI_TYPES = frozenset({"uri", "url", "oid", "uuid"})


def _is_uri_typed(resource: JsonObject, container: Any, slot: Any) -> bool:
    """Whether `container[slot]` (a property of an object, or an item of an array) is of a
    uri-like element type, by the base definitions along the way to it."""
    trail = _trail_to(resource, container)
    if trail is None or not isinstance(resource.get("resourceType"), str):
        return False
    if type(container) is dict:
        trail.append((slot, container[slot]))
    node = fhirmodel.root(resource["resourceType"])
    element_type: str | None = None
    for key, value in trail:
        found = _element(node, key)
        if found is None:
            return False
        info, element_type = found
        if element_type == "Resource":  # contained, Bundle.entry.resource, Parameters...
            kind = value.get("resourceType") if isinstance(value, dict) else None
            if not isinstance(kind, str):
                return False
            node = fhirmodel.root(kind)
        else:
            node = fhirmodel.node_for(info, element_type)
    return element_type in _URI_TYPES


def _element(node: fhirmodel.Node, key: str) -> tuple[fhirmodel.ElementInfo, str] | None:
    """The element a JSON property names under `node`, with its type (a choice's by the
    property's suffix: valueUri → uri)."""
    info = fhirmodel.child(node, key)
    if info is not None and not info.choice:
        return (info, info.types[0]) if info.types else None
    for split in range(1, len(key)):
        if key[split].isupper():
            base = fhirmodel.child(node, key[:split])
            if base is not None and base.choice:
                for name in base.types:
                    if fhirmodel.choice_key(key[:split], name) == key:
                        return base, name
            return None
    return None


def _trail_to(node: Any, target: Any) -> list[tuple[str, Any]] | None:
    """The (property, value) steps from `node` down to `target`, an object or an array
    (array indexes skipped: an array's items share their element); None if not inside."""
    if node is target:
        return []
    if type(node) is dict:
        for key, value in node.items():
            for item in value if type(value) is list else (value,):
                if item is target:
                    return [(key, item)]
                if type(item) is dict and (found := _trail_to(item, target)) is not None:
                    return [(key, item), *found]
            if value is target:
                return [(key, value)]
    return None


def path_to(node: Any, target: JsonObject, path: str) -> str | None:
    """The FHIRPath of `target` within `node` (for error messages only)."""
    if node is target:
        return path
    if type(node) is dict:
        for key, value in node.items():
            if (found := path_to(value, target, f"{path}.{key}")) is not None:
                return found
    elif type(node) is list:
        for index, item in enumerate(node):
            if (found := path_to(item, target, f"{path}[{index}]")) is not None:
                return found
    return None
