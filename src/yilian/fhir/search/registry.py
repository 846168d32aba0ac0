"""Which search parameters each resource type has, and the expression each uses there.

Built once from the 1,375 official R4 SearchParameters (like Medplum's searchparameter.ts).
Shared parameters carry one expression for many bases, e.g. clinical-patient is
`AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | ...`; evaluating
the whole union on every resource would be wasteful, so each type keeps only its own branches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Any

from yilian.fhir.definitions import resource_types, search_parameters, structure_definitions
from yilian.fhir.search.paths import Unsupported, compile_expression


class ParamType(StrEnum):
    NUMBER = "number"
    DATE = "date"
    STRING = "string"
    TOKEN = "token"
    REFERENCE = "reference"
    COMPOSITE = "composite"
    QUANTITY = "quantity"
    URI = "uri"
    SPECIAL = "special"


@dataclass(frozen=True, slots=True)
class SearchParam:
    code: str
    type: ParamType
    resource_type: str
    # The branches of the official expression that apply to this resource type (None for
    # parameters the spec defines without one: _text, _content, _query).
    expression: str | None
    targets: tuple[str, ...]  # reference target types
    # Composite parts: (code of the component's own parameter, expression relative to the
    # element the composite expression selects).
    components: tuple[tuple[str, str], ...]
    url: str


IDENTIFIER_SUFFIX = ":identifier"


def identifier_param(reference: SearchParam) -> SearchParam:
    """The token parameter of a reference parameter's `:identifier` modifier: its elements'
    Reference.identifier, indexed as tokens under `{code}:identifier` (a code no official
    parameter has: `:` is not in the code's grammar)."""
    expression = f"({reference.expression}).identifier" if reference.expression else None
    return SearchParam(f"{reference.code}{IDENTIFIER_SUFFIX}", ParamType.TOKEN,
                       reference.resource_type, expression, (), (), reference.url)


# Not indexed by the extractor: full-text parameters have no expression to evaluate, _query
# is a named query (type special), and _id and _lastUpdated are columns of the resource table.
NOT_INDEXED_CODES = frozenset({"_text", "_content", "_query", "_id", "_lastUpdated"})

# Errata of the R4 definitions, fixed as in R5: DocumentReference-relationship's components
# are swapped (relatesto, a reference, points at `code`; relation, a token, at `target`).
_COMPONENT_FIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "http://hl7.org/fhir/SearchParameter/DocumentReference-relationship": (
        ("relatesto", "target"),
        ("relation", "code"),
    ),
}


def split_union(expression: str) -> list[str]:
    """Top-level `|` branches of a FHIRPath expression (not inside parentheses or strings)."""
    branches: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, char in enumerate(expression):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            branches.append(expression[start:i].strip())
            start = i + 1
    branches.append(expression[start:].strip())
    return [b for b in branches if b]


def branch_root(branch: str) -> str:
    """The type name a branch starts from: `(Observation.value as Quantity)` → Observation."""
    text = branch.lstrip("( ")
    end = 0
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[:end]


def _rooted(branch: str, base: str) -> str:
    """A branch that starts with an element instead of a type (InsurancePlan-name is written
    `name | alias`) is relative to the base: `name` → `InsurancePlan.name`."""
    root = branch_root(branch)
    if root and not root[0].isupper():
        opening = len(branch) - len(branch.lstrip("( "))
        return f"{branch[:opening]}{base}.{branch[opening:]}"
    return branch


def _domain_resource_types() -> frozenset[str]:
    """Types that derive from DomainResource (all but Bundle, Binary and Parameters)."""
    sds = structure_definitions()
    return frozenset(
        name
        for name in resource_types()
        if sds[name].get("baseDefinition", "").endswith("/DomainResource")
    )


