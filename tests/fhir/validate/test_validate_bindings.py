"""Required bindings, and the expansion of the shipped ValueSets behind them."""

from __future__ import annotations

from typing import Any

from yilian.fhir.validate.terminology import code_set

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def condition(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/1"}, **fields}


def test_code_in_a_required_value_set(check: Any) -> None:
    for gender in ("male", "female", "other", "unknown"):
        check.valid({"resourceType": "Patient", "gender": gender})


def test_code_not_in_a_required_value_set(check: Any) -> None:
    issue = check.only(
        {"resourceType": "Patient", "gender": "xyz"}, "Patient.gender", "code-invalid"
    )
    assert '"xyz"' in issue.message
    assert "female" in issue.message


def test_codes_are_case_sensitive(check: Any) -> None:
    check.only({"resourceType": "Patient", "gender": "Male"}, "Patient.gender", "code-invalid")


def test_bogus_status(check: Any) -> None:
    resource = {"resourceType": "Observation", "status": "bogus", "code": {"text": "x"}}
    check.only(resource, "Observation.status", "code-invalid")


def test_required_binding_in_a_data_type(check: Any) -> None:
    resource = {"resourceType": "Patient", "telecom": [{"system": "wechat", "value": "x"}]}
    check.only(resource, "Patient.telecom[0].system", "code-invalid")


def test_required_binding_on_a_repeating_code(check: Any) -> None:
    resource = {
        "resourceType": "Practitioner",
        "telecom": [{"system": "phone", "value": "1"}],
        "communication": [{"text": "Mandarin"}],
        "extension": [{"url": "http://example.org/x", "valueCode": "anything-goes"}],
    }
    check.valid(resource)
    timing = {"repeat": {"dayOfWeek": ["mon", "fri", "someday"]}}
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "aspirin"},
        "subject": {"reference": "Patient/1"},
        "dosageInstruction": [{"timing": timing}],
    }
    check.only(
        request, "MedicationRequest.dosageInstruction[0].timing.repeat.dayOfWeek[2]", "code-invalid"
    )


def test_value_set_with_an_is_a_filter(check: Any) -> None:
    expanded = code_set("http://hl7.org/fhir/ValueSet/encounter-participant-type")
    assert expanded is not None
    assert {"ADM", "ATND", "CALLBCK", "translator"} <= expanded.codes
    assert "_ParticipationAncillary" not in expanded.codes  # excluded by compose.exclude


def test_value_set_importing_value_sets() -> None:
    expanded = code_set("http://hl7.org/fhir/ValueSet/consent-category")
    assert expanded is not None
    assert len(expanded.by_system) >= 2


def test_value_sets_that_cannot_be_expanded_are_skipped(check: Any) -> None:
    # mimetypes (urn:ietf:bcp:13) and UCUM are not enumerable from the shipped package
    assert code_set("http://hl7.org/fhir/ValueSet/mimetypes") is None
    assert code_set("http://hl7.org/fhir/ValueSet/ucum-units") is None
    resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": {"contentType": "application/x-made-up"}}],
    }
    check.valid(resource)


def test_filter_on_an_undeclared_property_is_not_expanded() -> None:
    assert code_set("http://hl7.org/fhir/ValueSet/example-filter") is None


def test_codeable_concept_with_a_code_from_the_value_set(check: Any) -> None:
    status = {"coding": [{"system": CLINICAL, "code": "active"}]}
    check.valid(condition(clinicalStatus=status))


def test_codeable_concept_with_text_only(check: Any) -> None:
    check.valid(condition(clinicalStatus={"text": "active"}))


def test_codeable_concept_with_a_wrong_code_of_the_value_set_system(check: Any) -> None:
    status = {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "55561003"},
            {"system": CLINICAL, "code": "bogus"},
        ]
    }
    check.only(
        condition(clinicalStatus=status), "Condition.clinicalStatus.coding[1].code", "code-invalid"
    )


def test_codeable_concept_with_no_coding_from_the_value_set(check: Any) -> None:
    status = {"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]}
    check.only(condition(clinicalStatus=status), "Condition.clinicalStatus.coding", "code-invalid")


def test_codeable_concept_with_a_translation_beside_the_bound_code(check: Any) -> None:
    status = {
        "coding": [
            {"system": CLINICAL, "code": "active"},
            {"system": "http://snomed.info/sct", "code": "55561003"},
        ]
    }
    check.valid(condition(clinicalStatus=status))


def test_unbound_codeable_concepts_accept_any_code(check: Any) -> None:
    check.valid(condition(code={"coding": [{"system": "http://example.org/x", "code": "y"}]}))
