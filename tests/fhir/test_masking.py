"""Resident ID and phone numbers masked for roles that do not need them, over HTTP on both
databases: reads, searches (with includes) and history alike; others see them whole."""

from __future__ import annotations

from fhir_helpers import FHIR_JSON, put_entry
from starlette.testclient import TestClient

from yilian.auth.roles import Role, masks_identifiers
from yilian.auth.tokens import Keys, issue
from yilian.fhir.masking import is_resident_id, mask_phone, masked

RESIDENT_ID = "11010519491231002X"  # GB 11643's own example: a valid check character
PATIENT = {"resourceType": "Patient", "id": "zhang",
           "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": RESIDENT_ID},
                          {"system": "http://hospital.example/mrn", "value": "MRN-000123"}],
           "telecom": [{"system": "phone", "value": "+86 138-1234-5678"},
                       {"system": "email", "value": "zhang@example.com"}],
           "contact": [{"telecom": [{"system": "sms", "value": "13900001111"}]}]}


def test_what_is_masked() -> None:
    assert is_resident_id(RESIDENT_ID) and not is_resident_id("110105194912310021")
    assert not is_resident_id("MRN-000123")
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "+86 1**-****-5678"
    shown = masked(PATIENT)
    assert shown["identifier"][0]["value"] == "1101**********002X"
    assert shown["identifier"][1]["value"] == "MRN-000123"
    assert shown["telecom"][1]["value"] == "zhang@example.com"
    assert shown["contact"][0]["telecom"][0]["value"] == "139****1111"
    assert PATIENT["identifier"][0]["value"] == RESIDENT_ID  # a copy: the input is untouched


def test_roles_that_need_identifiers() -> None:
    zju = "Organization/zju1"
    assert masks_identifiers([(Role.RESEARCHER, zju)])
    assert masks_identifiers([(Role.MANAGER, zju), (Role.LAB, zju)])
    assert not masks_identifiers([(Role.RESEARCHER, zju), (Role.DOCTOR, zju)])
    assert not masks_identifiers([(Role.PATIENT, zju)])


def test_masked_over_http(client: TestClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        put_entry(PATIENT),
        put_entry({"resourceType": "Observation", "id": "o", "status": "final",
                   "code": {"text": "x"}, "subject": {"reference": "Patient/zhang"}})]}
    assert client.post("/fhir", json=bundle, headers=FHIR_JSON).status_code == 200
    keys: Keys = client.app.state.keys  # type: ignore[attr-defined]
    researcher = {"Authorization": "Bearer " + issue(keys, subject="r", scope="user/*.rs",
                                                       masked=True).token}
    read = client.get("/fhir/Patient/zhang", headers=researcher).json()
    assert read["identifier"][0]["value"] == "1101**********002X"
    searched = client.get("/fhir/Observation?_include=Observation:subject",
                          headers=researcher).json()
    included = next(e["resource"] for e in searched["entry"]
                    if e["resource"]["resourceType"] == "Patient")
    assert included["telecom"][0]["value"] == "+86 1**-****-5678"
    history = client.get("/fhir/Patient/zhang/_history", headers=researcher).text
    assert RESIDENT_ID not in history and "1101**********002X" in history
    doctor = {"Authorization": "Bearer " + issue(keys, subject="d", scope="user/*.rs").token}
    assert client.get("/fhir/Patient/zhang", headers=doctor).json()["identifier"][0][
        "value"] == RESIDENT_ID


def test_masked_callers_neither_write_masks_back_nor_search_by_numbers(
        client: TestClient) -> None:
    described = {**PATIENT, "text": {"status": "generated", "div":
                 f'<div xmlns="http://www.w3.org/1999/xhtml">{RESIDENT_ID} 13812345678</div>'}}
    assert client.put("/fhir/Patient/zhang", json=described,
                      headers=FHIR_JSON).status_code in (200, 201)
    keys: Keys = client.app.state.keys  # type: ignore[attr-defined]
    lab = {"Authorization": "Bearer " + issue(keys, subject="lab", scope="user/*.cruds",
                                                masked=True).token}
    read = client.get("/fhir/Patient/zhang", headers=lab).json()
    assert RESIDENT_ID not in read["text"]["div"] and "138****5678" in read["text"]["div"]
    written_back = client.put("/fhir/Patient/zhang", json=read, headers={**FHIR_JSON, **lab})
    assert written_back.status_code == 422
    assert client.get("/fhir/Patient/zhang").json()["identifier"][0]["value"] == RESIDENT_ID
    guess = client.get(f"/fhir/Patient?identifier={RESIDENT_ID}", headers=lab)
    assert guess.status_code == 403
