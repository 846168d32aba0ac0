"""The official R4 example corpus (hl7.fhir.r4.examples@4.0.1), shared by the tests that
use it: where it is, which files are the 719 example instances, and which of them break the
specification's own rules (with the rule quoted).

The corpus is fetched by `make test` (scripts/fetch-fhir-examples.sh) into
.cache/fhir-r4-examples/package. Files are named `<resourceType>-<id>.json`; the conformance
resources (StructureDefinition, ValueSet...) are definitions, not examples, and are left out.
"""

from __future__ import annotations

from pathlib import Path

from yilian.fhir.definitions import resource_types

EXAMPLES = Path(__file__).resolve().parents[1] / ".cache" / "fhir-r4-examples" / "package"
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


def example_names() -> list[str]:
    if not EXAMPLES.is_dir():
        return []
    examples = resource_types() - CONFORMANCE
    return sorted(
        path.name for path in EXAMPLES.glob("*.json") if path.name.split("-")[0] in examples
    )


NAMES = example_names()




def known_invalid_path(name: str) -> str:
    """Where the validator must report the fault of a known-invalid example."""
    return KNOWN_INVALID[name].partition(": ")[0]
