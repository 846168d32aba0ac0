"""Search over HTTP, on SQLite and PostgreSQL: each case's expected result is worked out by
hand from the R4 rules (search §3.1.1.4), not from what the server returns.

Dates without a time zone are read in the hospital's zone (+08:00), as the server does: the
local day 2023-05-02 is 2023-05-01T16:00Z to 2023-05-02T15:59:59.999999Z.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir_helpers import FHIR_JSON, issue_expressions, put_all
from search_client import check, q
from starlette.testclient import TestClient

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _quantity(value: float | int, unit: str, system: str | None = None,
              code: str | None = None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value, "unit": unit}
    if system:
        quantity["system"] = system
    if code:
        quantity["code"] = code
    return quantity


def _observation(obs_id: str, subject: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": obs_id, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/{subject}"}, **extra}


RESOURCES: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Zhang", "given": ["Wei"]}],
     "gender": "female", "birthDate": "1980-02-29",
     "meta": {"tag": [{"system": "http://example.org/tags", "code": "vip"}],
              "profile": ["http://example.org/StructureDefinition/cn-patient"],
              "source": "http://his.example.org/zju1"}},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "Zhāng", "given": ["Li"]}],
     "gender": "male", "birthDate": "1980-03"},
    {"resourceType": "Patient", "id": "p3", "name": [{"family": "Wang"}],
     "gender": "other", "birthDate": "1975"},
    {"resourceType": "Patient", "id": "p4", "name": [{"family": "Chen"}],
     "text": {"status": "generated",
              "div": '<div xmlns="http://www.w3.org/1999/xhtml">Chen</div>'}},
    {"resourceType": "Location", "id": "campus", "name": "Zhijiang campus"},
    {"resourceType": "Location", "id": "ward", "name": "Ward 7",
     "partOf": {"reference": "Location/campus"}},
    {"resourceType": "Encounter", "id": "e1", "status": "in-progress",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
     "subject": {"reference": "Patient/p1"},
     "location": [{"location": {"reference": "Location/ward"}}]},
    _observation("o1", "p1", "2345-7", effectiveDateTime="2023-05-01T23:30:00+08:00",
                 valueQuantity=_quantity(5.4, "mg", UCUM, "mg"),
                 encounter={"reference": "Encounter/e1"}),
    _observation("o2", "p1", "8480-6",
                 effectivePeriod={"start": "2023-05-01T20:00:00Z", "end": "2023-05-02T02:00:00Z"},
                 valueQuantity=_quantity(120, "mmHg", UCUM, "mm[Hg]")),
    _observation("o3", "p2", "2345-7", effectiveDateTime="2023-05-02",
                 valueQuantity=_quantity(5.5, "mg")),
    {"resourceType": "RiskAssessment", "id": "r1", "status": "final",
     "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": 0.8}]},
    {"resourceType": "RiskAssessment", "id": "r2", "status": "final",
     "subject": {"reference": "Patient/p2"}, "prediction": [{"probabilityDecimal": 0.25}]},
    {"resourceType": "List", "id": "ward-round", "status": "current", "mode": "working",
     "entry": [{"item": {"reference": "Patient/p1"}}, {"item": {"reference": "Patient/p3"}},
               {"item": {"reference": "Observation/o2"}}]},
    {"resourceType": "ValueSet", "id": "vs-a", "status": "active",
     "url": "http://example.org/fhir/ValueSet/a"},
    {"resourceType": "ValueSet", "id": "vs-ab", "status": "active",
     "url": "http://example.org/fhir/ValueSet/a/b"},
    {"resourceType": "ValueSet", "id": "vs-other", "status": "active",
     "url": "http://other.example.org/ValueSet/a"},
]


@pytest.fixture
def loaded(client: TestClient) -> TestClient:
    return put_all(client, RESOURCES)


def test_date_prefixes_on_partial_dates(loaded: TestClient) -> None:
    check(loaded, [
        ("Patient?birthdate=1980", {"p1", "p2"}),  # both within the year
        ("Patient?birthdate=1980-03", {"p2"}),
        ("Patient?birthdate=ge1980-03-01", {"p2"}),  # ends after 1 March
        ("Patient?birthdate=lt1980-03-15", {"p1", "p2", "p3"}),  # starts before 15 March
        ("Patient?birthdate=le1980-02-29", {"p1", "p3"}),
        ("Patient?birthdate=sa1979", {"p1", "p2"}),
        ("Patient?birthdate=eb1980", {"p3"}),
        ("Patient?birthdate=ne1980", {"p3"}),  # p4 has no birth date: no value to differ
        ("Patient?birthdate=1980-02-29T10:00:00Z", set()),  # a day is not within a second
        ("Patient?birthdate=1975,1980-03", {"p2", "p3"}),  # OR
        ("Patient?birthdate=ge1975&birthdate=lt1980", {"p3"}),  # AND
        ("Patient?birthdate:missing=true", {"p4"}),
        ("Patient?birthdate:missing=false", {"p1", "p2", "p3"}),
    ])


def test_date_ranges_with_time_zones_and_periods(loaded: TestClient) -> None:
    check(loaded, [
        # o1 is 15:30Z on 1 May; o2 spans 20:00Z 1 May to 02:00Z 2 May (04:00-10:00 local
        # on 2 May); o3 is the local day 2 May.
        ("Observation?date=2023-05-01", {"o1"}),
        ("Observation?date=2023-05-02", {"o2", "o3"}),
        ("Observation?date=gt2023-05-01", {"o2", "o3"}),
        (q("Observation?date=sa2023-05-01T18:00:00Z"), {"o2"}),
        (q("Observation?date=2023-05-01T23:30:00+08:00"), {"o1"}),
        (q("Observation?date=ge2023-05-01T20:00:00Z&date=le2023-05-02T02:00:00Z"),
         {"o2", "o3"}),
        (q("Observation?date=eb2023-05-01T16:00:00Z"), {"o1"}),
    ])


def test_quantity_prefixes_precision_and_units(loaded: TestClient) -> None:
    check(loaded, [
        ("Observation?value-quantity=5.4", {"o1"}),  # [5.35, 5.45)
        ("Observation?value-quantity=5.40", {"o1"}),  # [5.395, 5.405)
        ("Observation?value-quantity=5", {"o1"}),  # [4.5, 5.5): 5.5 is out
        ("Observation?value-quantity=gt5.4", {"o2", "o3"}),
        ("Observation?value-quantity=ne5.4", {"o2", "o3"}),
        ("Observation?value-quantity=1e2", {"o2"}),  # [50, 150)
        ("Observation?value-quantity=ap5", {"o1", "o3"}),  # 4.5 to 5.5
        (q("Observation?value-quantity=lt100||mg"), {"o1", "o3"}),  # o3 has only unit "mg"
        (q(f"Observation?value-quantity=5.4|{UCUM}|mg"), {"o1"}),
        (q(f"Observation?value-quantity=5.5|{UCUM}|mg"), set()),  # o3 has no system
        (q(f"Observation?value-quantity=120|{UCUM}|mm[Hg]"), {"o2"}),
        ("Observation?value-quantity=1e999999", set()),  # beyond any stored value
    ])


def test_number_prefixes(loaded: TestClient) -> None:
    check(loaded, [
        ("RiskAssessment?probability=0.8", {"r1"}),
        ("RiskAssessment?probability=0.3", {"r2"}),  # [0.25, 0.35): 0.25 is in
        ("RiskAssessment?probability=0.30", set()),  # [0.295, 0.305)
        ("RiskAssessment?probability=0.25", {"r2"}),
        ("RiskAssessment?probability=gt0.25", {"r1"}),
        ("RiskAssessment?probability=ge0.25", {"r1", "r2"}),
        ("RiskAssessment?probability=lt0.8", {"r2"}),
        ("RiskAssessment?probability=le0.8", {"r1", "r2"}),
    ])


def test_chained_parameters_to_several_levels(loaded: TestClient) -> None:
    check(loaded, [
        ("Observation?subject:Patient.name=zhang", {"o1", "o2", "o3"}),  # accents ignored
        ("Observation?subject.birthdate=1980-03", {"o3"}),
        ("Observation?patient.gender=female", {"o1", "o2"}),
        ("Observation?subject:Patient.gender=other", set()),
        ("Encounter?location.partof=Location/campus", {"e1"}),
        ("Observation?encounter.location.partof=campus", {"o1"}),
        ("Observation?encounter.location.name=ward", {"o1"}),
        ("Observation?subject.name=zhang&code=8480-6", {"o2"}),
    ])


def test_reverse_chaining_with_has(loaded: TestClient) -> None:
    check(loaded, [
        (q(f"Patient?_has:Observation:patient:value-quantity=120|{UCUM}|mm[Hg]"), {"p1"}),
        ("Patient?_has:Observation:subject:date=2023-05-02", {"p1", "p2"}),
        ("Patient?_has:Observation:subject:code=2345-7&gender=male", {"p2"}),
        ("Location?_has:Encounter:location:_has:Observation:encounter:code=2345-7",
         {"ward"}),
        ("Patient?_has:RiskAssessment:subject:probability=gt0.5", {"p1"}),
    ])


def test_uri_above_finds_a_parent_with_or_without_its_trailing_slash(
        client: TestClient) -> None:
    """search §3.1.1.4.9: :above finds the value sets whose url is a parent of the given."""
    put_all(client, [
        {"resourceType": "ValueSet", "id": vs_id, "status": "active", "url": url}
        for vs_id, url in (("root-slash", "http://acme.org/fhir/"), ("root", "http://acme.org/fhir"),
                           ("vs", "http://acme.org/fhir/ValueSet/123"),
                           ("other", "http://acme.org/fhirx"))])
    check(client, [
        ("ValueSet?url:above=http://acme.org/fhir/ValueSet/123/_history/5",
         {"root", "root-slash", "vs"}),
        ("ValueSet?url:below=http://acme.org/fhir/", {"root-slash", "vs"}),
    ])


def test_missing_composite_uri_and_last_updated(loaded: TestClient) -> None:
    before = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    check(loaded, [
        ("Patient?gender:missing=true", {"p4"}),
        ("Observation?encounter:missing=false", {"o1"}),
        (q(f"Observation?code-value-quantity={LOINC}|8480-6$120"), {"o2"}),
        (q(f"Observation?code-value-quantity=8480-6$120|{UCUM}|mm[Hg]"), {"o2"}),
        (q(f"Observation?code-value-quantity={LOINC}|8480-6$121"), set()),
        (q(f"Observation?code-value-quantity={LOINC}|2345-7$5.40"), {"o1"}),
        ("ValueSet?url:below=http://example.org/fhir", {"vs-a", "vs-ab"}),
        ("ValueSet?url:above=http://example.org/fhir/ValueSet/a/b/c", {"vs-a", "vs-ab"}),
        ("ValueSet?url:above=http://example.org/fhir/ValueSet/a", {"vs-a"}),
        ("ValueSet?url=http://example.org/fhir/ValueSet/a", {"vs-a"}),
        (f"Patient?_lastUpdated=gt{before}", {"p1", "p2", "p3", "p4"}),
        (q("Patient?_tag=http://example.org/tags|vip"), {"p1"}),
        ("Patient?_tag:missing=true", {"p2", "p3", "p4"}),
        ("Patient?_profile=http://example.org/StructureDefinition/cn-patient", {"p1"}),
        ("Patient?_source=http://his.example.org/zju1", {"p1"}),
        ("Patient?_list=ward-round", {"p1", "p3"}),
        ("Observation?_list=ward-round", {"o2"}),
        ("Patient?_list=ward-round&gender=other", {"p3"}),
        ("Patient?_list=no-such-list", set()),
        (f"Patient?_lastUpdated=lt{before}", set()),
    ])


@pytest.mark.parametrize(("query", "where"), [
    ("Patient?birthdate=1980-13", "birthdate"),
    ("Patient?birthdate=gt", "birthdate"),
    ("Observation?value-quantity=abc", "value-quantity"),
    ("Observation?value-quantity=5|onlysystem", "value-quantity"),
    ("Patient?gender:missing=maybe", "gender:missing"),
    ("Patient?_lastUpdated=yesterday", "_lastUpdated"),
    ("Patient?_has:Observation:patient", "_has:Observation:patient"),
    ("Observation?code-value-quantity=8480-6", "code-value-quantity"),
    ("Encounter?part-of.part-of.part-of.part-of.part-of.status=x",
     "part-of.part-of.part-of.part-of.part-of.status"),
    # Exponents beyond ±999999: no quantity can be meant (search.values._EXPONENT_LIMIT).
    ("RiskAssessment?probability=1e99999999999", "probability"),
    ("RiskAssessment?probability=-1e99999999999", "probability"),
    ("RiskAssessment?probability=ap1e99999999999", "probability"),
    ("RiskAssessment?probability=gt1e-99999999999", "probability"),
    ("Observation?value-quantity=1e99999999999", "value-quantity"),
    ("Observation?value-quantity=ap-1e99999999999", "value-quantity"),
    (q(f"Observation?value-quantity=lt1e99999999999|{UCUM}|mg"), "value-quantity"),
    (q("Observation?code-value-quantity=8480-6$1e99999999999"), "code-value-quantity"),
    (q("Observation?code-value-quantity=8480-6$ap-1e99999999999"), "code-value-quantity"),
])
def test_malformed_values_are_400_naming_the_parameter(
    loaded: TestClient, query: str, where: str
) -> None:
    response = loaded.get(f"/fhir/{query}")
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert where in issue_expressions(outcome)


def test_unknown_chains_are_ignored_leniently_and_refused_strictly(loaded: TestClient) -> None:
    lenient = loaded.get("/fhir/Observation?subject.nonexistent=x&code=8480-6")
    assert lenient.status_code == 200
    entries = lenient.json()["entry"]
    assert {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"} == {"o2"}
    outcome = next(e["resource"] for e in entries if e["search"]["mode"] == "outcome")
    assert "subject.nonexistent" in issue_expressions(outcome)
    self_link = next(link["url"] for link in lenient.json()["link"] if link["relation"] == "self")
    assert "nonexistent" not in self_link and "code=8480-6" in self_link
    strict = loaded.get("/fhir/Observation?subject.nonexistent=x",
                        headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert "subject.nonexistent" in issue_expressions(strict.json())


def ordered(client: TestClient, query: str) -> list[str]:
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, f"{query}: {response.text}"
    return [e["resource"]["id"] for e in response.json().get("entry", [])
            if e["search"]["mode"] == "match"]


def test_sort_on_several_keys_with_missing_values_last(loaded: TestClient) -> None:
    cases = [
        ("Patient?_sort=birthdate", ["p3", "p1", "p2", "p4"]),
        ("Patient?_sort=-birthdate", ["p2", "p1", "p3", "p4"]),  # by the end of each range
        ("Patient?_sort=family", ["p4", "p3", "p1", "p2"]),  # Zhang = Zhāng: then by pk
        ("Patient?_sort=-family,-birthdate", ["p2", "p1", "p3", "p4"]),
        ("Patient?_sort=gender,-birthdate", ["p1", "p2", "p3", "p4"]),
        ("Patient?_sort=-_id", ["p4", "p3", "p2", "p1"]),
        ("Observation?_sort=-date", ["o3", "o2", "o1"]),
        ("Observation?_sort=value-quantity", ["o1", "o3", "o2"]),
        ("Observation?_sort=subject,-date", ["o2", "o1", "o3"]),
    ]
    wrong = [(q, e, f) for q, e in cases if (f := ordered(loaded, q)) != e]
    assert not wrong, wrong


def _pages(client: TestClient, url: str, between: Any = None) -> list[list[str]]:
    pages = []
    while url:
        bundle = client.get(url).json()
        pages.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        if between is not None and len(pages) == 1:
            between()
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), "")
    return pages


def test_cursor_pages_do_not_shift_when_data_changes(loaded: TestClient) -> None:
    assert _pages(loaded, "/fhir/Patient?_sort=birthdate&_count=1") == [
        ["p3"], ["p1"], ["p2"], ["p4"]]

    def write_between_pages() -> None:
        for new_id, born in (("p5", "1978"), ("p6", "1985")):  # before and after the cursor
            response = loaded.put(f"/fhir/Patient/{new_id}", json={
                "resourceType": "Patient", "id": new_id, "birthDate": born})
            assert response.status_code == 201
        assert loaded.delete("/fhir/Patient/p2").status_code in (200, 204)

    pages = _pages(loaded, "/fhir/Patient?_sort=birthdate&_count=2", write_between_pages)
    assert pages == [["p3", "p1"], ["p6", "p4"]]  # p5 sorts before the cursor; p2 is gone
    unsorted = _pages(loaded, "/fhir/Patient?_count=3")
    assert [i for page in unsorted for i in page] == ["p1", "p3", "p4", "p5", "p6"]


@pytest.mark.parametrize("query", [
    "Patient?_cursor=not-a-cursor",
    "Patient?_sort=birthdate&_cursor=eyJ2IjpbXSwicCI6MX0",  # a cursor of an unsorted search
    "Patient?_sort=nonexistent",
    "Observation?_sort=code-value-quantity",
    "Patient?_total=maybe",
    "Patient?_summary=maybe",
])
def test_bad_result_parameters_are_400(loaded: TestClient, query: str) -> None:
    response = loaded.get(f"/fhir/{query}")
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def _entries(client: TestClient, query: str) -> dict[str, set[str]]:
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, f"{query}: {response.text}"
    modes: dict[str, set[str]] = {}
    for entry in response.json().get("entry", []):
        modes.setdefault(entry["search"]["mode"], set()).add(entry["resource"].get("id", ""))
    return modes


def test_include_revinclude_and_iterate(loaded: TestClient) -> None:
    cases = [
        ("Observation?code=8480-6&_include=Observation:subject",
         {"match": {"o2"}, "include": {"p1"}}),
        ("Observation?_include=Observation:subject:Patient&_include=Observation:encounter",
         {"match": {"o1", "o2", "o3"}, "include": {"p1", "p2", "e1"}}),
        ("Encounter?_include=Encounter:location&_include:iterate=Location:partof",
         {"match": {"e1"}, "include": {"ward", "campus"}}),
        ("Encounter?_include=Encounter:location&_include=Location:partof",
         {"match": {"e1"}, "include": {"ward"}}),  # without :iterate, one round only
        ("Patient?_id=p1&_revinclude=Observation:subject",
         {"match": {"p1"}, "include": {"o1", "o2"}}),
        ("Patient?_id=p2&_revinclude=Observation:subject&_revinclude=RiskAssessment:subject",
         {"match": {"p2"}, "include": {"o3", "r2"}}),
        ("Observation?_id=o1&_include=*", {"match": {"o1"}, "include": {"p1", "e1"}}),
        ("Location?_id=campus&_revinclude:iterate=Location:partof"
         "&_revinclude:iterate=Encounter:location",
         {"match": {"campus"}, "include": {"ward", "e1"}}),
    ]
    wrong = [(q, e, f) for q, e in cases if (f := _entries(loaded, q)) != e]
    assert not wrong, wrong


def test_an_unknown_include_is_ignored_leniently_and_refused_strictly(
    loaded: TestClient,
) -> None:
    lenient = loaded.get("/fhir/Observation?code=8480-6&_include=Observation:nonexistent")
    assert lenient.status_code == 200
    outcome = next(e["resource"] for e in lenient.json()["entry"]
                   if e["search"]["mode"] == "outcome")
    assert "_include" in issue_expressions(outcome)
    strict = loaded.get("/fhir/Observation?_include=Observation:nonexistent",
                        headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_total_and_summary_count(loaded: TestClient) -> None:
    plain = loaded.get("/fhir/Patient?_count=1").json()
    assert "total" not in plain  # counting is not free: only when asked
    accurate = loaded.get("/fhir/Patient?_count=1&_total=accurate").json()
    assert accurate["total"] == 4 and len(accurate["entry"]) == 1
    counted = loaded.get("/fhir/Patient?gender=male,female&_summary=count").json()
    assert counted["total"] == 2 and "entry" not in counted


def _one(client: TestClient, query: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["entry"][0]["resource"]
    return found


def test_summary_and_elements_return_subsetted_resources(loaded: TestClient) -> None:
    subsetted = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                 "code": "SUBSETTED"}
    data = _one(loaded, "Patient?_id=p4&_summary=data")
    assert "text" not in data and data["name"] == [{"family": "Chen"}]
    assert subsetted in data["meta"]["tag"]
    text = _one(loaded, "Patient?_id=p4&_summary=text")
    assert "text" in text and "name" not in text
    summary = _one(loaded, "Patient?_id=p4&_summary=true")
    assert "name" in summary and "text" not in summary
    elements = _one(loaded, "Patient?_id=p4&_elements=name")
    assert set(elements) == {"resourceType", "id", "meta", "name"}
    assert subsetted in elements["meta"]["tag"]
    observation = _one(loaded, "Observation?_id=o2&_elements=value[x]")
    assert set(observation) == {"resourceType", "id", "meta", "status", "code",
                                "valueQuantity"}  # status and code are mandatory
    whole = _one(loaded, "Patient?_id=p4&_summary=false")
    assert "text" in whole and "tag" not in whole["meta"]


def test_compartment_search(loaded: TestClient) -> None:
    check(loaded, [
        ("Patient/p1/Observation", {"o1", "o2"}),  # subject or performer is the patient
        ("Patient/p1/Observation?code=8480-6", {"o2"}),
        ("Patient/p2/Observation", {"o3"}),
        ("Patient/p1/Encounter", {"e1"}),
        ("Patient/p1/RiskAssessment", {"r1"}),
        ("Patient/nobody/Observation", set()),
    ])
    posted = loaded.post("/fhir/Patient/p1/Observation/_search", data={"code": "2345-7"})
    assert posted.status_code == 200
    assert {e["resource"]["id"] for e in posted.json()["entry"]} == {"o1"}
    self_link = next(link["url"] for link in posted.json()["link"]
                     if link["relation"] == "self")
    assert "/fhir/Patient/p1/Observation?code=2345-7" in self_link
    outside = loaded.get("/fhir/Patient/p1/ValueSet")  # not in a patient's compartment
    assert outside.status_code == 400


def test_search_across_types(loaded: TestClient) -> None:
    check(loaded, [
        ("?_type=Patient,Observation&_id=p1,o3", {"p1", "o3"}),
        ("?_id=ward,vs-a", {"ward", "vs-a"}),
        ("?_type=Patient,RiskAssessment&_lastUpdated=gt2000", {"p1", "p2", "p3", "p4",
                                                               "r1", "r2"}),
    ])
    sorted_ids = ordered(loaded, "?_type=Patient,Location&_sort=-_id")
    assert sorted_ids == ["ward", "p4", "p3", "p2", "p1", "campus"]
    # A parameter that one of the types lacks applies to none: ignored, and said so.
    lenient = loaded.get("/fhir?_type=Patient,Location&gender=female")
    assert lenient.status_code == 200
    modes = [e["search"]["mode"] for e in lenient.json()["entry"]]
    assert modes.count("match") == 6 and modes.count("outcome") == 1
    strict = loaded.get("/fhir?_type=Patient,Location&gender=female",
                        headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert loaded.get("/fhir?_type=Nonsense").status_code == 400
    assert loaded.get("/fhir?_type=Patient&_sort=birthdate").status_code == 400


def test_numbers_beyond_ten_decimal_places_still_match(client: TestClient) -> None:
    """The index keeps ten decimal places: a search range narrower than that is widened to
    them rather than emptied."""
    body = ('{"resourceType":"Observation","id":"fine","status":"final","code":{"text":"x"},'
            '"valueQuantity":{"value":0.12345678901,"unit":"mg"}}')
    assert client.put("/fhir/Observation/fine", content=body,
                      headers=FHIR_JSON).status_code == 201
    check(client, [
        ("Observation?value-quantity=0.1234567890", {"fine"}),
        ("Observation?value-quantity=0.12345678901", {"fine"}),
        ("Observation?value-quantity=0.12", {"fine"}),
        ("Observation?value-quantity=0.13", set()),
    ])


# --- numbers beyond what decimal arithmetic holds ----------------------------------------------


def test_numbers_with_absurd_exponents_are_stored_clamped_to_the_columns(
    client: TestClient
) -> None:
    """A resource may carry any decimal: the index keeps what its columns hold (±(10^28 - 1),
    ten decimal places), and the write succeeds."""
    for res_id, number in (("huge", "1e99999999999"), ("negative", "-1e99999999999"),
                           ("tiny", "1e-99999999999")):
        body = ('{"resourceType":"Observation","id":"' + res_id + '","status":"final",'
                '"code":{"text":"x"},"valueQuantity":{"value":' + number + ',"unit":"mg"}}')
        response = client.put(f"/fhir/Observation/{res_id}", content=body, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        body = ('{"resourceType":"RiskAssessment","id":"' + res_id + '","status":"final",'
                '"subject":{"reference":"Patient/p"},'
                '"prediction":[{"probabilityDecimal":' + number + '}]}')
        response = client.put(f"/fhir/RiskAssessment/{res_id}", content=body, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
    check(client, [
        ("Observation?value-quantity=gt1e27", {"huge"}),
        ("Observation?value-quantity=lt-1e27", {"negative"}),
        ("Observation?value-quantity=0", {"tiny"}),
        ("RiskAssessment?probability=gt1e27", {"huge"}),
        ("RiskAssessment?probability=lt-1e27", {"negative"}),
        ("RiskAssessment?probability=0", {"tiny"}),
    ])


# --- ap dates at the ends of the calendar ----------------------------------------------------


def test_ap_dates_at_the_ends_of_the_calendar_clamp_the_widened_range(client: TestClient) -> None:
    """ap widens a date by a tenth of its distance from now: near year 1 or 9999 that passes
    the calendar's end, where the range stops."""
    put_all(client, [
        {"resourceType": "Patient", "id": "first", "birthDate": "0001-01-01"},
        {"resourceType": "Patient", "id": "last", "birthDate": "9999-12-31"},
        _observation("early", "first", "2345-7", effectiveDateTime="0001-01-01"),
        _observation("late", "last", "2345-7", effectiveDateTime="9999-12-31"),
    ])
    check(client, [
        ("Observation?date=ap0001-01-01", {"early"}),
        ("Observation?date=ap9999-12-31", {"late"}),
        ("Patient?birthdate=ap0001", {"first"}),
        ("Patient?birthdate=ap9999", {"last"}),
        ("Patient?_lastUpdated=ap0001", set()),
        ("Patient?_lastUpdated=ap9999", set()),
    ])


