"""Compiles the snapshots of the R4 StructureDefinitions into :class:`ComplexType` tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yilian.fhir.definitions import resource_types, structure_definitions
from yilian.fhir.validate.model import ComplexType, Field, Hook, Kind
from yilian.fhir.validate.primitives import CHECKS
from yilian.fhir.validate.terminology import code_set

JsonObject = dict[str, Any]

FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
CORE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
INLINE = frozenset({"Element", "BackboneElement"})
BOUND = frozenset({"code", "Coding", "CodeableConcept"})
HOOKS = {
    "Reference": Hook.REFERENCE,
    "Coding": Hook.CODING,
    "CodeableConcept": Hook.CODEABLE_CONCEPT,
    "Extension": Hook.EXTENSION,
}


@dataclass(frozen=True, slots=True)
class Schema:
    resources: dict[str, ComplexType]  # concrete resource types by name
    types: dict[str, ComplexType]  # complex data types by name
    companion: ComplexType  # the "_name" object of a primitive: id and extension


def _type_code(type_ref: JsonObject, resource_id: bool) -> str:
    code: str = type_ref["code"]
    if not code.startswith("http://hl7.org/fhirpath/System."):
        return code
    if resource_id:
        return "id"  # Resource.id is of type id (resource.html); the snapshot says System.String
    for ext in type_ref.get("extension", ()):
        if ext.get("url") == FHIR_TYPE:
            return str(ext["valueUrl"])
    return "string"


def _targets(type_ref: JsonObject) -> frozenset[str] | None:
    names = {
        str(profile).removeprefix(CORE_PROFILE) for profile in type_ref.get("targetProfile", ())
    }
    if not names or not names <= resource_types():
        return None  # any resource ("Resource"), or a profile this validator does not know
    return frozenset(names)


def _max(element: JsonObject) -> int | None:
    value = element["max"]
    return None if value == "*" else int(value)


class _Compiler:
    def __init__(self) -> None:
        self.sds = structure_definitions()
        self.resource_names = resource_types()
        self.all_types: list[ComplexType] = []
        # Quantity elements profiled as SimpleQuantity (Range.low, Dosage's doses...).
        self.simple_quantities: list[Field] = []

    def compile_definition(self, sd: JsonObject) -> ComplexType:
        """The table of a type's root, and of its backbone elements, from its snapshot."""
        elements: list[JsonObject] = sd["snapshot"]["element"]
        root: str = elements[0]["path"]
        children: dict[str, list[JsonObject]] = {}
        for element in elements[1:]:
            children.setdefault(element["path"].rpartition(".")[0], []).append(element)
        built: dict[str, ComplexType] = {}
        is_resource = sd["kind"] == "resource"

        def build(path: str) -> ComplexType:
            if path in built:
                return built[path]
            ctype = ComplexType(name=path, is_resource=is_resource and path == root)
            built[path] = ctype
            self.all_types.append(ctype)
            for element in children.get(path, ()):
                self._add_element(ctype, element, children, build, root if is_resource else None)
            return ctype

        return build(root)

    def _add_element(
        self,
        ctype: ComplexType,
        element: JsonObject,
        children: dict[str, list[JsonObject]],
        build: Callable[[str], ComplexType],
        resource_root: str | None,
    ) -> None:
        path: str = element["path"]
        name = path.rpartition(".")[2]
        minimum: int = element["min"]
        maximum = _max(element)
        many = element["max"] != "1"
        attribute = "xmlAttr" in element.get("representation", ())
        resource_id = resource_root is not None and path == f"{resource_root}.id"
        binding = element.get("binding")
        keys: list[str] = []

        reference = element.get("contentReference")
        if reference is not None:
            target = build(str(reference).partition("#")[2])
            ctype.fields[name] = Field(
                name, path, "BackboneElement", Kind.COMPLEX, minimum, maximum, many, complex=target
            )
            keys.append(name)
        choice = path if name.endswith("[x]") else None
        for type_ref in element.get("type", ()):
            code = _type_code(type_ref, resource_id)
            key = name[:-3] + code[0].upper() + code[1:] if choice else name
            made = Field(key, path, code, Kind.COMPLEX, minimum, maximum, many, choice=choice)
            if binding and binding.get("strength") == "required" and code in BOUND:
                made.binding = code_set(binding["valueSet"])
            if code in CHECKS:
                made.kind = Kind.PRIMITIVE
                made.check = CHECKS[code]
            elif code == "Resource":
                made.kind = Kind.RESOURCE
            elif code in INLINE and path in children:
                made.complex = build(path)
            else:
                if code in HOOKS and (code not in BOUND or made.binding is not None):
                    made.hook = HOOKS[code].value
                if code == "Reference":
                    made.targets = _targets(type_ref)
                if code == "Quantity" and SIMPLE_QUANTITY in type_ref.get("profile", ()):
                    self.simple_quantities.append(made)
            ctype.fields[key] = made
            keys.append(key)
            if made.kind is Kind.PRIMITIVE and not attribute and code != "xhtml":
                companion = "_" + key
                made.companion = companion
                ctype.fields[companion] = Field(
                    key,
                    path,
                    code,
                    Kind.COMPANION,
                    minimum,
                    maximum,
                    many,
                    companion=key,
                    choice=choice,
                )
                keys.append(companion)
        if minimum > 0:
            ctype.required.append((name, tuple(keys)))

    def link(self, types: dict[str, ComplexType]) -> None:
        """Points every field of a named data type at that type's table."""
        for ctype in self.all_types:
            for made in ctype.fields.values():
                if made.kind is Kind.COMPLEX and made.complex is None:
                    made.complex = types[made.type_code]


SIMPLE_QUANTITY = "http://hl7.org/fhir/StructureDefinition/SimpleQuantity"


def _simple_quantity(quantity: ComplexType) -> ComplexType:
    """SimpleQuantity, R4's profile of Quantity: no comparator (its max is 0, sqty-1)."""
    return ComplexType(
        name="SimpleQuantity (no comparator, sqty-1)",
        fields={key: made for key, made in quantity.fields.items()
                if key not in ("comparator", "_comparator")},
        required=[(name, keys) for name, keys in quantity.required if name != "comparator"],
    )


def compile_schema() -> Schema:
    """Every concrete resource and complex data type of R4, compiled and linked."""
    compiler = _Compiler()
    types: dict[str, ComplexType] = {}
    resources: dict[str, ComplexType] = {}
    for name, sd in compiler.sds.items():
        if sd["kind"] == "complex-type":
            types[name] = compiler.compile_definition(sd)
        elif sd["kind"] == "resource" and name in compiler.resource_names:
            resources[name] = compiler.compile_definition(sd)
    companion = types["Element"]  # id and extension: what a "_name" object may hold
    compiler.link(types)
    simple = _simple_quantity(types["Quantity"])
    for made in compiler.simple_quantities:
        made.complex = simple
    for ctype in compiler.all_types:
        for made in ctype.fields.values():
            if made.kind is Kind.COMPANION:
                made.complex = companion
            made.choose_fast()
    return Schema(resources=resources, types=types, companion=companion)
