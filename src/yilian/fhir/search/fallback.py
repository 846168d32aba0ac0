"""Expressions outside the path walker's grammar, evaluated with fhirpathpy.

Compiled once per expression with fhirpathpy's R4 model (it knows the choice types, so
`Observation.value` finds valueQuantity). fhirpathpy has no `resolve()`; search expressions
only use it as `where(resolve() is X)`, which needs the target's type and nothing else, so
resolve() returns a stub resource of the type the reference names.

Results come back as plain JSON values without their declared types, so the FHIR type a row
builder needs is inferred from the parameter type and the value's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from yilian.fhir.search.paths import reference_type

Evaluator = Callable[[dict[str, Any]], list[Any]]


def _resolve(inputs: list[Any]) -> list[Any]:
    found = []
    for item in inputs:
        target = reference_type(item)
        if target is not None:
            # A node (not a bare dict) so that `is Patient` sees a FHIR type.
            found.append(ResourceNode.create_node({"resourceType": target}))  # type: ignore[no-untyped-call]
    return found


_OPTIONS = {"userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}}}


def compile_fhirpath(expression: str) -> Evaluator:
    """Parse once; evaluate per resource."""
    function = fhirpathpy.compile(expression, model=models["r4"], options=_OPTIONS)

    def evaluate(resource: dict[str, Any]) -> list[Any]:
        return list(function(resource, None))

    return evaluate


_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_ADDRESS_KEYS = frozenset({"line", "city", "district", "state", "postalCode", "country"})
_NAME_KEYS = frozenset({"family", "given", "prefix", "suffix", "text"})


def infer_type(param_type: str, value: Any) -> str | None:
    """The FHIR type a builder of `param_type` should treat `value` as."""
    if type(value) is bool:
        return "boolean"
    if type(value) is str:
        return {
            "date": "dateTime",
            "reference": "canonical",
            "string": "string",
            "token": "code",
            "uri": "uri",
        }.get(param_type)
    if isinstance(value, (int, float, Decimal)):
        return "decimal"
    if type(value) is not dict:
        return None
    if "resourceType" in value:
        return "Resource"
    keys = value.keys()
    match param_type:
        case "reference":
            return "Reference"
        case "date":
            return "Timing" if ("event" in keys or "repeat" in keys) else "Period"
        case "number" | "quantity":
            if "low" in keys or "high" in keys:
                return "Range"
            return "Money" if "currency" in keys else "Quantity"
        case "string":
            if keys & _ADDRESS_KEYS:
                return "Address"
            return "HumanName" if keys & _NAME_KEYS else None
        case "token":
            if "coding" in keys or set(keys) <= {"text", "id", "extension"}:
                return "CodeableConcept"
            if "code" in keys:
                return "Coding"
            if value.get("system") in _CONTACT_SYSTEMS or "rank" in keys:
                return "ContactPoint"
            return "Identifier"
    return None
