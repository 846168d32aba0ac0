"""Every one of the 719 example instances of the official R4 package is validated.

The corpus is fetched by `make test` (scripts/fetch-fhir-examples.sh) into
.cache/fhir-r4-examples/package. Files are named `<resourceType>-<id>.json`; the conformance
resources (StructureDefinition, ValueSet...) are definitions, not examples, and are left out.
"""

from __future__ import annotations

import decimal
import json
from pathlib import Path
from typing import Any

import pytest

from yilian.fhir.definitions import resource_types
from yilian.fhir.validate import Validator

EXAMPLES = Path(__file__).resolve().parents[3] / ".cache" / "fhir-r4-examples" / "package"

CONFORMANCE = frozenset(
    {
        "StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter", "OperationDefinition",
        "CapabilityStatement", "CompartmentDefinition", "ConceptMap", "NamingSystem",
        "ImplementationGuide", "StructureMap", "GraphDefinition", "MessageDefinition",
        "TerminologyCapabilities", "ExampleScenario",
    }
)  # fmt: skip

# Examples that break the R4 specification's own rules. Each reason starts with the FHIRPath
# location of the fault, where the validator must report an error, then quotes the definition.
KNOWN_INVALID = {
    "DeviceMetric-example.json": (
        "DeviceMetric.parent.reference: the reference is to DeviceDefinition/dc102, but the "
        "element is defined as 'DeviceMetric.parent 0..1 Reference(Device)' (targetProfile "
        "http://hl7.org/fhir/StructureDefinition/Device only)."
    ),
    "DeviceUseStatement-example.json": (
        "DeviceUseStatement.reasonReference[0].reference: the reference is to "
        "Procedure/example, but the element is 'DeviceUseStatement.reasonReference 0..* "
        "Reference(Condition | Observation | DiagnosticReport | DocumentReference | Media)'."
    ),
    "MedicationRequest-medrx0301.json": (
        "MedicationRequest.dispenseRequest.performer.reference: the reference is to "
        "Practitioner/f001, but the element is 'MedicationRequest.dispenseRequest.performer "
        "0..1 Reference(Organization)'."
    ),
    "Observation-clinical-gender.json": (
        "Observation.performer[0].reference: the reference is to Encounter/example, but the "
        "element is 'Observation.performer 0..* Reference(Practitioner | PractitionerRole | "
        "Organization | CareTeam | Patient | RelatedPerson)'."
    ),
    "Questionnaire-qs1.json": (
        "Questionnaire.item[0].item[0].linkId: nested 'display' items have no linkId, but "
        "'Questionnaire.item.item' is a contentReference to #Questionnaire.item, whose "
        "'Questionnaire.item.linkId' is 1..1 (32 nested items lack it)."
    ),
}


def _example_names() -> list[str]:
    if not EXAMPLES.is_dir():
        return []
    examples = resource_types() - CONFORMANCE
    return sorted(
        path.name for path in EXAMPLES.glob("*.json") if path.name.split("-")[0] in examples
    )


NAMES = _example_names()


def _load(name: str) -> Any:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    return json.loads(text, parse_float=decimal.Decimal)


def _skip_without_corpus() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"the R4 example corpus is missing at {EXAMPLES}; run `make examples`")


def test_the_corpus_has_the_719_examples() -> None:
    _skip_without_corpus()
    assert len(NAMES) == 719
    assert set(KNOWN_INVALID) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES or ["(corpus missing)"])
def test_example(validator: Validator, name: str) -> None:
    _skip_without_corpus()
    resource = _load(name)
    assert resource["resourceType"] not in CONFORMANCE
    errors = [issue for issue in validator.validate(resource) if issue.severity == "error"]
    if name not in KNOWN_INVALID:
        assert errors == [], "\n".join(f"{e.code} {e.path}: {e.message}" for e in errors)
        return
    path = KNOWN_INVALID[name].partition(": ")[0]
    at_path = [error for error in errors if error.path == path]
    assert at_path, f"expected an error at {path}, got {errors}"
    # and nothing else is wrong with it than the rule quoted
    assert {error.code for error in errors} == {at_path[0].code}, errors
