"""$admit, $transfer, $discharge and the bed-state operations over HTTP, on SQLite and
PostgreSQL, against the hand-written network of tests/inpatient_network.py."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fhir_helpers import FHIR_JSON, issue_expressions, put_all
from inpatient_network import (
    CARDIOLOGY,
    HEART_FAILURE,
    OBSTETRICS,
    PEDIATRICS,
    admit_parameters,
    network,
    parameters,
    ref,
)
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from yilian.auth.tokens import issue
from yilian.domains.inpatient.tables import inpatient_bed_stay
from yilian.fhir.operations import publish
from yilian.kit.clock import to_instant

JsonObject = dict[str, Any]


@pytest.fixture
def ward(client: TestClient) -> TestClient:
    return put_all(client, network())


def admit(client: TestClient, **kwargs: Any) -> httpx.Response:
    return client.post("/fhir/Encounter/$admit", json=admit_parameters(**kwargs),
                       headers=FHIR_JSON)


def returned(response: httpx.Response) -> JsonObject:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Parameters"
    [item] = body["parameter"]
    assert item["name"] == "return"
    resource: JsonObject = item["resource"]
    return resource


def bed_status(client: TestClient, bed: str) -> str:
    location = client.get(f"/fhir/Location/{bed}").json()
    return str(location["operationalStatus"]["code"])


def active_places(encounter: JsonObject) -> list[str]:
    return [e["location"]["reference"] for e in encounter["location"]
            if e["status"] == "active"]


def refused(response: httpx.Response, status: int, code: str) -> JsonObject:
    assert response.status_code == status, response.text
    outcome: JsonObject = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert f"[{code}]" in outcome["issue"][0]["diagnostics"], outcome
    return outcome


def count_of(client: TestClient, res_type: str) -> int:
    bundle = client.get(f"/fhir/{res_type}", params={"_summary": "count"}).json()
    return int(bundle["total"])


# --- admission -------------------------------------------------------------------------------


def test_an_admission_makes_an_inpatient_stay_and_occupies_the_bed(ward: TestClient) -> None:
    encounter = returned(admit(ward, expectedDischarge={"valueDate": "2030-01-10"}))

    assert encounter["status"] == "in-progress"
    assert encounter["class"]["code"] == "IMP"
    assert encounter["subject"] == {"reference": "Patient/man", "display": "王建国"}
    assert encounter["serviceProvider"] == {"reference": "Organization/hosp"}
    assert active_places(encounter) == ["Location/w-card", "Location/b1"]
    assert encounter["hospitalization"]["admitSource"]["coding"][0]["code"] == "outp"
    [number] = encounter["identifier"]
    assert number["value"].startswith("ZY") and number["value"].endswith("000001")
    [diagnosis] = encounter["diagnosis"]
    assert diagnosis["use"]["coding"][0]["code"] == "AD"
    condition = ward.get(f"/fhir/{diagnosis['condition']['reference']}").json()
    assert condition["code"]["coding"][0]["code"] == "I21.9"
    assert condition["subject"] == {"reference": "Patient/man"}
    assert condition["encounter"] == {"reference": f"Encounter/{encounter['id']}"}
    assert bed_status(ward, "b1") == "O"
    # What the operation answered is what is stored.
    assert ward.get(f"/fhir/Encounter/{encounter['id']}").json() == encounter
    found = ward.get("/fhir/Encounter", params={"location": "Location/b1",
                                                "status": "in-progress"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [encounter["id"]]
    second = returned(admit(ward, patient="man2", bed="b2"))
    assert second["identifier"][0]["value"].endswith("000002")


def test_one_patient_per_bed(ward: TestClient) -> None:
    returned(admit(ward))
    outcome = refused(admit(ward, patient="man2"), 409, "YL-6119")
    assert issue_expressions(outcome) == ["Parameters.parameter.where(name='bed')"]
    assert count_of(ward, "Encounter") == 1


def test_a_patient_has_one_stay_at_a_time(ward: TestClient) -> None:
    first = returned(admit(ward))
    outcome = refused(admit(ward, bed="b2"), 409, "YL-6118")
    assert first["id"] in outcome["issue"][0]["diagnostics"]
    assert bed_status(ward, "b2") == "U"


def test_closed_beds_take_no_one_until_reopened(ward: TestClient) -> None:
    closed = returned(ward.post("/fhir/Location/b1/$close", headers=FHIR_JSON,
                                json=parameters(reason={"valueString": "床架维修"})))
    assert closed["operationalStatus"]["code"] == "C"
    assert closed["description"] == "床架维修"
    refused(admit(ward), 409, "YL-6119")
    refused(ward.post("/fhir/Location/b1/$clean", json=parameters(), headers=FHIR_JSON),
            409, "YL-6142")
    reopened = returned(ward.post("/fhir/Location/b1/$reopen", json=parameters(),
                                  headers=FHIR_JSON))
    assert reopened["operationalStatus"]["code"] == "U"
    assert "description" not in reopened
    returned(admit(ward))
    refused(ward.post("/fhir/Location/b1/$close", json=parameters(), headers=FHIR_JSON),
            409, "YL-6119")


def test_a_reserved_bed_takes_only_its_patient_until_it_lapses(ward: TestClient) -> None:
    until = to_instant(datetime.now(UTC) + timedelta(hours=6))
    reserved = returned(ward.post("/fhir/Location/b1/$reserve", headers=FHIR_JSON, json=parameters(
        expires={"valueDateTime": until}, patient={"valueReference": ref("Patient/man2")},
        reason={"valueString": "社区转诊"})))
    assert reserved["operationalStatus"]["code"] == "reserved"
    refused(admit(ward, patient="man"), 409, "YL-6117")
    refused(ward.post("/fhir/Location/b1/$close", json=parameters(), headers=FHIR_JSON),
            409, "YL-6141")
    encounter = returned(admit(ward, patient="man2", source="referral"))
    assert encounter["hospitalization"]["admitSource"]["coding"][0]["code"] == "gp"
    occupied = ward.get("/fhir/Location/b1").json()
    assert occupied["operationalStatus"]["code"] == "O"
    assert "extension" not in occupied  # the reservation is used up

    # A lapsed reservation (written by an integration engine) holds the bed no longer.
    lapsed = ward.get("/fhir/Location/b2").json()
    lapsed["operationalStatus"] = reserved["operationalStatus"]
    lapsed["extension"] = [{**reserved["extension"][0], "extension": [
        {"url": "expires", "valueDateTime": "2020-01-01T00:00:00Z"},
        {"url": "patient", "valueReference": ref("Patient/woman")}]}]
    assert ward.put("/fhir/Location/b2", json=lapsed, headers=FHIR_JSON).status_code == 200
    returned(admit(ward, patient="man", bed="b2"))


def test_a_reservation_must_expire_in_the_future(ward: TestClient) -> None:
    outcome = refused(ward.post("/fhir/Location/b1/$reserve", headers=FHIR_JSON, json=parameters(
        expires={"valueDateTime": "2020-01-01T08:00:00+08:00"})), 422, "YL-6140")
    assert issue_expressions(outcome) == ["Parameters.parameter.where(name='expires')"]
    refused(ward.post("/fhir/Location/b1/$reserve", headers=FHIR_JSON, json=parameters(
        expires={"valueDateTime": "2030-01-01"})), 400, "YL-6158")


@pytest.mark.parametrize(("patient", "bed", "department", "code"), [
    ("man", "b-obs", OBSTETRICS, "YL-6114"),  # a women's ward
    ("man", "b-ped", PEDIATRICS, "YL-6116"),  # a children's ward
    ("man", "b1", OBSTETRICS, "YL-6113"),  # cardiology's ward, not obstetrics'
    ("man", "b-other", CARDIOLOGY, "YL-6111"),  # another hospital's bed
    ("man", "r-not-bed", CARDIOLOGY, "YL-6104"),  # a room, not a bed
    ("nobody", "b1", CARDIOLOGY, "YL-6102"),
    ("man", "nowhere", CARDIOLOGY, "YL-6103"),
])
def test_the_ward_decides_whom_it_takes(ward: TestClient, patient: str, bed: str,
                                        department: str, code: str) -> None:
    refused(admit(ward, patient=patient, bed=bed, department=department), 422, code)
    assert count_of(ward, "Encounter") == 0
    assert count_of(ward, "Condition") == 0  # nothing half-written


def test_wards_take_the_patients_they_are_for(ward: TestClient) -> None:
    returned(admit(ward, patient="woman", bed="b-obs", department=OBSTETRICS))
    returned(admit(ward, patient="child", bed="b-ped", department=PEDIATRICS))


@pytest.mark.parametrize(("body", "status", "code", "where"), [
    ({"resourceType": "Parameters", "parameter": [{"name": "bogus", "valueString": "x"}]},
     400, "YL-6152", "bogus"),
    (admit_parameters(source="helicopter"), 422, "YL-6150", "admitSource"),
    (admit_parameters(diagnosis={"system": "http://snomed.info/sct", "code": "22298006"}),
     422, "YL-6160", "diagnosis"),
    (admit_parameters(expectedDischarge={"valueDate": "next week"}), 400, "YL-6161",
     "expectedDischarge"),
])
def test_bad_input_is_a_clear_outcome(ward: TestClient, body: JsonObject, status: int,
                                      code: str, where: str) -> None:
    response = ward.post("/fhir/Encounter/$admit", json=body, headers=FHIR_JSON)
    outcome = refused(response, status, code)
    assert any(f"name='{where}'" in e for e in issue_expressions(outcome)), outcome


def test_missing_and_mistyped_parameters(ward: TestClient) -> None:
    body = admit_parameters()
    body["parameter"] = [p for p in body["parameter"] if p["name"] != "patient"]
    outcome = refused(ward.post("/fhir/Encounter/$admit", json=body, headers=FHIR_JSON),
                      400, "YL-6153")
    assert issue_expressions(outcome) == ["Parameters.parameter.where(name='patient')"]
    body = admit_parameters()
    body["parameter"][0] = {"name": "patient", "valueReference": ref("Practitioner/doc-1")}
    refused(ward.post("/fhir/Encounter/$admit", json=body, headers=FHIR_JSON), 400, "YL-6155")
    get = ward.get("/fhir/Encounter/$admit")
    assert get.status_code == 405


# --- transfer and discharge ------------------------------------------------------------------


def test_a_transfer_across_campuses_keeps_every_bed_with_its_period(ward: TestClient) -> None:
    admitted = returned(admit(ward))
    url = f"/fhir/Encounter/{admitted['id']}/$transfer"
    moved = returned(ward.post(url, headers=FHIR_JSON, json=parameters(
        bed={"valueReference": ref("Location/b-c2")}, reason={"valueString": "滨江院区床位"})))
    assert active_places(moved) == ["Location/w-card2", "Location/b-c2"]
    earlier = [e for e in moved["location"] if e["status"] == "completed"]
    assert [e["location"]["reference"] for e in earlier] == ["Location/w-card", "Location/b1"]
    assert all(e["period"]["end"] == moved["location"][2]["period"]["start"] for e in earlier)
    assert moved["location"][3]["extension"][0]["valueString"] == "滨江院区床位"
    assert bed_status(ward, "b1") == "H" and bed_status(ward, "b-c2") == "O"

    refused(ward.post(url, headers=FHIR_JSON, json=parameters(
        bed={"valueReference": ref("Location/b-c2")})), 422, "YL-6120")
    refused(ward.post(url, headers=FHIR_JSON, json=parameters(
        bed={"valueReference": ref("Location/b-other")})), 422, "YL-6121")
    returned(admit(ward, patient="man2", bed="b2"))
    refused(ward.post(url, headers=FHIR_JSON, json=parameters(
        bed={"valueReference": ref("Location/b2")})), 409, "YL-6119")
    refused(ward.post(url, headers=FHIR_JSON, json=parameters(
        bed={"valueReference": ref("Location/b1")})), 409, "YL-6119")  # being cleaned


def test_a_discharge_finishes_the_stay_and_sends_the_bed_to_cleaning(
        ward: TestClient) -> None:
    admitted = returned(admit(ward))
    url = f"/fhir/Encounter/{admitted['id']}/$discharge"
    refused(ward.post(url, headers=FHIR_JSON, json=parameters(
        diagnosis={"valueCoding": HEART_FAILURE})), 400, "YL-6153")
    refused(ward.post(url, headers=FHIR_JSON, json=parameters(
        disposition={"valueCode": "teleported"}, diagnosis={"valueCoding": HEART_FAILURE})),
        422, "YL-6151")
    finished = returned(ward.post(url, headers=FHIR_JSON, json=parameters(
        disposition={"valueCode": "1"}, diagnosis={"valueCoding": HEART_FAILURE},
        summary={"valueString": "患者好转出院。\n嘱低盐饮食 <按时服药>。"})))
    assert finished["status"] == "finished"
    assert finished["period"]["end"] >= finished["period"]["start"]
    assert active_places(finished) == []
    disposition = finished["hospitalization"]["dischargeDisposition"]
    assert [c["code"] for c in disposition["coding"]] == ["home", "home"]
    assert [d["use"]["coding"][0]["code"] for d in finished["diagnosis"]] == ["AD", "DD"]
    assert bed_status(ward, "b1") == "H"
    [summary] = [e["resource"] for e in ward.get(
        "/fhir/Composition", params={"encounter": f"Encounter/{admitted['id']}"}).json()["entry"]]
    assert "&lt;按时服药&gt;" in summary["section"][0]["text"]["div"]
    assert summary["author"] == [{"reference": "Practitioner/doc-1"}]

    refused(ward.post(url, headers=FHIR_JSON, json=parameters(
        disposition={"valueCode": "home"}, diagnosis={"valueCoding": HEART_FAILURE})),
        409, "YL-6108")
    refused(admit(ward, patient="man2"), 409, "YL-6119")  # still being cleaned
    assert returned(ward.post("/fhir/Location/b1/$clean", json=parameters(),
                              headers=FHIR_JSON))["operationalStatus"]["code"] == "U"
    returned(admit(ward))  # the same patient may come back


def test_an_operation_leaves_an_audit_entry_naming_the_patient(ward: TestClient) -> None:
    returned(admit(ward))
    trail = ward.get("/fhir/$audit-trail", params={"entity": "Patient/man"}).json()
    paths = [e["resource"]["entity"] for e in trail.get("entry", [])]
    assert any({"what": {"reference": "Location/b1"}} in entity for entity in paths), trail


def test_the_capability_statement_lists_the_operations(client: TestClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    by_type = {r["type"]: {o["name"] for o in r.get("operation", [])} for r in rest["resource"]}
    assert {"admit", "transfer", "discharge"} <= by_type["Encounter"]
    assert {"reserve", "close", "clean", "reopen"} <= by_type["Location"]


# --- who may ---------------------------------------------------------------------------------


def _token(client: TestClient, **claims: Any) -> dict[str, str]:
    keys = client.app.state.keys  # type: ignore[attr-defined]
    return {**FHIR_JSON, "Authorization": f"Bearer {issue(keys, **claims).token}"}


def test_staff_admit_only_into_their_own_hospitals_beds(ward: TestClient) -> None:
    scope = ("user/Encounter.cruds user/Location.cruds user/Patient.rs "
             "user/Condition.cruds user/Composition.cruds")
    other = _token(ward, subject="nurse.other", scope=scope, organizations=("other",))
    theirs = {"resourceType": "Patient", "id": "theirs", "gender": "male",
              "birthDate": "1970-01-01", "managingOrganization": ref("Organization/other")}
    assert ward.put("/fhir/Patient/theirs", json=theirs, headers=FHIR_JSON).status_code == 201
    response = ward.post("/fhir/Encounter/$admit", json=admit_parameters(patient="theirs"),
                         headers=other)
    refused(response, 403, "YL-6101")  # their patient, our bed
    # Nor does an admission open a patient they do not reach, even into their own bed: it
    # answers as for a patient that does not exist, and they still cannot read him.
    response = ward.post("/fhir/Encounter/$admit", headers=other, json=admit_parameters(
        bed="b-other", department="other-cardiology"))
    refused(response, 422, "YL-6102")
    assert ward.get("/fhir/Patient/man", headers=other).status_code == 404
    ours = _token(ward, subject="nurse.ours", scope=scope, organizations=("hosp",))
    returned(ward.post("/fhir/Encounter/$admit", json=admit_parameters(), headers=ours))
    patient = _token(ward, subject="patient", scope="patient/*.cruds", patient="man2")
    response = ward.post("/fhir/Location/b2/$close", json=parameters(), headers=patient)
    assert response.status_code == 403


def test_an_operation_writes_only_what_the_token_may_write(ward: TestClient) -> None:
    narrow = _token(ward, subject="engine", scope="system/Encounter.cru system/Location.ru "
                    "system/Patient.r system/HealthcareService.r system/Practitioner.r")
    refused(ward.post("/fhir/Encounter/$admit", json=admit_parameters(), headers=narrow),
            403, "YL-4030")  # the admitting diagnosis is a Condition it may not create
    assert count_of(ward, "Encounter") == 0


def test_a_stay_closed_by_a_plain_write_frees_the_patient_and_the_bed(
        ward: TestClient) -> None:
    encounter = returned(admit(ward))
    closed = {k: v for k, v in encounter.items() if k != "meta"} | {"status": "cancelled"}
    assert ward.put(f"/fhir/Encounter/{encounter['id']}", json=closed,
                    headers=FHIR_JSON).status_code == 200
    returned(admit(ward, bed="b2"))  # no longer "in hospital"
    refused(admit(ward, patient="man2"), 409, "YL-6119")  # b1 still says occupied
    returned(ward.post("/fhir/Location/b1/$clean", json=parameters(), headers=FHIR_JSON))
    returned(admit(ward, patient="man2"))


def test_a_bed_set_free_by_a_plain_write_is_not_double_booked(ward: TestClient) -> None:
    returned(admit(ward))
    bed = ward.get("/fhir/Location/b1").json()
    bed["operationalStatus"] = {"system": bed["operationalStatus"]["system"], "code": "U"}
    assert ward.put("/fhir/Location/b1", json=bed, headers=FHIR_JSON).status_code == 200
    refused(admit(ward, patient="man2"), 409, "YL-6119")


def test_a_patient_leaves_a_bed_taken_out_of_service(ward: TestClient) -> None:
    encounter = returned(admit(ward))
    bed = ward.get("/fhir/Location/b1").json() | {"status": "inactive"}
    assert ward.put("/fhir/Location/b1", json=bed, headers=FHIR_JSON).status_code == 200
    moved = returned(ward.post(f"/fhir/Encounter/{encounter['id']}/$transfer",
                               headers=FHIR_JSON, json=parameters(
                                   bed={"valueReference": ref("Location/b2")})))
    assert active_places(moved) == ["Location/w-card", "Location/b2"]


# --- concurrency -----------------------------------------------------------------------------


def _race(base: str, headers: dict[str, str], bodies: list[tuple[str, JsonObject]]
          ) -> list[httpx.Response]:
    """POST every body at once, from as many threads."""
    start = threading.Barrier(len(bodies))
    answers: list[httpx.Response | None] = [None] * len(bodies)

    def post(index: int, path: str, body: JsonObject) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            start.wait()
            answers[index] = http.post(path, json=body)

    threads = [threading.Thread(target=post, args=(i, path, body))
               for i, (path, body) in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def _open_stays(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inpatient_bed_stay)
                                .where(inpatient_bed_stay.c.ended.is_(None))).scalar_one())


def test_clerks_racing_for_one_bed_book_it_once(live_server: str,
                                                live_headers: dict[str, str]) -> None:
    headers = {**live_headers, **FHIR_JSON}
    patients = [{"resourceType": "Patient", "id": f"racer-{n}", "gender": "male",
                 "birthDate": "1970-01-01"} for n in range(8)]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in network() + patients]}
    assert httpx.post(live_server, json=bundle, headers=headers, timeout=60).status_code == 200

    answers = _race(live_server, headers, [
        ("/Encounter/$admit", admit_parameters(patient=f"racer-{n}", bed="b3"))
        for n in range(8)])
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7, \
        [a.text for a in answers if a.status_code not in (200, 409)]

    answers = _race(live_server, headers, [
        ("/Encounter/$admit", admit_parameters(patient="man", bed=bed))
        for bed in ("b1", "b2", "b-c2")])
    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    with httpx.Client(base_url=live_server, headers=headers) as http:
        stays = http.get("/Encounter", params={"status": "in-progress", "_summary": "count"})
        assert stays.json()["total"] == 2


def test_the_database_itself_refuses_a_double_booked_bed(ward: TestClient,
                                                         engine: Engine) -> None:
    returned(admit(ward))
    assert _open_stays(engine) == 1
    row = {"encounter_id": "x", "patient_id": "man2", "hospital_id": "hosp",
           "campus_id": "c1", "department_id": CARDIOLOGY, "ward_id": "w-card",
           "bed_id": "b1", "admitted": datetime.now(UTC), "began": datetime.now(UTC),
           "came_by": "admit"}
    with pytest.raises(Exception, match=r"(?i)unique"), engine.begin() as conn:
        conn.execute(inpatient_bed_stay.insert(), [row])


def test_the_operation_definitions_can_be_read(client: TestClient) -> None:
    router = client.app.state.router  # type: ignore[attr-defined]
    # `yilian db upgrade` stores them so (the suite's databases start empty).
    assert publish(router.options.operations,
                   lambda request: router.handle(request, "http://testserver/fhir")) == 8
    rest = client.get("/fhir/metadata").json()["rest"][0]
    encounter = next(r for r in rest["resource"] if r["type"] == "Encounter")
    admit = next(o for o in encounter["operation"] if o["name"] == "admit")
    definition = client.get("/fhir/OperationDefinition/Encounter-admit").json()
    assert definition["url"] == admit["definition"]
    assert [p["name"] for p in definition["parameter"] if p["use"] == "in"] == [
        "patient", "department", "bed", "practitioner", "diagnosis", "admitSource",
        "expectedDischarge"]
    found = client.get("/fhir/OperationDefinition", params={"code": "discharge"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["Encounter-discharge"]


@pytest.mark.parametrize("body", [
    {"resourceType": "Parameters", "parameter": 5},
    admit_parameters(source=None, admitSource={"valueCodeableConcept": {"coding": ["emd"]}}),
    {**admit_parameters(), "parameter": [
        *[p for p in admit_parameters()["parameter"] if p["name"] != "diagnosis"],
        {"name": "diagnosis", "valueCodeableConcept": "I21.9"}]},
])
def test_malformed_parameters_are_4xx(ward: TestClient, body: JsonObject) -> None:
    response = ward.post("/fhir/Encounter/$admit", json=body, headers=FHIR_JSON)
    assert 400 <= response.status_code < 500, response.text
    assert count_of(ward, "Encounter") == 0


def test_a_reservation_cannot_be_for_ever(ward: TestClient) -> None:
    for expires, code in (("9999-12-31T23:00:00-10:00", "YL-6158"),
                          ("2099-01-01T00:00:00+08:00", "YL-6144")):
        response = ward.post("/fhir/Location/b1/$reserve", headers=FHIR_JSON,
                             json=parameters(expires={"valueDateTime": expires}))
        refused(response, 400 if code == "YL-6158" else 422, code)


def test_a_campus_bound_nurse_moves_only_patients_of_her_campus(ward: TestClient) -> None:
    encounter = returned(admit(ward))
    scope = ("user/Encounter.cruds user/Location.cruds user/Patient.rs "
             "user/Condition.cruds user/HealthcareService.rs")
    campus2 = _token(ward, subject="nurse.c2", scope=scope, organizations=("c2",))
    response = ward.post(f"/fhir/Encounter/{encounter['id']}/$transfer", headers=campus2,
                         json=parameters(bed={"valueReference": ref("Location/b-c2")}))
    assert response.status_code in (403, 404)  # 404: the stay is not hers even to see
    assert bed_status(ward, "b1") == "O"
