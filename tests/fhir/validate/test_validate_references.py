"""Reference.reference syntax, Reference.type, target types and contained resources."""

from __future__ import annotations

from typing import Any

import pytest


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **fields}


@pytest.mark.parametrize(
    "reference",
    [
        "Organization/1",
        "Organization/a-b.c",
        "Organization/1/_history/2",
        "http://example.org/fhir/Organization/1",
        "https://example.org/fhir/Organization/1/_history/3",
        "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
        "urn:oid:1.2.3.4",
        "Organization?identifier=http://example.org|123",
    ],
)
def test_valid_references(check: Any, reference: str) -> None:
    check.valid(patient(managingOrganization={"reference": reference}))


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/",
        "Organization",
        "/Organization/1",
        "Organization/1/2",
        "Organization/a_b",
        "Organisation/1",
        "organization/1",
        "Organization/1/_history/",
        "urn:uuid:not-a-uuid",
        "urn:oid:1.02",
        "#bad id",
    ],
)
def test_invalid_references(check: Any, reference: str) -> None:
    resource = patient(managingOrganization={"reference": reference})
    check.has(resource, "Patient.managingOrganization.reference", "value")


def test_reference_to_a_type_the_element_does_not_allow(check: Any) -> None:
    resource = patient(managingOrganization={"reference": "Practitioner/1"})
    issue = check.only(resource, "Patient.managingOrganization.reference", "invalid")
    assert "Organization" in issue.message


def test_reference_type_must_agree_with_the_reference(check: Any) -> None:
    check.valid(
        patient(managingOrganization={"reference": "Organization/1", "type": "Organization"})
    )
    resource = patient(managingOrganization={"reference": "Organization/1", "type": "Patient"})
    check.only(resource, "Patient.managingOrganization.type", "invalid")
    for unknown in ("organization", "Foo", "http://example.org/StructureDefinition/Foo"):
        resource = patient(managingOrganization={"reference": "Organization/1", "type": unknown})
        issues = [i for i in check.validator.validate(resource) if i.severity == "error"]
        assert [(i.path, i.code) for i in issues] == [
            ("Patient.managingOrganization.type", "invalid")], unknown


def test_reference_type_alone_must_be_allowed(check: Any) -> None:
    resource = patient(managingOrganization={"type": "Patient", "identifier": {"value": "1"}})
    check.only(resource, "Patient.managingOrganization.type", "invalid")


def test_unknown_reference_type_is_a_warning(validator: Any) -> None:
    resource = patient(generalPractitioner=[{"type": "Doctor", "display": "Dr Li"}])
    issues = validator.validate(resource)
    assert [(i.severity, i.path) for i in issues] == [
        ("warning", "Patient.generalPractitioner[0].type")
    ]


def test_reference_to_any_resource(check: Any) -> None:
    resource = {
        "resourceType": "Provenance",
        "target": [{"reference": "Questionnaire/1"}],
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"who": {"reference": "Practitioner/1"}}],
    }
    check.valid(resource)


def test_local_reference_to_a_contained_resource(check: Any) -> None:
    organization = {"resourceType": "Organization", "id": "org", "name": "ACME"}
    check.valid(patient(contained=[organization], managingOrganization={"reference": "#org"}))


def test_a_local_reference_is_held_to_its_elements_target_types(check: Any) -> None:
    """A "#id" target must be of a type the element may refer to, as a Type/id's must (and
    of its Reference.type, if given)."""
    practitioner = {"resourceType": "Practitioner", "id": "p"}
    check.only(patient(contained=[practitioner], managingOrganization={"reference": "#p"}),
               "Patient.managingOrganization.reference", "invalid")
    check.only(patient(contained=[practitioner],
                       generalPractitioner=[{"reference": "#p", "type": "Organization"}]),
               "Patient.generalPractitioner[0].reference", "invalid")
    check.valid(patient(contained=[practitioner], generalPractitioner=[{"reference": "#p"}]))


def test_local_reference_without_a_contained_resource(check: Any) -> None:
    resource = patient(managingOrganization={"reference": "#org"})
    check.only(resource, "Patient.managingOrganization.reference", "invariant")


def test_contained_resource_refers_to_its_container(check: Any) -> None:
    link = {"other": {"reference": "#"}, "type": "seealso"}
    related = {"resourceType": "Patient", "id": "p2", "link": [link]}
    check.valid(patient(contained=[related]))


def test_only_a_contained_resource_refers_to_its_container(check: Any) -> None:
    """ref-1: "#" alone is a contained resource's way to its container; the container has
    none (it would refer to itself)."""
    check.only(patient(managingOrganization={"reference": "#"}),
               "Patient.managingOrganization.reference", "invariant")


def test_contained_resource_must_be_referenced(check: Any) -> None:
    organization = {"resourceType": "Organization", "id": "org", "name": "ACME"}
    check.only(patient(contained=[organization]), "Patient.contained[0]", "invariant")


def test_contained_resource_inside_a_contained_resource(check: Any) -> None:
    inner = {"resourceType": "Organization", "id": "inner", "name": "B"}
    outer = {
        "resourceType": "Organization",
        "id": "outer",
        "name": "A",
        "contained": [inner],
        "partOf": {"reference": "#inner"},
    }
    resource = patient(contained=[outer], managingOrganization={"reference": "#outer"})
    check.has(resource, "Patient.contained[0].contained", "invariant")


def test_contained_resource_must_not_have_a_version(check: Any) -> None:
    organization = {
        "resourceType": "Organization",
        "id": "org",
        "name": "ACME",
        "meta": {"versionId": "2"},
    }
    resource = patient(contained=[organization], managingOrganization={"reference": "#org"})
    check.only(resource, "Patient.contained[0].meta.versionId", "invariant")


def test_contained_resources_are_validated_as_resources(check: Any) -> None:
    organization = {"resourceType": "Organization", "id": "org", "active": "yes"}
    resource = patient(contained=[organization], managingOrganization={"reference": "#org"})
    check.only(resource, "Patient.contained[0].active", "structure")
    unknown = {"resourceType": "Organisation", "id": "org"}
    resource = patient(contained=[unknown], managingOrganization={"reference": "#org"})
    check.has(resource, "Patient.contained[0].resourceType", "not-supported")
