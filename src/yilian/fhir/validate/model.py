"""The compiled form of the StructureDefinitions that the validator walks.

Every complex type, backbone element and resource becomes a :class:`ComplexType`: a dict from
each JSON key it may carry (``birthDate``, ``_birthDate``, ``valueQuantity``...) to a
:class:`Field` with everything needed to check that key's value without further look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from yilian.fhir.validate.primitives import Check
from yilian.fhir.validate.terminology import CodeSet


class Kind(IntEnum):
    PRIMITIVE = 0  # a JSON scalar, with an optional "_name" companion for id/extensions
    COMPLEX = 1  # a data type or backbone element: a JSON object of known fields
    RESOURCE = 2  # any resource, validated by its own resourceType
    COMPANION = 3  # the "_name" object(s) carrying id/extension of a primitive


class Fast(IntEnum):
    """How the walk may check a field without the general path (chosen at compile time)."""

    NONE = 0  # choice types, bound codes, bounded arrays...: the general path
    PRIMITIVE = 1  # a single primitive
    PRIMITIVES = 2  # an unbounded array of primitives
    OBJECT = 3  # a single complex value
    OBJECTS = 4  # an unbounded array of complex values


class Hook(IntEnum):
    """Extra rules run on a complex value after its fields are walked."""

    NONE = 0
    REFERENCE = 1
    CODING = 2
    CODEABLE_CONCEPT = 3
    EXTENSION = 4


@dataclass(eq=False, slots=True)
class Field:
    name: str  # FHIRPath name, e.g. "given", "valueQuantity" (never with a leading "_")
    element: str  # FHIRPath of the definition, e.g. "Observation.value[x]"
    type_code: str  # "string", "HumanName", "BackboneElement", "Resource"...
    kind: Kind
    min: int
    max: int | None  # None: unbounded ("*")
    many: bool  # in JSON, an array
    check: Check | None = None  # primitives
    complex: ComplexType | None = None  # complex types, linked after compilation
    hook: int = Hook.NONE.value  # a Hook
    companion: str | None = None  # the JSON key of the other half ("_given" <-> "given")
    choice: str | None = None  # the choice element, e.g. "Observation.value[x]"
    binding: CodeSet | None = None  # expanded required binding
    targets: frozenset[str] | None = None  # allowed resource types of a Reference (None: any)
    fast: int = Fast.NONE.value
    codes: frozenset[str] | None = None  # the codes of `binding`, for the fast path

    def choose_fast(self) -> None:
        """Decides, once linked, whether the walk can take a fast path for this field."""
        self.codes = None if self.binding is None else self.binding.codes
        if self.choice is not None or self.max not in (1, None):
            return
        if self.kind is Kind.PRIMITIVE:
            self.fast = (Fast.PRIMITIVES if self.many else Fast.PRIMITIVE).value
        elif self.kind is Kind.COMPLEX and self.min <= 1 and self.binding is None:
            self.fast = (Fast.OBJECTS if self.many else Fast.OBJECT).value


@dataclass(eq=False, slots=True)
class ComplexType:
    name: str  # "HumanName", "Patient", "Patient.contact"...
    fields: dict[str, Field] = field(default_factory=dict)
    required: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (name, keys)
    is_resource: bool = False
