"""Compiling search expressions to walker steps, and walking them."""

from __future__ import annotations

import pytest

from yilian.fhir.search.fhirmodel import root
from yilian.fhir.search.paths import (
    EQUALS,
    INDEX,
    KEY,
    REF_IS,
    ROOT,
    Unsupported,
    compile_expression,
    reference_type,
    walk,
)


def leaves(expression: str, res_type: str) -> list[tuple[tuple[object, ...], str]]:
    return [(leaf.steps, leaf.type) for leaf in compile_expression(expression, res_type).leaves]


def test_plain_paths_end_on_their_declared_type() -> None:
    assert leaves("Patient.name.family", "Patient") == [
        (((KEY, "name"), (KEY, "family")), "string")
    ]
    assert leaves("Patient.contact.name", "Patient") == [
        (((KEY, "contact"), (KEY, "name")), "HumanName")
    ]
    # A contentReference: Questionnaire.item.item is a Questionnaire.item.
    assert leaves("Questionnaire.item.item.code", "Questionnaire") == [
        (((KEY, "item"), (KEY, "item"), (KEY, "code")), "Coding")
    ]
    # Resource.id is declared as System.String with its FHIR type in an extension.
    assert leaves("Resource.id", "Patient") == [(((KEY, "id"),), "string")]


def test_choice_elements_expand_to_their_json_keys() -> None:
    assert leaves("Observation.effective", "Observation") == [
        (((KEY, "effectiveDateTime"),), "dateTime"),
        (((KEY, "effectivePeriod"),), "Period"),
        (((KEY, "effectiveTiming"),), "Timing"),
        (((KEY, "effectiveInstant"),), "instant"),
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "(Observation.value as Quantity)",
        "Observation.value.as(Quantity)",
        "Observation.value.ofType(Quantity)",
        "Observation.value as Quantity",
    ],
)
def test_casts(expression: str) -> None:
    assert leaves(expression, "Observation") == [(((KEY, "valueQuantity"),), "Quantity")]


def test_casts_match_profiles_and_case() -> None:
    assert leaves("Condition.onset.as(Age)", "Condition") == [(((KEY, "onsetAge"),), "Age")]
    assert leaves("Observation.value.as(DateTime)", "Observation") == [
        (((KEY, "valueDateTime"),), "dateTime")
    ]
    assert leaves("(Observation.value as CodeableConcept).text", "Observation") == [
        (((KEY, "valueCodeableConcept"), (KEY, "text")), "string")
    ]


def test_filters_indexers_and_the_resource_variable() -> None:
    assert leaves("Account.subject.where(resolve() is Patient)", "Account") == [
        (((KEY, "subject"), (REF_IS, "Patient")), "Reference")
    ]
    assert leaves("Patient.telecom.where(system='phone')", "Patient") == [
        (((KEY, "telecom"), (EQUALS, "system", "phone")), "ContactPoint")
    ]
    assert leaves("Bundle.entry[0].resource", "Bundle") == [
        (((KEY, "entry"), (INDEX, 0), (KEY, "resource")), "Resource")
    ]
    variant = root("MolecularSequence")
    compiled = compile_expression("%resource.referenceSeq.chromosome", "MolecularSequence", variant)
    assert [(leaf.steps, leaf.type) for leaf in compiled.leaves] == [
        (((ROOT,), (KEY, "referenceSeq"), (KEY, "chromosome")), "CodeableConcept")
    ]


def test_reference_targets_are_narrowed() -> None:
    expression = "Encounter.subject.where(resolve() is Patient)"
    (leaf,) = compile_expression(expression, "Encounter").leaves
    assert leaf.targets == ("Patient",)
    (leaf,) = compile_expression("AllergyIntolerance.patient", "AllergyIntolerance").leaves
    assert leaf.targets == ("Patient",)
    (leaf,) = compile_expression("Provenance.target", "Provenance").leaves
    assert leaf.targets is None  # Reference(Any)


def test_the_deceased_pattern() -> None:
    compiled = compile_expression(
        "Patient.deceased.exists() and Patient.deceased != false", "Patient"
    )
    assert compiled.exists_not_false
    assert {leaf.type for leaf in compiled.leaves} == {"boolean", "dateTime"}


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.name.first()",
        "Patient.name.where(use = 'official' and family.exists())",
        "Patient.name.family + 'x'",
        "Patient.nosuchelement",
        "Patient.name[x]",
        "iif(Patient.active, 1, 0)",
    ],
)
def test_outside_the_grammar(expression: str) -> None:
    with pytest.raises(Unsupported):
        compile_expression(expression, "Patient")


def test_walking() -> None:
    resource = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/1"},
        "performer": [
            {"reference": "Practitioner/1"},
            None,
            {"reference": "http://x.org/fhir/Patient/2/_history/1"},
            {"type": "Patient", "identifier": {"value": "9"}},
            {"reference": "#p"},
        ],
    }
    steps = ((KEY, "performer"), (REF_IS, "Patient"))
    assert walk(resource, resource, steps) == [
        {"reference": "http://x.org/fhir/Patient/2/_history/1"},
        {"type": "Patient", "identifier": {"value": "9"}},
    ]
    assert walk(resource, resource, ((KEY, "performer"), (INDEX, 1))) == [
        {"reference": "http://x.org/fhir/Patient/2/_history/1"}
    ]
    assert walk(resource, resource, ((KEY, "nothing"), (KEY, "deeper"))) == []
    assert reference_type({"reference": "urn:uuid:1", "type": "Patient"}) == "Patient"
    assert reference_type({"reference": "#p"}) is None
    assert reference_type("Patient/1") is None
