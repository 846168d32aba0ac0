"""Strict structural validation of FHIR R4 (4.0.1) JSON resources.

The validator is compiled once from the official StructureDefinitions (see
:mod:`yilian.fhir.definitions`): unknown elements, cardinality, JSON shapes, data types of every
element (choice types included), the formats of the primitives, primitive extensions, required
bindings that the shipped terminology can expand, reference syntax and target types,
extensions, contained and nested resources (Bundle entries, Parameters, contained). FHIRPath
invariants are not evaluated, except for those the JSON walk checks directly (ele-1, ext-1,
ref-1, dom-2, dom-3, dom-4, dom-5). ``meta.profile`` is not enforced.

Issue codes: "structure" (unknown element, wrong JSON shape or type, empty object or array),
"required" (missing element), "value" (bad primitive value, empty string, bad reference),
"code-invalid" (required binding), "invalid" (reference to a type the element does not allow),
"invariant" (the rules above), "not-supported" (unknown resourceType), "too-costly".

Input is a resource as parsed by ``json.loads(text, parse_float=decimal.Decimal)``; it is never
mutated.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from yilian.fhir.validate.compiler import Schema, compile_schema
from yilian.fhir.validate.issue import Issue
from yilian.fhir.validate.walker import Walk

__all__ = ["Issue", "Validator", "get_validator"]


class Validator:
    """Validates resources against the compiled R4 definitions; safe to share between threads."""

    __slots__ = ("_names", "_schema")

    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        self._names = frozenset(schema.resources)

    def validate(self, resource: Any) -> list[Issue]:
        """Errors and warnings found in `resource`; an empty list means it is valid."""
        walk = Walk(self._schema, self._names)
        try:
            walk.resource(resource, None)
        except RecursionError:
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            where = kind if isinstance(kind, str) and kind in self._names else "Resource"
            message = f"{where}: the resource is nested too deeply to be validated"
            walk.issues.append(Issue("error", "too-costly", where, message))
        return walk.issues


@cache
def get_validator() -> Validator:
    """The validator, compiled from the StructureDefinitions on first use."""
    return Validator(compile_schema())
