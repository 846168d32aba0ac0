"""/api/inpatient/board and /api/inpatient/census over HTTP: what they count, checked against
a brute-force count of the movement record, and who may see them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir_helpers import FHIR_JSON, put_all
from inpatient_network import HEART_FAILURE, admit_parameters, network, parameters, ref
from sqlalchemy import Engine, delete, func, select, update
from starlette.testclient import TestClient

from yilian.auth.tokens import issue
from yilian.demo.seed import seed
from yilian.domains.inpatient.census import CensusQuery, GroupBy, census
from yilian.domains.inpatient.census_days import closed_through
from yilian.domains.inpatient.repository import end_stay
from yilian.domains.inpatient.tables import (
    inpatient_bed,
    inpatient_bed_stay,
    inpatient_census_day,
    inpatient_census_state,
)
from yilian.kit.clock import DISPLAY_ZONE, to_instant

JsonObject = dict[str, Any]


@pytest.fixture
def ward(client: TestClient) -> TestClient:
    return put_all(client, network())


def ok(response: Any) -> JsonObject:
    assert response.status_code == 200, response.text
    body: JsonObject = response.json()
    return body


def beds_of(board: JsonObject) -> dict[str, JsonObject]:
    return {b["id"]: b for w in board["wards"] for b in w["beds"]}


def test_the_board_shows_each_bed_and_who_is_in_it(ward: TestClient) -> None:
    admitted = ok(ward.post("/fhir/Encounter/$admit", headers=FHIR_JSON, json=admit_parameters(
        expectedDischarge={"valueDate": "2030-01-10"})))["parameter"][0]["resource"]
    until = to_instant(datetime.now(UTC) + timedelta(hours=6))
    ok(ward.post("/fhir/Location/b2/$reserve", headers=FHIR_JSON, json=parameters(
        expires={"valueDateTime": until}, patient={"valueReference": ref("Patient/man2")})))
    ok(ward.post("/fhir/Location/b3/$close", headers=FHIR_JSON, json=parameters(
        reason={"valueString": "维修"})))

    board = ok(ward.get("/api/inpatient/board", params={"campus": "c1"}))
    assert board["campus"] == {"id": "c1", "name": "第一医院本部"}
    assert [w["id"] for w in board["wards"]] == ["w-obs", "w-ped", "w-card"]  # by name
    beds = beds_of(board)
    assert set(beds) == {"b1", "b2", "b3", "b-obs", "b-ped"}
    stay = beds["b1"]["stay"]
    assert beds["b1"]["status"] == "O" and beds["b1"]["statusName"] == {"zh": "占用",
                                                                         "en": "Occupied"}
    assert stay["encounter"] == admitted["id"] and stay["name"] == "王建国"
    assert stay["gender"] == "male" and stay["age"] >= 68 and stay["daysInHospital"] == 1
    assert stay["expectedDischarge"] == "2030-01-10"
    assert beds["b2"]["status"] == "reserved" and beds["b2"]["reservedFor"] == "Patient/man2"
    assert beds["b3"]["status"] == "C" and beds["b3"]["reason"] == "维修"
    assert board["summary"].items() >= {"beds": 5, "O": 1, "reserved": 1, "C": 1,
                                        "U": 2}.items()

    only_free = ok(ward.get("/api/inpatient/board", params={"campus": "c1", "status": "U"}))
    assert set(beds_of(only_free)) == {"b-obs", "b-ped"}
    one_ward = ok(ward.get("/api/inpatient/board", params={"campus": "c1", "ward": "w-card"}))
    assert set(beds_of(one_ward)) == {"b1", "b2", "b3"}


def _headers(client: TestClient, **claims: Any) -> dict[str, str]:
    keys = client.app.state.keys  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {issue(keys, **claims).token}"}


def test_who_may_see_the_board(ward: TestClient) -> None:
    ok(ward.post("/fhir/Encounter/$admit", headers=FHIR_JSON, json=admit_parameters()))
    scope = "user/Location.rs user/Patient.rs user/Encounter.rs"
    masked = _headers(ward, subject="manager", scope=scope, organizations=("hosp",),
                      masked=True)
    assert beds_of(ok(ward.get("/api/inpatient/board", params={"campus": "c1"},
                               headers=masked)))["b1"]["stay"]["name"] == "王**"
    elsewhere = _headers(ward, subject="nurse", scope=scope, organizations=("other",))
    refused = ward.get("/api/inpatient/board", params={"campus": "c1"}, headers=elsewhere)
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    without_patients = _headers(ward, subject="porter", scope="user/Location.rs",
                                organizations=("hosp",))
    stay = beds_of(ok(ward.get("/api/inpatient/board", params={"campus": "c1"},
                               headers=without_patients)))["b1"]["stay"]
    assert "name" not in stay
    anonymous = ward.get("/api/inpatient/board", params={"campus": "c1"},
                         headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    patient = _headers(ward, subject="patient", scope="patient/*.rs", patient="man")
    assert ward.get("/api/inpatient/board", params={"campus": "c1"},
                    headers=patient).status_code == 403


def test_bad_queries_are_outcomes_with_the_parameter(ward: TestClient) -> None:
    for params, where in (({"campus": "c1", "status": "sleeping"}, "status"),
                          ({}, "campus"),
                          ({"from": "2026-02-30"}, "from"),
                          ({"by": "planet"}, "by")):
        path = "/api/inpatient/census" if "campus" not in params and where != "campus" \
            else "/api/inpatient/board"
        response = ward.get(path, params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["issue"][0]["expression"] == [where]
    unknown = ward.get("/api/inpatient/board", params={"campus": "nowhere"})
    assert unknown.status_code == 404
    backwards = ward.get("/api/inpatient/census", params={"from": "2026-02-02",
                                                          "to": "2026-02-01"})
    assert backwards.status_code == 400


def test_the_census_counts_todays_movements(ward: TestClient) -> None:
    first = ok(ward.post("/fhir/Encounter/$admit", headers=FHIR_JSON,
                         json=admit_parameters()))["parameter"][0]["resource"]
    ok(ward.post("/fhir/Encounter/$admit", headers=FHIR_JSON,
                 json=admit_parameters(patient="man2", bed="b2")))
    ok(ward.post(f"/fhir/Encounter/{first['id']}/$transfer", headers=FHIR_JSON,
                 json=parameters(bed={"valueReference": ref("Location/b-c2")})))
    ok(ward.post(f"/fhir/Encounter/{first['id']}/$discharge", headers=FHIR_JSON,
                 json=parameters(disposition={"valueCode": "home"},
                                 diagnosis={"valueCoding": HEART_FAILURE})))
    today = datetime.now(DISPLAY_ZONE).date().isoformat()
    counted = ok(ward.get("/api/inpatient/census", params={"hospital": "hosp", "by": "ward"}))
    assert counted["to"] == today
    totals = counted["totals"]
    assert totals.items() >= {"beds": 6, "admissions": 2, "transfers": 1, "discharges": 1,
                              "inHospitalNow": 1, "averageLengthOfStay": 1.0}.items()
    by_ward = {g["id"]: g for g in counted["groups"]}
    assert by_ward["w-card"]["admissions"] == 2 and by_ward["w-card2"]["transfers"] == 1
    assert by_ward["w-card2"]["discharges"] == 1 and by_ward["w-card"]["name"] == "心内一病区"
    assert counted["days"][-1].items() >= {"date": today, "inHospital": 1, "admissions": 2,
                                           "discharges": 1, "transfers": 1}.items()


NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)


def _brute_force(rows: list[Any], beds: list[Any], first: date, last: date,
                 key: str) -> dict[str, JsonObject]:
    """The census by definition, one day and one row at a time."""
    def day(moment: datetime) -> date:
        return moment.astimezone(DISPLAY_ZONE).date()

    start = datetime.combine(first, datetime.min.time(), DISPLAY_ZONE)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), DISPLAY_ZONE)
    figures: dict[str, JsonObject] = {}
    for bed in beds:
        group = figures.setdefault(getattr(bed, key), {"beds": 0, "patientDays": 0,
                                                       "admissions": 0, "discharges": 0,
                                                       "transfers": 0, "los": 0})
        group["beds"] += 1
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    came_from = {(r.encounter_id, r.ended): getattr(r, key) for r in rows
                 if r.left_by == "transfer"}
    for row in rows:
        group = figures[getattr(row, key)]
        if start <= row.began < end:
            if row.came_by == "admit":
                group["admissions"] += 1
            elif came_from[(row.encounter_id, row.began)] != getattr(row, key):
                group["transfers"] += 1  # from another group's bed
        if row.ended is not None and start <= row.ended < end and row.left_by == "discharge":
            group["discharges"] += 1
            group["los"] += max(1, (day(row.ended) - day(row.admitted)).days)
        for d in days:
            midnight = datetime.combine(d + timedelta(days=1), datetime.min.time(), DISPLAY_ZONE)
            present = min(midnight, NOW) if d == day(NOW) else midnight
            if row.began < present and (row.ended is None or row.ended >= midnight):
                group["patientDays"] += 1
    return figures


@pytest.mark.parametrize("by", ["campus", "ward", "department", "hospital"])
def test_the_census_agrees_with_counting_by_hand(client: TestClient, engine: Engine,
                                                 by: str) -> None:
    seed(engine, patients=500, days=20, scale=0.03, now=NOW)
    with engine.connect() as conn:
        rows = conn.execute(select(inpatient_bed_stay)).all()
        beds = conn.execute(select(inpatient_bed).where(
            inpatient_bed.c.ward_id.is_not(None))).all()
        closed = closed_through(conn)
    first, last = date(2026, 11, 10), date(2026, 11, 23)  # a past fortnight
    # Seeding closed the days up to two days ago: most of the fortnight is read from the
    # closed days, the rest counted from the movement record.
    assert closed is not None and first <= closed < last
    expected = _brute_force(rows, beds, first, last, f"{by}_id")
    counted = ok(client.get("/api/inpatient/census", params={
        "from": first.isoformat(), "to": last.isoformat(), "by": by}))
    assert len(counted["days"]) == 14
    for group in counted["groups"]:
        mine = expected[group["id"]]
        assert {k: group[k] for k in ("beds", "admissions", "discharges", "transfers",
                                      "patientDays")} == \
            {k: mine[k] for k in ("beds", "admissions", "discharges", "transfers",
                                  "patientDays")}, group["id"]
        if mine["discharges"]:
            assert group["averageLengthOfStay"] == round(mine["los"] / mine["discharges"], 2)
    assert sum(g["admissions"] for g in counted["groups"]) == counted["totals"]["admissions"]
    assert sum(d["admissions"] for d in counted["days"]) == counted["totals"]["admissions"]
    assert sum(d["inHospital"] for d in counted["days"]) == counted["totals"]["patientDays"]
    assert counted["totals"]["admissions"] > 20


def test_closed_days_count_as_the_movement_record_does(client: TestClient,
                                                       engine: Engine) -> None:
    """The same census read from closed days and counted afresh; a change to a closed day
    (a stay ended in the past) reopens it, and the next census closes it again."""
    seed(engine, patients=500, days=20, scale=0.03, now=NOW)
    queries = [{"from": "2026-11-05", "to": "2026-11-24", "by": by, **where}
               for by in ("ward", "department") for where in ({}, {"hospital": "h1"})]

    def asked() -> list[JsonObject]:
        return [{k: v for k, v in ok(client.get("/api/inpatient/census", params=q)).items()
                 if k != "asOf"} for q in queries]

    from_closed = asked()
    with engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(inpatient_census_day)).scalar()
        conn.execute(delete(inpatient_census_day))
        conn.execute(update(inpatient_census_state).values(through=None))
    with engine.connect() as conn:
        counted_afresh = [census(conn, CensusQuery(date.fromisoformat(q["from"]),
                                                   date.fromisoformat(q["to"]),
                                                   GroupBy(q["by"]), q.get("hospital")),
                                 datetime.now(UTC)) for q in queries]
    assert from_closed == [{k: v for k, v in c.items() if k != "asOf"}
                           for c in counted_afresh]
    assert asked() == from_closed  # and closed again on the way

    # A stay ended a week ago, written now: the week's closed days are forgotten.
    week_ago = datetime.now(UTC) - timedelta(days=7)
    with engine.begin() as conn:
        open_stay = conn.execute(select(inpatient_bed_stay).where(
            inpatient_bed_stay.c.ended.is_(None),
            inpatient_bed_stay.c.began < week_ago - timedelta(days=1))).first()
        assert open_stay is not None
        end_stay(conn, open_stay.pk, week_ago, "discharge")
        assert closed_through(conn) == week_ago.astimezone(DISPLAY_ZONE).date() - \
            timedelta(days=1)
    after = asked()
    assert after != from_closed
    with engine.connect() as conn:
        assert closed_through(conn) == datetime.now(DISPLAY_ZONE).date() - timedelta(days=2)
        again = [census(conn, CensusQuery(date.fromisoformat(q["from"]),
                                          date.fromisoformat(q["to"]), GroupBy(q["by"]),
                                          q.get("hospital")), datetime.now(UTC))
                 for q in queries]
        conn.execute(delete(inpatient_census_day))
        conn.execute(update(inpatient_census_state).values(through=None))
        afresh = [census(conn, CensusQuery(date.fromisoformat(q["from"]),
                                           date.fromisoformat(q["to"]), GroupBy(q["by"]),
                                           q.get("hospital")), datetime.now(UTC))
                  for q in queries]
        conn.rollback()
    strip = [[{k: v for k, v in c.items() if k != "asOf"} for c in found]
             for found in (again, afresh)]
    assert strip[0] == strip[1] == after


def test_the_board_hides_whom_a_consent_withholds_and_masks_reasons(ward: TestClient) -> None:
    ok(ward.post("/fhir/Encounter/$admit", headers=FHIR_JSON, json=admit_parameters()))
    ok(ward.post("/fhir/Location/b2/$close", headers=FHIR_JSON, json=parameters(
        reason={"valueString": "等待家属 13812345678 回电"})))
    consent = {"resourceType": "Consent", "id": "deny-hosp", "status": "active",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                               "consentscope", "code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": ref("Patient/man"),
               "provision": {"type": "deny", "actor": [{"reference": ref("Organization/hosp"),
                                                        "role": {"text": "staff"}}]}}
    assert ward.put("/fhir/Consent/deny-hosp", json=consent,
                    headers=FHIR_JSON).status_code == 201
    scope = "user/Location.rs user/Patient.rs user/Encounter.rs"
    nurse = _headers(ward, subject="nurse", scope=scope, organizations=("hosp",))
    beds = beds_of(ok(ward.get("/api/inpatient/board", params={"campus": "c1"},
                               headers=nurse)))
    assert beds["b1"]["status"] == "O" and "name" not in beds["b1"]["stay"]
    assert beds["b2"]["reason"] == "等待家属 13812345678 回电"
    # Broken glass opens the patient to that nurse whatever the consent, on the board too.
    assert ward.post("/auth/break-glass", headers=nurse, data={
        "patient": "man", "reason": "collapsed on the ward, family unreachable"}
        ).status_code == 200
    beds = beds_of(ok(ward.get("/api/inpatient/board", params={"campus": "c1"},
                               headers=nurse)))
    assert beds["b1"]["stay"]["name"]
    manager = _headers(ward, subject="manager", scope=scope, organizations=("hosp",),
                       masked=True)
    beds = beds_of(ok(ward.get("/api/inpatient/board", params={"campus": "c1"},
                               headers=manager)))
    assert beds["b2"]["reason"] == "等待家属 138****5678 回电"


@pytest.mark.parametrize("params", [{"to": "0001-01-05"}, {"from": "9999-12-01"}])
def test_far_dates_are_refused_not_failed(ward: TestClient, params: dict[str, str]) -> None:
    response = ward.get("/api/inpatient/census", params=params)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] in (["to"], ["from"])
