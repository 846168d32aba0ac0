"""Expansion of the shipped ValueSets into code sets, for checking required bindings.

A ValueSet is expanded from its ``compose``: whole code systems (hierarchies flattened),
enumerated concepts, imported value sets, ``is-a`` / ``descendent-of`` / ``is-not-a`` /
``generalizes`` and property ``=`` filters, minus ``compose.exclude``. When any part cannot be
computed from the shipped definitions (LOINC, SNOMED CT, UCUM, BCP-47, an example-only code
system...), the whole ValueSet is reported as unexpandable (``None``) so that no valid code is
ever rejected for want of data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from yilian.fhir.definitions import code_system, value_set

JsonObject = dict[str, Any]
Expansion = dict[str, frozenset[str]]  # code system URL -> codes


class Unexpandable(Exception):
    """A part of a ValueSet that the shipped definitions cannot enumerate."""


@dataclass(frozen=True, slots=True)
class CodeSet:
    """The codes of one expanded ValueSet."""

    url: str
    by_system: Mapping[str, frozenset[str]]
    codes: frozenset[str]  # every code of every system, for elements of type `code`

    def describe(self, limit: int = 12) -> str:
        """The allowed codes for a message, shortened when there are many."""
        codes = sorted(self.codes)
        shown = ", ".join(codes[:limit])
        more = f" and {len(codes) - limit} more" if len(codes) > limit else ""
        return f"{shown}{more} (ValueSet {self.url})"


@dataclass(frozen=True, slots=True)
class _Hierarchy:
    """The concepts of a complete code system with their is-a children and properties."""

    codes: frozenset[str]
    children: Mapping[str, tuple[str, ...]]
    properties: Mapping[str, Mapping[str, frozenset[str]]]  # code -> property -> values
    declared: frozenset[str]  # the property codes the code system defines

    def descendants(self, code: str) -> set[str]:
        found: set[str] = set()
        pending = list(self.children.get(code, ()))
        while pending:
            child = pending.pop()
            if child not in found:
                found.add(child)
                pending.extend(self.children.get(child, ()))
        return found

    def ancestors(self, code: str) -> set[str]:
        return {parent for parent in self.codes if code in self.descendants(parent)}


def _walk_concepts(
    concepts: list[JsonObject], parent: str | None
) -> Iterator[tuple[str | None, JsonObject]]:
    for concept in concepts:
        yield parent, concept
        yield from _walk_concepts(concept.get("concept", []), concept["code"])


def _property_value(prop: JsonObject) -> str:
    for key, value in prop.items():
        if key.startswith("value"):
            return str(value).lower() if isinstance(value, bool) else str(value)
    return ""


@cache
def _hierarchy(system: str) -> _Hierarchy:
    resource = code_system(system)
    if resource is None or resource.get("content") != "complete":
        raise Unexpandable(system)
    children: dict[str, list[str]] = {}
    properties: dict[str, dict[str, set[str]]] = {}
    codes: set[str] = set()
    for parent, concept in _walk_concepts(resource.get("concept", []), None):
        code = concept["code"]
        codes.add(code)
        if parent is not None:
            children.setdefault(parent, []).append(code)
        for prop in concept.get("property", []):
            value = _property_value(prop)
            properties.setdefault(code, {}).setdefault(prop["code"], set()).add(value)
            if prop["code"] == "child":
                children.setdefault(code, []).append(value)
            elif prop["code"] in ("parent", "subsumedBy"):
                children.setdefault(value, []).append(code)
    return _Hierarchy(
        codes=frozenset(codes),
        children={code: tuple(kids) for code, kids in children.items()},
        properties={
            code: {name: frozenset(values) for name, values in props.items()}
            for code, props in properties.items()
        },
        declared=frozenset(str(prop["code"]) for prop in resource.get("property", ())),
    )


def _filtered(hierarchy: _Hierarchy, flt: JsonObject) -> set[str]:
    prop, op, value = flt.get("property"), flt.get("op"), flt.get("value", "")
    if prop == "concept" and value in hierarchy.codes:
        if op == "is-a":
            return hierarchy.descendants(value) | {value}
        if op == "descendent-of":
            return hierarchy.descendants(value)
        if op == "is-not-a":
            return set(hierarchy.codes) - hierarchy.descendants(value) - {value}
        if op == "generalizes":
            return hierarchy.ancestors(value) | {value}
    if op == "=" and prop == "parent" and value in hierarchy.codes:
        return set(hierarchy.children.get(value, ()))
    if op == "=" and isinstance(prop, str) and prop in hierarchy.declared:
        return {
            code
            for code in hierarchy.codes
            if value in hierarchy.properties.get(code, {}).get(prop, frozenset())
        }
    raise Unexpandable(f"filter {prop} {op} {value}")


def _include(part: JsonObject, stack: tuple[str, ...]) -> Expansion:
    """The codes selected by one compose.include (or exclude) entry."""
    imported: list[Expansion] = [_expand(url, stack) for url in part.get("valueSet", [])]
    system = part.get("system")
    if system is None:
        if not imported:
            raise Unexpandable("include without system or valueSet")
        return _intersect(imported)
    if "concept" in part:
        codes = {concept["code"] for concept in part["concept"]}
    else:
        hierarchy = _hierarchy(system)
        codes = set(hierarchy.codes)
        for flt in part.get("filter", []):
            codes &= _filtered(hierarchy, flt)
    selected: Expansion = {system: frozenset(codes)}
    return _intersect([selected, *imported]) if imported else selected


def _intersect(expansions: list[Expansion]) -> Expansion:
    result = dict(expansions[0])
    for other in expansions[1:]:
        result = {
            system: codes & other[system] for system, codes in result.items() if system in other
        }
    return result


def _expand(url: str, stack: tuple[str, ...] = ()) -> Expansion:
    canonical = url.split("|")[0]
    if canonical in stack:
        raise Unexpandable(f"ValueSet {canonical} imports itself")
    resource = value_set(canonical)
    if resource is None:
        raise Unexpandable(canonical)
    compose = resource.get("compose")
    if not compose:
        raise Unexpandable(f"ValueSet {canonical} has no compose")
    inner = (*stack, canonical)
    found: dict[str, set[str]] = {}
    for part in compose.get("include", []):
        for system, codes in _include(part, inner).items():
            found.setdefault(system, set()).update(codes)
    for part in compose.get("exclude", []):
        for system, codes in _include(part, inner).items():
            found.get(system, set()).difference_update(codes)
    return {system: frozenset(codes) for system, codes in found.items()}


@cache
def code_set(url: str) -> CodeSet | None:
    """The expanded codes of a ValueSet by canonical URL, or None if it cannot be expanded."""
    try:
        expansion = _expand(url)
    except Unexpandable:
        return None
    everything = frozenset(code for codes in expansion.values() for code in codes)
    return CodeSet(url=url.split("|")[0], by_system=expansion, codes=everything)