V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _typed(patient_id: str, value: str, *types: tuple[str | None, str],
           system: str | None = None) -> dict[str, Any]:
    coding = [{"code": code, **({"system": of} if of else {})} for of, code in types]
    identifier: dict[str, Any] = {"value": value, **({"system": system} if system else {})}
    if coding:
        identifier["type"] = {"coding": coding}
    return {"resourceType": "Patient", "id": patient_id, "identifier": [identifier]}


def test_identifier_of_type_matches_the_type_and_the_value(client: TestClient) -> None:
    """R4 search §3.1.1.4.6 `:of-type`: type system|type code|value, of one identifier (a
    type coding without a system is matched by an empty type system)."""
    put_all(client, [
        _typed("mr-a", "12345", (V2_0203, "MR"), system="urn:hospital-a"),
        _typed("mr-b", "12345", (V2_0203, "MR")),
        _typed("ss", "12345", (V2_0203, "SS")),
        _typed("two-types", "999", (V2_0203, "MR"), ("urn:local", "MRN")),
        _typed("untyped", "12345"),
        _typed("no-type-system", "12345", (None, "MR")),
    ])
    check(client, [
        (q(f"Patient?identifier:of-type={V2_0203}|MR|12345"), {"mr-a", "mr-b"}),
        (q(f"Patient?identifier:of-type={V2_0203}|SS|12345"), {"ss"}),
        (q(f"Patient?identifier:of-type={V2_0203}|MR|12345,{V2_0203}|SS|12345"),
         {"mr-a", "mr-b", "ss"}),
        (q(f"Patient?identifier:of-type={V2_0203}|MR|999"), {"two-types"}),
        (q("Patient?identifier:of-type=urn:local|MRN|999"), {"two-types"}),
        (q("Patient?identifier:of-type=|MR|12345"), {"no-type-system"}),
        (q(f"Patient?identifier:of-type={V2_0203}|MR|1234"), set()),
        (q(f"Patient?identifier:of-type={V2_0203}|SS|999"), set()),
        (q(f"Patient?identifier:of-type={V2_0203}|MR|12345&identifier=urn:hospital-a|"),
         {"mr-a"}),
    ])


