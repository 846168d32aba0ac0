"""The shape of the JSON: resourceType, unknown elements, cardinality, arrays, choice types."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
}


def observation(**fields: Any) -> dict[str, Any]:
    return {**OBSERVATION, **fields}


def test_a_minimal_resource_is_valid(check: Any) -> None:
    check.valid({"resourceType": "Patient"})
    check.valid(observation(valueQuantity={"value": Decimal("72.5"), "unit": "/min"}))


@pytest.mark.parametrize("resource", [[], "Patient", None, 12])
def test_a_resource_must_be_an_object(check: Any, resource: Any) -> None:
    check.only(resource, "Resource", "structure")


def test_resource_type_is_required(check: Any) -> None:
    check.only({"id": "x"}, "Resource.resourceType", "required")


@pytest.mark.parametrize("name", ["Foo", "DomainResource", "Resource", "patient", "HumanName"])
def test_resource_type_must_be_a_concrete_resource(check: Any, name: str) -> None:
    issue = check.only({"resourceType": name}, "Resource.resourceType", "not-supported")
    assert name in issue.message


def test_unknown_element(check: Any) -> None:
    issue = check.only({"resourceType": "Patient", "foo": 1}, "Patient.foo", "structure")
    assert "foo" in issue.message


def test_unknown_element_inside_a_data_type(check: Any) -> None:
    resource = {"resourceType": "Patient", "name": [{"family": "Li", "middle": "X"}]}
    check.only(resource, "Patient.name[0].middle", "structure")


def test_unknown_element_inside_a_backbone_element(check: Any) -> None:
    resource = {"resourceType": "Patient", "contact": [{"gender": "male", "mood": "calm"}]}
    check.only(resource, "Patient.contact[0].mood", "structure")


def test_resource_type_is_unknown_inside_a_data_type(check: Any) -> None:
    resource = {"resourceType": "Patient", "name": [{"resourceType": "HumanName", "text": "Li"}]}
    check.only(resource, "Patient.name[0].resourceType", "structure")


def test_content_reference_elements_use_the_referenced_definition(check: Any) -> None:
    item = {"linkId": "1", "type": "group"}
    resource = {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [{**item, "item": [{**item, "item": [{"type": "string", "bogus": True}]}]}],
    }
    errors = check.errors(resource)
    assert {(e.code, e.path) for e in errors} == {
        ("structure", "Questionnaire.item[0].item[0].item[0].bogus"),
        ("required", "Questionnaire.item[0].item[0].item[0].linkId"),
    }


def test_required_elements(check: Any) -> None:
    errors = check.errors({"resourceType": "Observation"})
    assert [(e.code, e.path) for e in errors] == [
        ("required", "Observation.status"),
        ("required", "Observation.code"),
    ]


def test_required_element_of_a_backbone_element(check: Any) -> None:
    resource = observation(component=[{"valueString": "x"}])
    check.only(resource, "Observation.component[0].code", "required")


def test_required_choice_element(check: Any) -> None:
    resource = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/1"},
    }
    check.only(resource, "MedicationRequest.medication[x]", "required")


def test_a_primitive_extension_satisfies_a_required_primitive(check: Any) -> None:
    absent = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    }
    resource = {"resourceType": "Observation", "_status": absent, "code": {"text": "x"}}
    check.valid(resource)


def test_repeating_element_given_as_an_object(check: Any) -> None:
    resource = {"resourceType": "Patient", "name": {"family": "Li"}}
    issue = check.only(resource, "Patient.name", "structure")
    assert "array" in issue.message


def test_repeating_primitive_given_as_a_single_value(check: Any) -> None:
    resource = {"resourceType": "Patient", "name": [{"given": "Wei"}]}
    check.only(resource, "Patient.name[0].given", "structure")


def test_single_element_given_as_an_array(check: Any) -> None:
    check.only({"resourceType": "Patient", "gender": ["male"]}, "Patient.gender", "structure")
    resource = {"resourceType": "Patient", "maritalStatus": [{"text": "married"}]}
    check.only(resource, "Patient.maritalStatus", "structure")


def test_complex_element_given_as_a_string(check: Any) -> None:
    resource = {"resourceType": "Patient", "maritalStatus": "married"}
    check.only(resource, "Patient.maritalStatus", "structure")


def test_required_repeating_element(check: Any) -> None:
    resource = {
        "resourceType": "Provenance",
        "target": [{"reference": "Patient/1"}],
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"who": {"reference": "Practitioner/1"}}],
    }
    check.valid(resource)
    check.only({**resource, "target": []}, "Provenance.target", "structure")
    del resource["target"]
    check.only(resource, "Provenance.target", "required")


def test_two_types_of_a_choice_element(check: Any) -> None:
    resource = observation(valueString="high", valueQuantity={"value": 1})
    issue = check.only(resource, "Observation.valueQuantity", "structure")
    assert "valueString" in issue.message


def test_a_choice_element_and_the_companion_of_another_type(check: Any) -> None:
    extension = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    resource = observation(valueString="high", _valueBoolean=extension)
    check.only(resource, "Observation.valueBoolean", "structure")


def test_a_choice_value_with_its_own_companion_is_one_value(check: Any) -> None:
    extension = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    check.valid(observation(valueString="high", _valueString=extension))


def test_a_type_not_allowed_for_a_choice_element(check: Any) -> None:
    check.only(observation(valueUri="http://x"), "Observation.valueUri", "structure")


def test_empty_object(check: Any) -> None:
    check.only(
        {"resourceType": "Patient", "maritalStatus": {}}, "Patient.maritalStatus", "structure"
    )
    check.only({"resourceType": "Patient", "contact": [{}]}, "Patient.contact[0]", "structure")


def test_object_with_only_an_id(check: Any) -> None:
    resource = {"resourceType": "Patient", "maritalStatus": {"id": "m"}}
    check.only(resource, "Patient.maritalStatus", "structure")


def test_empty_array(check: Any) -> None:
    check.only({"resourceType": "Patient", "name": []}, "Patient.name", "structure")
    check.only(
        {"resourceType": "Patient", "name": [{"given": []}]}, "Patient.name[0].given", "structure"
    )


def test_empty_string(check: Any) -> None:
    resource = {"resourceType": "Patient", "name": [{"family": ""}]}
    check.only(resource, "Patient.name[0].family", "value")


def test_null_value(check: Any) -> None:
    check.only({"resourceType": "Patient", "gender": None}, "Patient.gender", "structure")
    resource = {"resourceType": "Patient", "name": [None]}
    check.only(resource, "Patient.name[0]", "structure")


def test_paths_index_arrays_and_name_choice_types(check: Any) -> None:
    resource = observation(
        component=[
            {"code": {"text": "a"}, "valueQuantity": {"value": 1}},
            {"code": {"text": "b"}, "valueQuantity": {"value": "1"}},
        ]
    )
    check.only(resource, "Observation.component[1].valueQuantity.value", "structure")


def test_the_input_is_not_mutated(validator: Any) -> None:
    resource = observation(valueString="", component=[{}], _status={"id": "a"})
    copy = {key: value for key, value in resource.items()}
    snapshot = repr(resource)
    assert validator.validate(resource)
    assert resource == copy
    assert repr(resource) == snapshot


def test_a_simple_quantity_has_no_comparator(check: Any) -> None:
    """SimpleQuantity (Range.low/high, Dosage's doses...): comparator's max is 0 (sqty-1);
    a plain Quantity may have one."""
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "valueQuantity": {"value": 5, "comparator": "<", "unit": "mg"}}
    check.valid(observation)
    check.valid({**observation, "referenceRange": [{"low": {"value": 1, "unit": "mg"}}]})
    check.only({**observation, "referenceRange": [{"low": {"value": 1, "comparator": "<"}}]},
               "Observation.referenceRange[0].low.comparator", "structure")
    statement = {"resourceType": "MedicationStatement", "status": "active",
                 "medicationCodeableConcept": {"text": "x"},
                 "subject": {"reference": "Patient/1"},
                 "dosage": [{"doseAndRate": [{"doseQuantity": {"value": 5, "comparator": ">"}}]}]}
    check.only(statement, "MedicationStatement.dosage[0].doseAndRate[0].doseQuantity.comparator",
               "structure")
