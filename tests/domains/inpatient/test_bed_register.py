"""The bed register follows the beds' Locations whatever path the write takes."""

from __future__ import annotations

from typing import Any

from fhir_helpers import FHIR_JSON, put_all
from inpatient_network import CARDIOLOGY, OBSTETRICS, admit_parameters, network
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from yilian.domains.inpatient.tables import inpatient_bed


def register(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {row.bed_id: row._asdict() for row in conn.execute(select(inpatient_bed))}


def test_beds_written_in_a_transaction_are_registered_with_their_place(
        client: TestClient, engine: Engine) -> None:
    put_all(client, network())
    beds = register(engine)
    assert set(beds) == {"b1", "b2", "b3", "b-obs", "b-ped", "b-c2", "b-other"}
    assert beds["b1"] == {"bed_id": "b1", "name": "01床", "parent_id": "r1",
                              "ward_id": "w-card", "campus_id": "c1", "hospital_id": "hosp",
                              "department_id": CARDIOLOGY, "status": "U"}
    assert beds["b-other"]["hospital_id"] == "other"


def test_operations_puts_moves_and_deletes_reach_the_register(
        client: TestClient, engine: Engine) -> None:
    put_all(client, network())
    assert client.post("/fhir/Encounter/$admit", json=admit_parameters(),
                       headers=FHIR_JSON).status_code == 200
    assert register(engine)["b1"]["status"] == "O"

    # The room moves to the obstetrics ward: its beds move with it.
    room = client.get("/fhir/Location/r1").json()
    room["partOf"] = {"reference": "Location/w-obs"}
    assert client.put("/fhir/Location/r1", json=room, headers=FHIR_JSON).status_code == 200
    beds = register(engine)
    assert {beds[b]["ward_id"] for b in ("b1", "b2", "b3")} == {"w-obs"}
    assert beds["b2"]["department_id"] == OBSTETRICS

    new_bed = {**client.get("/fhir/Location/b2").json(), "id": "b9", "name": "09床"}
    del new_bed["meta"]
    assert client.put("/fhir/Location/b9", json=new_bed, headers=FHIR_JSON).status_code == 201
    assert register(engine)["b9"]["ward_id"] == "w-obs"
    assert client.delete("/fhir/Location/b9").status_code in (200, 204)
    assert "b9" not in register(engine)


def test_a_bed_written_before_its_ward_is_placed_when_the_ward_comes(
        client: TestClient, engine: Engine) -> None:
    resources = {r["id"]: r for r in network()}
    put_all(client, [r for r in network() if r["id"] not in ("w-card", "r1", "b1", "b2", "b3")])
    put_all(client, [resources["b1"]])
    put_all(client, [resources["r1"]])
    assert register(engine)["b1"]["ward_id"] is None
    put_all(client, [resources["w-card"]])
    assert register(engine)["b1"]["ward_id"] == "w-card"


def test_a_suspended_bed_counts_as_closed(client: TestClient, engine: Engine) -> None:
    put_all(client, network())
    bed = client.get("/fhir/Location/b2").json() | {"status": "suspended"}
    assert client.put("/fhir/Location/b2", json=bed, headers=FHIR_JSON).status_code == 200
    assert register(engine)["b2"]["status"] == "C"


def test_a_bed_changed_in_place_keeps_its_place_and_a_ward_changed_replaces_its_beds(
        client: TestClient, engine: Engine) -> None:
    put_all(client, network())
    bed = client.get("/fhir/Location/b2").json() | {"name": "02床（加床）"}
    assert client.put("/fhir/Location/b2", json=bed, headers=FHIR_JSON).status_code == 200
    assert register(engine)["b2"] | {"name": "02床（加床）"} == register(engine)["b2"]
    assert register(engine)["b2"]["ward_id"] == "w-card"
    # The ward now serves obstetrics: its beds say so, though they were not written.
    ward = client.get("/fhir/Location/w-card").json()
    for rule in ward["extension"]:
        for detail in rule["extension"]:
            if detail["url"] == "department":
                detail["valueReference"] = {"reference": f"HealthcareService/{OBSTETRICS}"}
    assert client.put("/fhir/Location/w-card", json=ward, headers=FHIR_JSON).status_code == 200
    assert {register(engine)[b]["department_id"] for b in ("b1", "b2", "b3")} == {OBSTETRICS}
    # The room is deleted: its beds are in no ward any more (and take no one).
    assert client.delete("/fhir/Location/r1").status_code in (200, 204)
    beds = register(engine)
    assert {beds[b]["ward_id"] for b in ("b1", "b2", "b3")} == {None}
    assert "r1" not in beds
    refused = client.post("/fhir/Encounter/$admit", json=admit_parameters(),
                          headers=FHIR_JSON)
    assert refused.status_code == 422, refused.text
