"""The demo network: its shape at full scale, and a small seeding checked end to end (every
resource validated, beds and stays consistent, and the seeded data usable by $admit)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir_helpers import FHIR_JSON
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from yilian.cli.main import app
from yilian.demo.network import build_network
from yilian.demo.people import is_valid_resident_id
from yilian.demo.seed import SeedState, is_seeded, seed, seed_state
from yilian.domains.inpatient.tables import inpatient_bed_stay, inpatient_counter
from yilian.domains.network.codes import (
    HOSPITAL_AFFILIATION,
    ORGANIZATION_KIND,
    RESIDENT_ID,
    code_in,
    is_uscc,
)
from yilian.kit.db import make_engine

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_the_full_network_has_a_group_of_ten_campuses_and_six_thousand_beds() -> None:
    network = build_network()
    organizations = [r for r in network.resources if r["resourceType"] == "Organization"]
    kinds = Counter(code_in(o["type"], ORGANIZATION_KIND) for o in organizations)
    assert kinds == {"medical-centre": 1, "hospital": 17, "campus": 27,
                     "community-health-centre": 8, "family-doctor-team": 24}
    affiliations = Counter(code_in(o["type"], HOSPITAL_AFFILIATION) for o in organizations
                           if code_in(o["type"], ORGANIZATION_KIND) == "hospital")
    assert affiliations == {"direct": 7, "non-direct": 2, "cooperating": 8}
    group_campuses = {b.campus_id for b in network.beds if b.hospital_id == "h1"}
    assert len(group_campuses) == 10
    assert sum(1 for b in network.beds if b.hospital_id == "h1") >= 6_000
    assert all(is_uscc(o["identifier"][0]["value"]) for o in organizations)
    ids = [(r["resourceType"], r["id"]) for r in network.resources]
    assert len(ids) == len(set(ids))


@pytest.fixture
def seeded(client: TestClient, engine: Engine) -> TestClient:
    result = seed(engine, patients=600, days=30, scale=0.04, now=NOW, validate_all=True)
    assert result.stays > 100 and 0 < result.open_stays <= result.beds
    return client


def test_a_seeded_network_is_consistent(seeded: TestClient, engine: Engine) -> None:
    assert is_seeded(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(inpatient_bed_stay)).all()
        counters = conn.execute(select(inpatient_counter)).all()
    open_rows = [r for r in rows if r.ended is None]
    beds = {e["resource"]["id"]: e["resource"] for e in seeded.get(
        "/fhir/Location", params={"physical-type": "bd", "_count": "1000"}).json()["entry"]}
    occupied = {bed_id for bed_id, bed in beds.items()
                if bed["operationalStatus"]["code"] == "O"}
    assert occupied == {r.bed_id for r in open_rows}
    assert len({r.patient_id for r in open_rows}) == len(open_rows)
    in_progress = seeded.get("/fhir/Encounter", params={
        "status": "in-progress", "class": "IMP", "_summary": "count"}).json()["total"]
    assert in_progress == len(open_rows)
    # A patient's stays never overlap.
    by_patient: dict[str, list[tuple[datetime, datetime]]] = {}
    for row in rows:
        end = row.ended or datetime.max.replace(tzinfo=UTC)
        by_patient.setdefault(row.patient_id, []).append((row.began, end))
    for periods in by_patient.values():
        periods.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(periods))
    assert {c.hospital_id for c in counters} <= {f"h{n}" for n in range(1, 18)}
    patient = seeded.get(f"/fhir/Patient/{open_rows[0].patient_id}").json()
    [resident] = [i["value"] for i in patient["identifier"] if i["system"] == RESIDENT_ID]
    assert is_valid_resident_id(resident)


def _ward_of(client: TestClient, bed: dict[str, Any]) -> dict[str, Any]:
    room = client.get(f"/fhir/{bed['partOf']['reference']}").json()
    ward: dict[str, Any] = client.get(f"/fhir/{room['partOf']['reference']}").json()
    return ward


def test_the_seeded_beds_take_new_admissions(seeded: TestClient, engine: Engine) -> None:
    with engine.connect() as conn:
        in_hospital = set(conn.scalars(select(inpatient_bed_stay.c.patient_id)
                                       .where(inpatient_bed_stay.c.ended.is_(None))))
    free_beds = [e["resource"] for e in seeded.get("/fhir/Location", params={
        "physical-type": "bd", "operational-status": "U", "_count": "200"}).json()["entry"]]
    for bed in free_beds:  # a ward that asks only for its department
        ward = _ward_of(seeded, bed)
        [rules] = ward["extension"]
        if {r["url"] for r in rules["extension"]} == {"department"}:
            department = rules["extension"][0]["valueReference"]["reference"]
            break
    else:
        raise AssertionError("no free bed in a ward without sex or age rules")
    doctor = seeded.get("/fhir/PractitionerRole", params={
        "service": department, "_count": "1"}).json()["entry"][0]["resource"]
    patients = seeded.get("/fhir/Patient", params={"_count": "200"}).json()["entry"]
    patient = next(p["resource"]["id"] for p in patients if p["resource"]["id"] not in in_hospital)
    response = seeded.post("/fhir/Encounter/$admit", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{patient}"}},
            {"name": "department", "valueReference": {"reference": department}},
            {"name": "bed", "valueReference": {"reference": f"Location/{bed['id']}"}},
            {"name": "practitioner", "valueReference": doctor["practitioner"]},
            {"name": "diagnosis", "valueCoding": {
                "system": "http://hl7.org/fhir/sid/icd-10", "code": "I21.9"}}]})
    assert response.status_code == 200, response.text
    encounter = response.json()["parameter"][0]["resource"]
    assert encounter["serviceProvider"]["reference"] == \
        seeded.get(f"/fhir/{bed['managingOrganization']['reference']}").json()["partOf"]["reference"]


def test_yilian_demo_seeds_once_and_prints_the_accounts(database_url: str) -> None:
    runner = CliRunner()
    arguments = ["demo", "--db", database_url, "--patients", "200", "--days", "5",
                 "--scale", "0.02"]
    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    assert "Seeded" in first.output and "demo.nurse" in first.output
    again = runner.invoke(app, arguments)
    assert again.exit_code == 0, again.output
    assert "there already" in again.output


def test_a_stopped_seeding_is_told_apart_from_a_finished_one(database_url: str) -> None:
    """Ctrl-C in `make run`'s first minutes: the next start must not serve half a network
    as the demo, nor seed over it."""
    engine = make_engine(database_url)

    def stop_at_the_stays(stage: str, done: int, total: int) -> None:
        if stage == "stays":
            raise KeyboardInterrupt

    try:
        assert seed_state(engine) is SeedState.NONE
        with pytest.raises(KeyboardInterrupt):
            seed(engine, patients=200, days=5, scale=0.02, now=NOW, progress=stop_at_the_stays)
        assert seed_state(engine) is SeedState.UNFINISHED
        assert not is_seeded(engine)
    finally:
        engine.dispose()
    result = CliRunner().invoke(app, ["demo", "--db", database_url, "--patients", "200",
                                      "--days", "5", "--scale", "0.02"])
    assert result.exit_code == 1, result.output
    assert "stopped before it finished" in " ".join(result.output.split())