class SearchRegistry:
    """Search parameters by resource type and code; immutable once built."""

    def __init__(self, definitions: tuple[Mapping[str, Any], ...]) -> None:
        self._definitions = definitions
        codes_by_url = {d["url"]: d["code"] for d in definitions}
        types = resource_types()
        domain = _domain_resource_types()
        by_type: dict[str, dict[str, SearchParam]] = {t: {} for t in sorted(types)}
        for definition in definitions:
            for base in definition["base"]:
                if base == "Resource":
                    applies_to: frozenset[str] = types
                elif base == "DomainResource":
                    applies_to = domain
                elif base in types:
                    applies_to = frozenset({base})
                else:
                    continue
                for res_type in applies_to:
                    param = _param_for(definition, base, res_type, codes_by_url)
                    by_type[res_type][param.code] = param
        self._by_type: dict[str, Mapping[str, SearchParam]] = {
            t: MappingProxyType(params) for t, params in by_type.items()
        }

    @property
    def definition_count(self) -> int:
        return len(self._definitions)

    def resource_types(self) -> tuple[str, ...]:
        return tuple(self._by_type)

    def params_for(self, resource_type: str) -> Mapping[str, SearchParam]:
        return self._by_type.get(resource_type, MappingProxyType({}))

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.params_for(resource_type).get(code)


def _param_for(
    definition: Mapping[str, Any], base: str, res_type: str, codes_by_url: Mapping[str, str]
) -> SearchParam:
    expression: str | None = definition.get("expression")
    if expression is not None:
        own = [_rooted(b, base) for b in split_union(expression)]
        own = [b for b in own if branch_root(b) == base]
        if base != res_type:
            # `Resource.meta.tag` → `Patient.meta.tag`: a FHIRPath engine evaluating on a
            # Patient selects nothing from a root named Resource.
            own = [b.replace(base, res_type, 1) for b in own]
        expression = " | ".join(own) if own else None
    url: str = definition["url"]
    components = _COMPONENT_FIXES.get(url) or tuple(
        (codes_by_url.get(c["definition"], c["definition"]), c["expression"])
        for c in definition.get("component", ())
    )
    param_type = ParamType(definition["type"])
    targets = tuple(definition.get("target", ()))
    if param_type is ParamType.REFERENCE and expression is not None:
        targets = _narrowed_targets(expression, res_type, targets)
    return SearchParam(
        code=definition["code"],
        type=param_type,
        resource_type=res_type,
        expression=expression,
        targets=targets,
        components=components,
        url=url,
    )


def _narrowed_targets(expression: str, res_type: str, declared: tuple[str, ...]) -> tuple[str, ...]:
    """The targets this type's branches can reach. clinical-patient declares Patient and Group
    for all its bases, but `Encounter.subject.where(resolve() is Patient)` only ever finds
    Patients, and AllergyIntolerance.patient is a Reference(Patient): with a single target, a
    bare id (`patient=123`) means Patient/123."""
    try:
        leaves = compile_expression(expression, res_type).leaves
    except Unsupported:
        return declared
    reachable: dict[str, None] = {}
    for leaf in leaves:
        if leaf.type != "Reference" or leaf.targets is None:
            return declared  # canonical URLs, contained resources, any-resource references
        reachable.update(dict.fromkeys(leaf.targets))
    narrowed = tuple(t for t in declared if t in reachable)
    return narrowed or declared


# Yilian's own parameters, beside the official ones: what its access rules must search by.
YILIAN_PARAMETERS: tuple[Mapping[str, Any], ...] = (
    {"resourceType": "SearchParameter", "id": "Consent-provision-type",
     "url": "http://yilian.example.org/fhir/SearchParameter/Consent-provision-type",
     "name": "ConsentProvisionType", "status": "active", "code": "provision-type",
     "base": ["Consent"], "type": "token", "expression": "Consent.provision.type",
     "description": "deny | permit: whether a consent's rule withholds or allows (a deny "
                    "naming an organization as actor withdraws its staff's access)"},
    # R4 cannot find a Location by its physical type (R5 added this very parameter): the
    # bed board asks for the beds (bd) of a campus or ward.
    {"resourceType": "SearchParameter", "id": "Location-physical-type",
     "url": "http://yilian.example.org/fhir/SearchParameter/Location-physical-type",
     "name": "LocationPhysicalType", "status": "active", "code": "physical-type",
     "base": ["Location"], "type": "token", "expression": "Location.physicalType",
     "description": "si | bu | wa | ro | bd ...: the kind of place (as R5's physical-type)"},
)


@cache
def get_registry() -> SearchRegistry:
    """The registry of the official R4 parameters and Yilian's own, built on first use."""
    return SearchRegistry((*search_parameters(), *YILIAN_PARAMETERS))