# --- escaped separators (R4 search §3.1.1.3.x "Escaping search parameters") -----------------


def test_an_escaped_bar_is_part_of_a_token_quantity_or_composite_value(
    client: TestClient
) -> None:
    put_all(client, [
        {"resourceType": "Patient", "id": "literal", "identifier": [{"value": "x|y"}]},
        {"resourceType": "Patient", "id": "sys-x",
         "identifier": [{"system": "x", "value": "y"}]},
        {"resourceType": "Patient", "id": "comma", "identifier": [{"value": "a,b"}]},
        {"resourceType": "Patient", "id": "backslash", "identifier": [{"value": "a\\b"}]},
        {"resourceType": "Patient", "id": "typed", "identifier": [{
            "type": {"coding": [{"system": "urn:t", "code": "MR|2"}]},
            "system": "urn:s", "value": "7|8"}]},
        {**_observation("barred", "literal", "2345-7",
                        valueQuantity=_quantity(5, "mg", "urn:s|t", "mg")),
         "code": {"coding": [{"code": "a|b"}]}},
        {**_observation("plain", "literal", "2345-7",
                        valueQuantity=_quantity(5, "mg", "urn:s", "t|mg")),
         "code": {"coding": [{"system": "a", "code": "b"}]}},
    ])
    check(client, [
        (q("Patient?identifier=x\\|y"), {"literal"}),
        (q("Patient?identifier=|x\\|y"), {"literal"}),
        (q("Patient?identifier=x|y"), {"sys-x"}),
        (q("Patient?identifier=x\\|y,x|y"), {"literal", "sys-x"}),
        (q("Patient?identifier:not=x\\|y&identifier:missing=false"),
         {"sys-x", "comma", "backslash", "typed"}),
        (q("Patient?identifier=a\\,b"), {"comma"}),
        (q("Patient?identifier=a\\\\b"), {"backslash"}),
        (q("Patient?identifier=urn:s|7\\|8"), {"typed"}),
        (q("Patient?identifier:of-type=urn:t|MR\\|2|7\\|8"), {"typed"}),
        (q("Observation?value-quantity=5|urn:s\\|t|mg"), {"barred"}),
        (q("Observation?value-quantity=5|urn:s|t|mg"), {"plain"}),
        (q("Observation?code=a\\|b"), {"barred"}),
        (q("Observation?code-value-quantity=a\\|b$5"), {"barred"}),
        (q("Observation?code-value-quantity=a|b$5"), {"plain"}),
    ])
