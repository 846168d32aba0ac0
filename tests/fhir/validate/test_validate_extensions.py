"""Extensions, modifier extensions, and the "_name" companions of primitives."""

from __future__ import annotations

from typing import Any

URL = "http://example.org/fhir/StructureDefinition/x"


def ext(**fields: Any) -> dict[str, Any]:
    return {"url": URL, **fields}


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **fields}


def test_extension_with_a_value(check: Any) -> None:
    check.valid(patient(extension=[ext(valueString="x")]))
    check.valid(patient(extension=[ext(valueCodeableConcept={"text": "x"})]))
    check.valid(patient(modifierExtension=[ext(valueBoolean=True)]))


def test_extension_with_nested_extensions(check: Any) -> None:
    check.valid(patient(extension=[ext(extension=[{"url": "part", "valueInteger": 1}])]))


def test_extension_needs_a_url(check: Any) -> None:
    check.only(patient(extension=[{"valueString": "x"}]), "Patient.extension[0].url", "required")


def test_extension_needs_a_value_or_extensions(check: Any) -> None:
    check.only(patient(extension=[ext(id="e")]), "Patient.extension[0]", "invariant")


def test_extension_must_not_have_both(check: Any) -> None:
    both = ext(valueString="x", extension=[{"url": "part", "valueInteger": 1}])
    check.only(patient(extension=[both]), "Patient.extension[0]", "invariant")


def test_extension_value_of_two_types(check: Any) -> None:
    resource = patient(extension=[ext(valueString="x", valueInteger=1)])
    check.only(resource, "Patient.extension[0].valueInteger", "structure")


def test_extension_value_must_be_valid(check: Any) -> None:
    resource = patient(extension=[ext(valueDate="2023-02-30")])
    check.only(resource, "Patient.extension[0].valueDate", "value")


def test_extension_unknown_value_type(check: Any) -> None:
    resource = patient(extension=[ext(valueText="x")])
    errors = check.errors(resource)
    assert ("structure", "Patient.extension[0].valueText") in {(e.code, e.path) for e in errors}


def test_extension_url_has_no_companion(check: Any) -> None:
    resource = patient(extension=[ext(valueString="x", _url={"id": "u"})])
    check.only(resource, "Patient.extension[0]._url", "structure")


def test_primitive_with_extensions(check: Any) -> None:
    time = ext(valueDateTime="1974-12-25T14:35:45-05:00")
    check.valid(patient(birthDate="1974-12-25", _birthDate={"extension": [time]}))
    check.valid(patient(birthDate="1974-12-25", _birthDate={"id": "b"}))


def test_primitive_with_only_extensions(check: Any) -> None:
    check.valid(patient(_birthDate={"extension": [ext(valueString="unknown")]}))


def test_companion_without_value_needs_extensions(check: Any) -> None:
    check.only(patient(_birthDate={"id": "b"}), "Patient.birthDate", "structure")


def test_companion_of_a_single_value_must_be_an_object(check: Any) -> None:
    resource = patient(birthDate="1974-12-25", _birthDate=[{"id": "b"}])
    check.only(resource, "Patient._birthDate", "structure")


def test_companion_is_validated(check: Any) -> None:
    resource = patient(birthDate="1974-12-25", _birthDate={"extension": [{"url": URL}]})
    check.only(resource, "Patient.birthDate.extension[0]", "invariant")
    resource = patient(birthDate="1974-12-25", _birthDate={"color": "red"})
    check.only(resource, "Patient.birthDate.color", "structure")


def test_companion_of_a_complex_element(check: Any) -> None:
    resource = patient(maritalStatus={"text": "married"}, _maritalStatus={"id": "m"})
    issue = check.only(resource, "Patient._maritalStatus", "structure")
    assert "not a primitive" in issue.message


def test_aligned_primitive_arrays_with_nulls(check: Any) -> None:
    given = ["Wei", None, "Ming"]
    extras = [None, {"extension": [ext(valueString="x")]}, {"id": "g3"}]
    check.valid(patient(name=[{"given": given, "_given": extras}]))


def test_null_without_a_companion_entry(check: Any) -> None:
    resource = patient(name=[{"given": ["Wei", None]}])
    check.only(resource, "Patient.name[0].given[1]", "structure")
    resource = patient(name=[{"given": ["Wei", None], "_given": [{"id": "a"}, None]}])
    check.only(resource, "Patient.name[0].given[1]", "structure")


def test_misaligned_companion_array(check: Any) -> None:
    resource = patient(name=[{"given": ["Wei", "Ming"], "_given": [{"id": "a"}]}])
    check.only(resource, "Patient.name[0]._given", "structure")


def test_companion_array_of_a_repeating_primitive_must_be_an_array(check: Any) -> None:
    resource = patient(name=[{"given": ["Wei"], "_given": {"id": "a"}}])
    check.only(resource, "Patient.name[0]._given", "structure")


def test_companion_only_array(check: Any) -> None:
    extras = [{"extension": [ext(valueString="x")]}]
    check.valid(patient(name=[{"_given": extras}]))
    check.only(patient(name=[{"_given": [None]}]), "Patient.name[0].given[0]", "structure")
