"""Element types from the base StructureDefinitions, for compiling search paths.

The path compiler needs to know, per step, whether an element is a choice (`value[x]`, stored
in JSON as `valueQuantity`, `valueString`, ...) and which type the step lands on, so that a
terminal value can be indexed by its declared type rather than guessed from its shape (an
Identifier and a ContactPoint both look like {"system", "value"}).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from yilian.fhir.definitions import structure_definitions

_FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."

# Elements whose children live under the element's own path in the same StructureDefinition.
_INLINE_TYPES = frozenset({"BackboneElement", "Element"})


@dataclass(frozen=True, slots=True)
class ElementInfo:
    path: str
    types: tuple[str, ...]
    choice: bool
    content_reference: str | None  # "Questionnaire.item" for Questionnaire.item.item
    # Types a Reference element may point at; None when any resource will do.
    targets: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Node:
    """Where the compiler stands: a FHIR type and the path its children are listed under."""

    type: str
    children_of: str  # "Patient.contact" for a BackboneElement, "HumanName" for a datatype


def _type_code(entry: dict[str, object]) -> str:
    code = str(entry["code"])
    if code.startswith(_SYSTEM_PREFIX):
        # Resource.id and Element.id are declared as System.String with the FHIR type given
        # in an extension (id / string).
        for ext in entry.get("extension", ()) or ():  # type: ignore[attr-defined]
            if ext.get("url") == _FHIR_TYPE_EXTENSION:
                return str(ext["valueUrl"])
        return code.removeprefix(_SYSTEM_PREFIX).lower()
    return code


def _reference_targets(types: list[dict[str, Any]]) -> tuple[str, ...] | None:
    profiles = [
        str(url).rsplit("/", 1)[-1]
        for t in types
        if t.get("code") == "Reference"
        for url in t.get("targetProfile", ())
    ]
    if not profiles or "Resource" in profiles:
        return None
    return tuple(dict.fromkeys(profiles))


@cache
def elements() -> dict[str, ElementInfo]:
    """Every element of every base type by path; choices keyed without `[x]`."""
    found: dict[str, ElementInfo] = {}
    for sd in structure_definitions().values():
        for element in sd.get("snapshot", {}).get("element", ()):
            path: str = element["path"]
            choice = path.endswith("[x]")
            key = path[:-3] if choice else path
            ref = element.get("contentReference")
            found[key] = ElementInfo(
                path=key,
                types=tuple(_type_code(t) for t in element.get("type", ())),
                choice=choice,
                content_reference=ref.lstrip("#") if ref else None,
                targets=_reference_targets(element.get("type", ())),
            )
    return found


def root(type_name: str) -> Node:
    return Node(type_name, type_name)


def child(node: Node, name: str) -> ElementInfo | None:
    return elements().get(f"{node.children_of}.{name}")


def node_for(info: ElementInfo, type_name: str) -> Node:
    """The node reached by stepping into `info` as `type_name`."""
    if info.content_reference is not None:
        target = elements().get(info.content_reference)
        type_of_target = target.types[0] if target and target.types else "BackboneElement"
        return Node(type_of_target, info.content_reference)
    if type_name in _INLINE_TYPES:
        return Node(type_name, info.path)
    return Node(type_name, type_name)


def choice_key(name: str, type_name: str) -> str:
    """JSON property of a choice element for one type: value + Quantity → valueQuantity."""
    return name + type_name[0].upper() + type_name[1:]


# Profiles of Quantity (an `as Quantity` on them succeeds).
QUANTITY_KINDS = frozenset({"Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity"})


def is_type(actual: str, wanted: str) -> bool:
    """FHIRPath `is`/`as` for the types search expressions cast to (case-insensitive, since
    the definitions write both `as(DateTime)` and `as(dateTime)`)."""
    if actual.lower() == wanted.lower():
        return True
    return wanted == "Quantity" and actual in QUANTITY_KINDS
