"""The search-parameter registry built from the official R4 definitions."""

from __future__ import annotations

import pytest

from yilian.fhir.definitions import resource_types
from yilian.fhir.search.registry import (
    YILIAN_PARAMETERS,
    ParamType,
    SearchParam,
    branch_root,
    get_registry,
    split_union,
)


def param(res_type: str, code: str) -> SearchParam:
    found = get_registry().get(res_type, code)
    assert found is not None, f"{res_type}.{code} missing"
    return found


def test_all_official_definitions_are_loaded() -> None:
    registry = get_registry()
    assert registry.definition_count == 1375 + len(YILIAN_PARAMETERS)
    urls = {p.url for t in registry.resource_types() for p in registry.params_for(t).values()}
    assert len(urls) == 1375 + len(YILIAN_PARAMETERS)  # each applies to some type


def test_the_registry_is_memoised() -> None:
    assert get_registry() is get_registry()


def test_every_resource_type_has_the_resource_level_parameters() -> None:
    registry = get_registry()
    assert set(registry.resource_types()) == resource_types()
    for res_type in resource_types():
        codes = registry.params_for(res_type)
        for code in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"):
            assert code in codes, (res_type, code)
    assert param("Patient", "_id").expression == "Patient.id"
    assert param("Observation", "_tag").expression == "Observation.meta.tag"
    assert param("Patient", "_lastUpdated").type is ParamType.DATE
    # _text is DomainResource's: Bundle, Binary and Parameters do not have it.
    assert param("Patient", "_text").expression is None
    assert get_registry().get("Bundle", "_text") is None
    assert param("Bundle", "_content").expression is None


def test_unknown_lookups_are_empty() -> None:
    registry = get_registry()
    assert registry.get("Patient", "no-such-param") is None
    assert registry.get("NoSuchType", "_id") is None
    assert dict(registry.params_for("NoSuchType")) == {}


def test_patient_name() -> None:
    name = param("Patient", "name")
    assert name == SearchParam(
        code="name",
        type=ParamType.STRING,
        resource_type="Patient",
        expression="Patient.name",
        targets=(),
        components=(),
        url="http://hl7.org/fhir/SearchParameter/Patient-name",
    )


def test_observation_code_is_the_shared_clinical_code_narrowed_to_observation() -> None:
    code = param("Observation", "code")
    assert code.type is ParamType.TOKEN
    assert code.expression == "Observation.code"
    assert code.url == "http://hl7.org/fhir/SearchParameter/clinical-code"


def test_encounter_patient_targets_patient() -> None:
    patient = param("Encounter", "patient")
    assert patient.type is ParamType.REFERENCE
    assert patient.expression == "Encounter.subject.where(resolve() is Patient)"
    # clinical-patient declares Patient and Group; resolve() is Patient leaves only Patient.
    assert patient.targets == ("Patient",)
    assert set(param("Encounter", "subject").targets) == {"Patient", "Group"}


@pytest.mark.parametrize(
    ("res_type", "expression"),
    [
        ("AllergyIntolerance", "AllergyIntolerance.patient"),
        ("CarePlan", "CarePlan.subject.where(resolve() is Patient)"),
        ("Observation", "Observation.subject.where(resolve() is Patient)"),
        ("DocumentManifest", "DocumentManifest.subject.where(resolve() is Patient)"),
        ("Immunization", "Immunization.patient"),
        ("MedicationRequest", "MedicationRequest.subject.where(resolve() is Patient)"),
    ],
)
def test_clinical_patient_is_split_per_type(res_type: str, expression: str) -> None:
    patient = param(res_type, "patient")
    assert patient.url == "http://hl7.org/fhir/SearchParameter/clinical-patient"
    assert patient.expression == expression
    assert patient.targets == ("Patient",)


def test_observation_code_value_quantity_components() -> None:
    composite = param("Observation", "code-value-quantity")
    assert composite.type is ParamType.COMPOSITE
    assert composite.expression == "Observation"
    assert composite.components == (("code", "code"), ("value-quantity", "value.as(Quantity)"))
    combo = param("Observation", "combo-code-value-quantity")
    assert combo.expression == "Observation | Observation.component"
    assert combo.components == (
        ("combo-code", "code"),
        ("combo-value-quantity", "value.as(Quantity)"),
    )


def test_document_reference_relationship_components_are_unswapped() -> None:
    # R4 names relatesto (a reference) for `code` and relation (a token) for `target`.
    assert param("DocumentReference", "relationship").components == (
        ("relatesto", "target"),
        ("relation", "code"),
    )


def test_conformance_context_keeps_only_its_own_branch() -> None:
    context = param("ValueSet", "context-type-quantity")
    assert context.expression == "ValueSet.useContext"
    assert param("CodeSystem", "context").expression == (
        "(CodeSystem.useContext.value as CodeableConcept)"
    )


def test_split_union_respects_parentheses_and_strings() -> None:
    assert split_union("(A.b as C) | A.c.where(x='a|b') | (A.d | A.e).f") == [
        "(A.b as C)",
        "A.c.where(x='a|b')",
        "(A.d | A.e).f",
    ]
    assert branch_root("(Observation.value as Quantity)") == "Observation"
    assert branch_root("Condition.onset.as(Age)") == "Condition"
