"""Composite search over HTTP, on SQLite and PostgreSQL: components are matched in the same
element, each with its own type's prefixes and units (R4 search §3.1.1.4, §3.1.1.5.6).
Expected results are worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import issue_expressions, put_all
from search_client import check, q
from starlette.testclient import TestClient

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"


def _mmhg(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}


def _blood_pressure(obs_id: str, subject: str, systolic: int, diastolic: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": obs_id, "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{subject}"},
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": SYSTOLIC}]},
             "valueQuantity": _mmhg(systolic)},
            {"code": {"coding": [{"system": LOINC, "code": DIASTOLIC}]},
             "valueQuantity": _mmhg(diastolic)},
        ],
    }  # fmt: skip


def _observation(obs_id: str, code: str, **value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": obs_id, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}, **value}


def _group(group_id: str, **characteristics: bool) -> dict[str, Any]:
    return {"resourceType": "Group", "id": group_id, "type": "person", "actual": True,
            "characteristic": [
                {"code": {"coding": [{"system": "urn:yilian:test", "code": code}]},
                 "valueBoolean": value, "exclude": False}
                for code, value in characteristics.items()]}  # fmt: skip


def _sequence(seq_id: str, chromosome: str, *variants: tuple[int, int]) -> dict[str, Any]:
    return {"resourceType": "MolecularSequence", "id": seq_id, "coordinateSystem": 1,
            "referenceSeq": {"chromosome": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/chromosome-human",
                "code": chromosome}]}},
            "variant": [{"start": start, "end": end} for start, end in variants]}  # fmt: skip


RESOURCES: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "pa"},
    {"resourceType": "Patient", "id": "pb"},
    _blood_pressure("bp1", "pa", systolic=150, diastolic=95),
    # A diastolic value above the other's systolic: pairing code and value by component
    # is what tells them apart.
    _blood_pressure("bp2", "pb", systolic=110, diastolic=125),
    _observation("sys", SYSTOLIC, valueQuantity=_mmhg(130)),
    _observation("onset", "11368-8", valueDateTime="2024-05-01T10:00:00+08:00"),
    _observation("culture", "600-7", valueString="Positive for E. coli"),
    _observation("culture-text", "600-7", valueCodeableConcept={"text": "Negative"}),
    _group("g1", smoker=True, adult=False),
    _group("g2", smoker=False, adult=True),
    {**_group("g3"), "characteristic": [
        {"code": {"coding": [{"system": "urn:yilian:test", "code": "a$b"}]},
         "valueBoolean": True, "exclude": False}]},
    _sequence("seq1", "1", (100, 101), (200, 230)),
    _sequence("seq2", "2", (150, 160)),
    {"resourceType": "DocumentReference", "id": "doc-old", "status": "superseded",
     "content": [{"attachment": {"url": "http://example.org/old.pdf"}}]},
    {"resourceType": "DocumentReference", "id": "doc-new", "status": "current",
     "content": [{"attachment": {"url": "http://example.org/new.pdf"}}],
     "relatesTo": [{"code": "replaces", "target": {"reference": "DocumentReference/doc-old"}}]},
    {"resourceType": "ValueSet", "id": "adults", "status": "active",
     "useContext": [{"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                              "code": "age"},
                     "valueQuantity": {"value": 18, "system": UCUM, "code": "a"}}]},
]  # fmt: skip


@pytest.fixture
def loaded(client: TestClient) -> TestClient:
    return put_all(client, RESOURCES)


def test_components_pair_within_one_element(loaded: TestClient) -> None:
    check(loaded, [
        # bp2's 125 is its diastolic value: never paired with its systolic code.
        (q(f"Observation?component-code-value-quantity={SYSTOLIC}$gt120"), {"bp1"}),
        (q(f"Observation?component-code-value-quantity={DIASTOLIC}$gt120"), {"bp2"}),
        (q(f"Observation?component-code-value-quantity={LOINC}|{SYSTOLIC}$150"), {"bp1"}),
        (q(f"Observation?component-code-value-quantity={SYSTOLIC}$le110"), {"bp2"}),
        (q(f"Observation?component-code-value-quantity={SYSTOLIC}"
           f"$gt100|{UCUM}|mm[Hg]"), {"bp1", "bp2"}),
        (q(f"Observation?component-code-value-quantity={SYSTOLIC}$gt100|{UCUM}|kPa"), set()),
        # OR across values, AND across repetitions (each may use another component).
        (q(f"Observation?component-code-value-quantity={SYSTOLIC}$gt140,{DIASTOLIC}$gt120"),
         {"bp1", "bp2"}),
        (q(f"Observation?component-code-value-quantity={SYSTOLIC}$gt140"
           f"&component-code-value-quantity={DIASTOLIC}$lt100"), {"bp1"}),
        (q(f"Observation?component-code-value-quantity={SYSTOLIC}$gt140"
           f"&component-code-value-quantity={DIASTOLIC}$gt100"), set()),
        # combo- pairs the Observation's own code and value too.
        (q(f"Observation?combo-code-value-quantity={SYSTOLIC}$gt120"), {"bp1", "sys"}),
        (q(f"Observation?code-value-quantity={SYSTOLIC}$gt120"), {"sys"}),
        (q(f"Observation?code-value-quantity={SYSTOLIC}$ne130"), set()),
        (q(f"Observation?code-value-quantity={SYSTOLIC}$lt130"), set()),
    ])  # fmt: skip


def test_component_types_other_than_quantities(loaded: TestClient) -> None:
    check(loaded, [
        (q("Observation?code-value-date=11368-8$ge2024-05"), {"onset"}),
        (q("Observation?code-value-date=11368-8$2024-05-01"), {"onset"}),
        (q("Observation?code-value-date=11368-8$lt2024"), set()),
        # string components: prefix, accent and case insensitive by default.
        (q("Observation?code-value-string=600-7$positive"), {"culture"}),
        (q("Observation?code-value-string=600-7$negative"), set()),
        (q("Group?characteristic-value=smoker$true"), {"g1"}),
        (q("Group?characteristic-value=adult$true"), {"g2"}),
        (q("Group?characteristic-value=urn:yilian:test|smoker$false"), {"g2"}),
        (q("Group?characteristic-value=a\\$b$true"), {"g3"}),  # an escaped '$' in a code
        (q("DocumentReference?relationship=DocumentReference/doc-old$replaces"), {"doc-new"}),
        (q("DocumentReference?relationship=doc-old$replaces"), {"doc-new"}),
        (q("DocumentReference?relationship=doc-old$transforms"), set()),
        (q("ValueSet?context-type-quantity=age$gt10"), {"adults"}),
        (q("ValueSet?context-type-quantity=age$gt20"), set()),
    ])  # fmt: skip


def test_number_components_of_one_variant(loaded: TestClient) -> None:
    check(loaded, [
        # seq1's second variant, 200-230, lies in the window; its first, 100-101, does not.
        (q("MolecularSequence?chromosome-variant-coordinate=1$gt150$lt240"), {"seq1"}),
        # Start after 150 from one variant and end before 210 from another: no one variant.
        (q("MolecularSequence?chromosome-variant-coordinate=1$gt150$lt210"), set()),
        (q("MolecularSequence?chromosome-variant-coordinate=2$ge150$le160"), {"seq2"}),
        (q("MolecularSequence?chromosome-variant-coordinate=1$ge150$le160"), set()),
    ])  # fmt: skip


def test_missing_chained_and_reverse_chained_composites(loaded: TestClient) -> None:
    check(loaded, [
        ("Observation?component-code-value-quantity:missing=false", {"bp1", "bp2"}),
        ("Observation?code-value-quantity:missing=false", {"sys"}),
        ("Observation?code-value-string:missing=false", {"culture"}),
        ("Observation?code-value-string:missing=true",
         {"bp1", "bp2", "sys", "onset", "culture-text"}),
        (q(f"Patient?_has:Observation:subject:component-code-value-quantity="
           f"{DIASTOLIC}$gt120"), {"pb"}),
        (q(f"Observation?subject.name:missing=true&component-code-value-quantity="
           f"{SYSTOLIC}$gt100"), {"bp1", "bp2"}),
        (q(f"Observation?status=final&component-code-value-quantity={SYSTOLIC}$lt140"),
         {"bp2"}),
    ])  # fmt: skip


@pytest.mark.parametrize("value", [
    SYSTOLIC,  # one component of two
    f"{SYSTOLIC}$120$1",  # three
    f"{SYSTOLIC}$",  # an empty one
    f"{SYSTOLIC}$abc",  # not a quantity
    f"{SYSTOLIC}$gt",
])  # fmt: skip
def test_malformed_composites_are_400_naming_the_parameter(
    loaded: TestClient, value: str
) -> None:
    response = loaded.get(f"/fhir/Observation?component-code-value-quantity={q(value)}")
    assert response.status_code == 400, response.text
    assert issue_expressions(response.json()) == ["component-code-value-quantity"]


def test_a_modifier_on_a_composite_is_refused_strictly(loaded: TestClient) -> None:
    url = q(f"/fhir/Observation?component-code-value-quantity:exact={SYSTOLIC}$150")
    response = loaded.get(url, headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["component-code-value-quantity:exact"]


def test_combo_parameters_search_the_rows_they_unite(loaded: TestClient) -> None:
    """combo-code is code | component.code, written once as `code` and `component-code`
    (search/unions.py): every form of search must still see both."""
    check(loaded, [
        (q(f"Observation?combo-code={SYSTOLIC}"), {"bp1", "bp2", "sys"}),
        (q(f"Observation?combo-code={LOINC}|{DIASTOLIC}"), {"bp1", "bp2"}),
        (q(f"Observation?combo-code={LOINC}|"), {"bp1", "bp2", "sys", "onset", "culture",
                                                  "culture-text"}),
        (q(f"Observation?combo-code:not={SYSTOLIC}"), {"onset", "culture", "culture-text"}),
        ("Observation?combo-value-quantity=gt140", {"bp1"}),
        ("Observation?combo-value-quantity=130", {"sys"}),
        ("Observation?combo-value-quantity:missing=false", {"bp1", "bp2", "sys"}),
        ("Observation?combo-value-quantity:missing=true", {"onset", "culture", "culture-text"}),
        (q(f"Patient?_has:Observation:subject:combo-code={DIASTOLIC}"), {"pa", "pb"}),
    ])  # fmt: skip
    # Sorted by the smallest value each has (bp1 95, bp2 110, sys 130), or descending by the
    # largest (bp1 150, sys 130, bp2 125), whichever parameter wrote it.
    for sort, expected in (("combo-value-quantity", ["bp1", "bp2", "sys"]),
                           ("-combo-value-quantity", ["bp1", "sys", "bp2"])):
        response = loaded.get("/fhir/Observation?combo-value-quantity:missing=false"
                              f"&_sort={sort}")
        assert [e["resource"]["id"] for e in response.json()["entry"]] == expected
