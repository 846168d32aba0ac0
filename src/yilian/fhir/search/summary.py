"""`_summary` and `_elements`: parts of each resource, marked SUBSETTED (R4 search §3.1.1.5).

    _summary=true   the elements the StructureDefinition marks isSummary, and mandatory ones
    _summary=text   text, id, meta and the mandatory elements
    _summary=data   everything but the narrative
    _summary=count  no resources, only the total
    _elements=a,b   those top-level elements, with id, meta and the mandatory ones
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any

from yilian.errors import BadRequest
from yilian.fhir.definitions import structure_definitions

SUMMARY_MODES = frozenset({"true", "false", "text", "data", "count"})
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED"}
_ALWAYS = frozenset({"resourceType", "id", "meta"})

JsonObject = dict[str, Any]


def parse_summary(values: list[str]) -> str | None:
    if not values:
        return None
    if len(values) > 1 or values[0] not in SUMMARY_MODES:
        raise BadRequest("YL-2050", f"_summary takes one of {', '.join(sorted(SUMMARY_MODES))}",
                         expression=("_summary",))
    return values[0]


def parse_elements(values: list[str]) -> tuple[str, ...] | None:
    if not values:
        return None
    names = tuple(n.strip() for v in values for n in v.split(",") if n.strip())
    if not names:
        raise BadRequest("YL-2051", "_elements names no element", expression=("_elements",))
    return names


@cache
def _top_level(res_type: str) -> tuple[tuple[str, bool, bool], ...]:
    """(name as in the StructureDefinition, isSummary, mandatory) of each top-level element."""
    definition = structure_definitions().get(res_type)
    if definition is None:
        return ()
    found = []
    for element in definition["snapshot"]["element"]:
        path: str = element["path"]
        name = path[len(res_type) + 1:]
        if "." in path and "." not in name:
            found.append((name, bool(element.get("isSummary")), element.get("min", 0) > 0))
    return tuple(found)


def _keeps(names: Collection[str], key: str) -> bool:
    bare = key.removeprefix("_")  # a primitive's extensions go with the primitive
    for name in names:
        if name == bare:
            return True
        if name.endswith("[x]"):
            stem = name[:-3]
            if bare.startswith(stem) and bare[len(stem):len(stem) + 1].isupper():
                return True
    return False


def summarised(resource: JsonObject, mode: str) -> JsonObject:
    """The resource as `_summary=mode` shows it (`false` and `count` leave it whole)."""
    if mode in ("false", "count"):
        return resource
    elements = _top_level(resource["resourceType"])
    mandatory = {name for name, _, required in elements if required}
    if mode == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    elif mode == "text":
        kept = {k: v for k, v in resource.items()
                if k in _ALWAYS or k == "text" or _keeps(mandatory, k)}
    else:  # true
        names = {name for name, summary, _ in elements if summary} | mandatory
        kept = {k: v for k, v in resource.items() if k in _ALWAYS or _keeps(names, k)}
    return _mark_subsetted(kept)


def with_elements(resource: JsonObject, names: Collection[str]) -> JsonObject:
    elements = _top_level(resource["resourceType"])
    wanted = set(names) | {name for name, _, required in elements if required}
    kept = {k: v for k, v in resource.items() if k in _ALWAYS or _keeps(wanted, k)}
    return _mark_subsetted(kept)


def _mark_subsetted(resource: JsonObject) -> JsonObject:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t != SUBSETTED]
    meta["tag"] = [*tags, SUBSETTED]
    return {**resource, "meta": meta}
