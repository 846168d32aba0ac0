"""Access tokens and SMART scopes over HTTP, on SQLite and PostgreSQL: who may do what, and
that refusals leak nothing (searches, totals and includes hold only what may be seen)."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import FHIR_JSON, issue_expressions, put_all, put_entry
from starlette.testclient import TestClient

from yilian.auth.tokens import Keys, issue


def _observation(obs_id: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": obs_id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{patient}"}}


RESOURCES = [
    {"resourceType": "Organization", "id": "zju1", "name": "浙大一院"},
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "张"}],
     "managingOrganization": {"reference": "Organization/zju1"}},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "王"}]},
    _observation("o1", "p1"),
    _observation("o2", "p2"),
]


@pytest.fixture
def loaded(client: TestClient) -> TestClient:
    return put_all(client, RESOURCES)


def _as(client: TestClient, scope: str, patient: str | None = None) -> dict[str, str]:
    keys: Keys = client.app.state.keys  # type: ignore[attr-defined]
    token = issue(keys, subject="someone", scope=scope, patient=patient).token
    return {"Authorization": f"Bearer {token}"}


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])
            if e.get("search", {}).get("mode") != "outcome"}


def test_no_token_or_a_bad_one_is_401_with_a_challenge(loaded: TestClient) -> None:
    anonymous = {"Authorization": ""}
    response = loaded.get("/fhir/Patient/p1", headers=anonymous)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="yilian"'
    assert response.json()["resourceType"] == "OperationOutcome"
    for bad in ("Bearer not-a-token", "Basic dXNlcjpwYXNz"):
        response = loaded.post("/fhir/Patient", json={"resourceType": "Patient"},
                               headers={**FHIR_JSON, "Authorization": bad})
        assert response.status_code == 401
    forged = _as(loaded, "user/*.cruds")["Authorization"][:-4] + "AAAA"
    response = loaded.get("/fhir/Patient", headers={"Authorization": forged})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # Nothing was written by the refused create.
    assert _ids(loaded.get("/fhir/Patient")) == {"p1", "p2"}


def test_discovery_is_public(loaded: TestClient) -> None:
    anonymous = {"Authorization": ""}
    assert loaded.get("/fhir/metadata", headers=anonymous).status_code == 200
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        found = loaded.get(path, headers=anonymous)
        assert found.status_code == 200
        assert "permission-v2" in found.json()["capabilities"]


def test_scopes_bound_each_interaction(loaded: TestClient) -> None:
    reader = _as(loaded, "user/Patient.rs")
    assert loaded.get("/fhir/Patient/p1", headers=reader).status_code == 200
    assert _ids(loaded.get("/fhir/Patient?name=张", headers=reader)) == {"p1"}
    refused = [
        loaded.get("/fhir/Observation/o1", headers=reader),
        loaded.get("/fhir/Observation", headers=reader),
        loaded.post("/fhir/Patient", json={"resourceType": "Patient"},
                    headers={**FHIR_JSON, **reader}),
        loaded.delete("/fhir/Patient/p1", headers=reader),
        loaded.get("/fhir/_history", headers=reader),
        loaded.get("/fhir?_type=Observation", headers=reader),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert refused[0].json()["resourceType"] == "OperationOutcome"
    assert issue_expressions(refused[0].json()) == ["Observation"]
    # Across types without _type: only the types it may search.
    assert _ids(loaded.get("/fhir?_id=p1,o1", headers=reader)) == {"p1"}
    # Resources it may not read are left out of _revinclude (and :iterate goes no further).
    found = loaded.get("/fhir/Patient?_id=p1&_revinclude=Observation:subject", headers=reader)
    assert _ids(found) == {"p1"}
    everything = loaded.get("/fhir/Patient?_id=p1&_revinclude=Observation:subject",
                            headers=_as(loaded, "user/Patient.rs user/Observation.rs"))
    assert _ids(everything) == {"p1", "o1"}


def test_version_1_scopes(loaded: TestClient) -> None:
    reader = _as(loaded, "user/*.read")
    assert loaded.get("/fhir/Observation/o2", headers=reader).status_code == 200
    assert loaded.get("/fhir/Patient/p1/_history", headers=reader).status_code == 200
    response = loaded.put("/fhir/Patient/p1", json=RESOURCES[1],
                          headers={**FHIR_JSON, **reader})
    assert response.status_code == 403
    writer = _as(loaded, "user/*.write")
    assert loaded.put("/fhir/Patient/p1", json=RESOURCES[1],
                      headers={**FHIR_JSON, **writer}).status_code == 200
    assert loaded.get("/fhir/Patient/p1", headers=writer).status_code == 403


def test_a_transaction_needs_every_entry_allowed_and_writes_nothing_otherwise(
        loaded: TestClient) -> None:
    writer = _as(loaded, "user/Patient.cu")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        put_entry({"resourceType": "Patient", "id": "p3"}),
        put_entry(_observation("o3", "p3")),
    ]}
    response = loaded.post("/fhir", json=bundle, headers={**FHIR_JSON, **writer})
    assert response.status_code == 403
    assert response.json()["issue"][0]["diagnostics"].startswith("Bundle.entry[1]: [YL-4030]")
    assert loaded.get("/fhir/Patient/p3").status_code == 404
    batch = {**bundle, "type": "batch"}
    answers = loaded.post("/fhir", json=batch, headers={**FHIR_JSON, **writer}).json()
    assert [e["response"]["status"][:3] for e in answers["entry"]] == ["201", "403"]


def test_a_patient_token_reaches_only_that_patient(loaded: TestClient) -> None:
    mine = _as(loaded, "patient/*.rs", patient="p1")
    assert loaded.get("/fhir/Patient/p1", headers=mine).status_code == 200
    # Another patient's records are as if they did not exist.
    assert loaded.get("/fhir/Patient/p2", headers=mine).status_code == 404
    assert loaded.get("/fhir/Observation/o2", headers=mine).status_code == 404
    assert _ids(loaded.get("/fhir/Observation", headers=mine)) == {"o1"}
    assert _ids(loaded.get("/fhir/Patient", headers=mine)) == {"p1"}
    counted = loaded.get("/fhir/Observation?_total=accurate", headers=mine).json()
    assert counted["total"] == 1
    found = loaded.get("/fhir/Observation?_include=Observation:subject&_id=o1,o2",
                       headers=mine)
    assert _ids(found) == {"o1", "p1"}
    # Outside the patient compartment: not patient data.
    assert loaded.get("/fhir/Organization/zju1", headers=mine).status_code == 200
    # History across a type would pass the compartment by.
    assert loaded.get("/fhir/Observation/_history", headers=mine).status_code == 403
    # Without a patient in context, a patient/ scope reaches nothing.
    assert loaded.get("/fhir/Patient/p1",
                      headers=_as(loaded, "patient/*.rs")).status_code == 403


def test_an_ambiguous_bare_id_is_judged_on_what_the_caller_sees(loaded: TestClient) -> None:
    """`subject=p1` is refused when the Observations found point at Patient/p1 and Group/p1
    (search/ambiguity.py); the patient, who cannot see the Group's Observation, gets their
    own: the refusal tells no one about records they may not see."""
    put_all(loaded, [{"resourceType": "Group", "id": "p1", "type": "person", "actual": True},
                     {**_observation("of-group", "p1"), "subject": {"reference": "Group/p1"}}])
    assert loaded.get("/fhir/Observation?subject=p1").status_code == 400
    mine = _as(loaded, "patient/*.rs", patient="p1")
    assert _ids(loaded.get("/fhir/Observation?subject=p1", headers=mine)) == {"o1"}


def test_a_patient_writes_only_into_their_own_compartment(loaded: TestClient) -> None:
    mine = _as(loaded, "patient/*.cruds", patient="p1")
    created = loaded.post("/fhir/Observation", json=_observation("x", "p1"),
                          headers={**FHIR_JSON, **mine})
    assert created.status_code == 201, created.text
    refused = loaded.post("/fhir/Observation", json=_observation("x", "p2"),
                          headers={**FHIR_JSON, **mine})
    assert refused.status_code == 403
    # Rolled back: p2 has still one Observation.
    assert _ids(loaded.get("/fhir/Observation?subject=Patient/p2")) == {"o2"}
    moved = loaded.put("/fhir/Observation/o1", json=_observation("o1", "p2"),
                       headers={**FHIR_JSON, **mine})
    assert moved.status_code == 403
    assert loaded.put("/fhir/Observation/o2", json=_observation("o2", "p1"),
                      headers={**FHIR_JSON, **mine}).status_code == 404
    assert loaded.delete("/fhir/Observation/o2", headers=mine).status_code == 404
    assert loaded.delete("/fhir/Observation/o1", headers=mine).status_code == 204


def test_access_control_off_warns_at_every_start(database_url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from yilian.api.app import create_app
    from yilian.config import Settings

    app = create_app(Settings(database_url=database_url, auth=False))
    assert "ACCESS CONTROL IS OFF" in capsys.readouterr().err
    with TestClient(app) as client:
        assert client.get("/fhir/Patient").status_code == 200
    app.state.engine.dispose()


def _staff(client: TestClient, scope: str = "user/*.cruds", *, org: str = "zju1",
           subject: str = "dr.li") -> dict[str, str]:
    keys: Keys = client.app.state.keys  # type: ignore[attr-defined]
    token = issue(keys, subject=subject, scope=scope, organizations=(org,)).token
    return {"Authorization": f"Bearer {token}"}


CARE = [
    {"resourceType": "Patient", "id": "p3"},
    {"resourceType": "Encounter", "id": "e3", "status": "finished",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
     "subject": {"reference": "Patient/p3"},
     "serviceProvider": {"reference": "Organization/zju1"},
     "period": {"start": "2020-01-01T08:00:00Z", "end": "2020-01-05T08:00:00Z"}},
    {"resourceType": "Patient", "id": "p4"},
    {"resourceType": "Encounter", "id": "e4", "status": "in-progress",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
     "subject": {"reference": "Patient/p4"},
     "serviceProvider": {"reference": "Organization/zju1"},
     "period": {"start": "2026-11-20T08:00:00Z"}},
    {"resourceType": "Patient", "id": "p5"},
    {"resourceType": "ServiceRequest", "id": "referral", "status": "active",
     "intent": "order", "subject": {"reference": "Patient/p5"},
     "performer": [{"reference": "Organization/zju1"}]},
]


@pytest.fixture
def network(loaded: TestClient) -> TestClient:
    return put_all(loaded, CARE)


def test_staff_see_the_patients_of_their_organization(network: TestClient) -> None:
    doctor = _staff(network)
    # Managed by it (p1), in its care now (p4), referred to it (p5); not p2 (none), nor p3
    # (discharged from it years ago).
    assert _ids(network.get("/fhir/Patient", headers=doctor)) == {"p1", "p4", "p5"}
    counted = network.get("/fhir/Patient?_total=accurate", headers=doctor).json()
    assert counted["total"] == 3
    assert network.get("/fhir/Patient/p2", headers=doctor).status_code == 404
    assert network.get("/fhir/Patient/p3", headers=doctor).status_code == 404
    assert _ids(network.get("/fhir/Observation", headers=doctor)) == {"o1"}
    assert network.get("/fhir/Observation/o2", headers=doctor).status_code == 404
    assert _ids(network.get("/fhir/Encounter", headers=doctor)) == {"e4"}
    assert network.get("/fhir/Organization/zju1", headers=doctor).status_code == 200
    # Another hospital's staff see none of them; a backend service sees all.
    assert _ids(network.get("/fhir/Patient", headers=_staff(network, org="other"))) == set()
    service = _as(network, "system/*.rs")
    assert _ids(network.get("/fhir/Patient", headers=service)) == {"p1", "p2", "p3", "p4",
                                                                   "p5"}
    assert network.get("/fhir/Patient/_history", headers=doctor).status_code == 403


def test_staff_write_only_into_their_patients_records(network: TestClient) -> None:
    doctor = _staff(network)
    assert network.post("/fhir/Observation", json=_observation("x", "p1"),
                        headers={**FHIR_JSON, **doctor}).status_code == 201
    assert network.post("/fhir/Observation", json=_observation("x", "p2"),
                        headers={**FHIR_JSON, **doctor}).status_code == 403
    # A new patient is registered at the hospital: then it is theirs.
    assert network.post("/fhir/Patient", json={"resourceType": "Patient"},
                        headers={**FHIR_JSON, **doctor}).status_code == 403
    registered = network.post("/fhir/Patient", json={
        "resourceType": "Patient", "managingOrganization": {"reference": "Organization/zju1"}},
        headers={**FHIR_JSON, **doctor})
    assert registered.status_code == 201
    # What an encounter is patched into is checked before it is written.
    patch = [{"op": "replace", "path": "/subject/reference", "value": "Patient/p2"}]
    patched = network.patch("/fhir/Encounter/e4", json=patch, headers={
        **doctor, "Content-Type": "application/json-patch+json"})
    assert patched.status_code == 403


def test_breaking_the_glass_opens_one_patient_for_a_while(network: TestClient) -> None:
    doctor = _staff(network)
    assert network.get("/fhir/Patient/p2", headers=doctor).status_code == 404
    for form, status in (({"patient": "p2", "reason": "short"}, 400),
                         ({"patient": "p2", "reason": "unconscious in ED, no ID",
                           "minutes": "9999"}, 400)):
        assert network.post("/auth/break-glass", data=form, headers=doctor).status_code == status
    assert network.post("/auth/break-glass", data={"patient": "p2", "reason": "x" * 20},
                        headers={"Authorization": ""}).status_code == 401
    # For staff bound to their organizations: an administrator has nothing to open.
    assert network.post("/auth/break-glass", data={"patient": "p2", "reason": "x" * 20}
                        ).status_code == 403
    opened = network.post("/auth/break-glass", headers=doctor, data={
        "patient": "Patient/p2", "reason": "unconscious in the ED, no record here",
        "minutes": "30"})
    assert opened.status_code == 200, opened.text
    assert opened.json()["patient"] == "Patient/p2"
    assert network.get("/fhir/Patient/p2", headers=doctor).status_code == 200
    assert _ids(network.get("/fhir/Observation", headers=doctor)) == {"o1", "o2"}
    # Only for that doctor, and only that patient.
    other = _staff(network, subject="dr.wu")
    assert network.get("/fhir/Patient/p2", headers=other).status_code == 404
    assert network.get("/fhir/Patient/p3", headers=doctor).status_code == 404
    # The opening and what was done under it are in the audit trail, with the reason.
    network.app.state.audit.flush()  # type: ignore[attr-defined]
    officer = _as(network, "user/AuditEvent.rs")
    trail = network.get("/fhir/$audit-trail?agent-name=user dr.li", headers=officer).json()
    details = [e["resource"].get("outcomeDesc", "") for e in trail["entry"]]
    assert any(d.startswith("emergency access: unconscious") for d in details)
    assert any(d.startswith("emergency access (unconscious in the ED") for d in details)


@pytest.mark.parametrize("link", [
    {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
     "subject": {"reference": "Patient/p2"}, "performer": [{"reference": "Organization/zju1"}]},
    {"resourceType": "Encounter", "status": "in-progress",
     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
     "subject": {"reference": "Patient/p2"},
     "serviceProvider": {"reference": "Organization/zju1"}},
    {"resourceType": "EpisodeOfCare", "status": "active", "patient": {"reference": "Patient/p2"},
     "managingOrganization": {"reference": "Organization/zju1"}},
    {"resourceType": "CareTeam", "subject": {"reference": "Patient/p2"},
     "participant": [{"member": {"reference": "Organization/zju1"}}]},
])
def test_staff_cannot_make_a_patient_theirs_by_writing_the_link(
        network: TestClient, link: dict[str, Any]) -> None:
    trainee = _staff(network, subject="trainee.he")
    refused = network.post(f"/fhir/{link['resourceType']}", json=link,
                           headers={**FHIR_JSON, **trainee})
    assert refused.status_code == 403
    assert network.get("/fhir/Patient/p2", headers=trainee).status_code == 404
    # The same answer for a patient that does not exist: no oracle.
    ghost = json_with(link, "Patient/no-such-patient")
    assert network.post(f"/fhir/{link['resourceType']}", json=ghost,
                        headers={**FHIR_JSON, **trainee}).status_code == 403
    # In a transaction too; and for one of its own patients it is fine.
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": link, "request": {"method": "POST", "url": link["resourceType"]}}]}
    assert network.post("/fhir", json=bundle, headers={**FHIR_JSON, **trainee}
                        ).status_code == 403
    mine = json_with(link, "Patient/p1")
    assert network.post(f"/fhir/{link['resourceType']}", json=mine,
                        headers={**FHIR_JSON, **trainee}).status_code == 201


def json_with(link: dict[str, Any], patient: str) -> dict[str, Any]:
    key = "patient" if link["resourceType"] == "EpisodeOfCare" else "subject"
    return {**link, key: {"reference": patient}}


def test_chains_and_has_need_their_own_grants_and_bounds(network: TestClient) -> None:
    """From a review: `_has` and chains looked into types the token may not search, and past
    the caller's bounds."""
    patients_only = _as(network, "user/Patient.rs")
    refused = network.get("/fhir/Patient?_has:Observation:subject:code=8867-4",
                          headers=patients_only)
    assert refused.status_code == 403
    assert network.get("/fhir/Observation?subject:Patient.name=王",
                       headers=_as(network, "user/Observation.rs")).status_code == 403
    mine = _as(network, "patient/*.rs", patient="p1")
    # Another patient's name does not reveal their hospital, nor their records.
    assert _ids(network.get("/fhir/Organization?_has:Patient:organization:name=张",
                            headers=mine)) == {"zju1"}
    assert _ids(network.get("/fhir/Observation?subject:Patient.name=王", headers=mine)) == set()
    doctor = _staff(network)
    assert _ids(network.get("/fhir/Organization?_has:Patient:organization:name=王",
                            headers=doctor)) == set()
    # The audit events are not reached through another type either.
    everything = _as(network, "user/*.rs")
    assert network.get("/fhir/Organization?_has:AuditEvent:entity:action=R",
                       headers=everything).status_code == 403


def test_a_patient_token_reads_the_directory_and_nothing_else_outside_its_record(
        network: TestClient) -> None:
    task = {"resourceType": "Task", "id": "t2", "status": "requested", "intent": "order",
            "for": {"reference": "Patient/p2"}, "description": "p2 secret"}
    assert network.put("/fhir/Task/t2", json=task, headers=FHIR_JSON).status_code == 201
    mine = _as(network, "patient/*.cruds", patient="p1")
    assert network.get("/fhir/Task/t2", headers=mine).status_code == 404
    assert _ids(network.get("/fhir/Task", headers=mine)) == set()
    assert network.get("/fhir/Organization/zju1", headers=mine).status_code == 200
    org = {"resourceType": "Organization", "id": "zju1", "name": "renamed by a patient"}
    assert network.put("/fhir/Organization/zju1", json=org,
                       headers={**FHIR_JSON, **mine}).status_code == 404


def test_a_deleted_resource_is_not_new_to_a_bound_caller(network: TestClient) -> None:
    assert network.delete("/fhir/Observation/o2").status_code in (200, 204)
    doctor = _staff(network)
    moved = network.put("/fhir/Observation/o2", json=_observation("o2", "p1"),
                        headers={**FHIR_JSON, **doctor})
    assert moved.status_code == 404
    assert network.get("/fhir/Observation/o2/_history/1", headers=doctor).status_code == 404


def test_system_history_leaves_out_audit_events_for_star_grants(network: TestClient) -> None:
    sent = {"resourceType": "AuditEvent", "id": "ae1", "type": {"code": "rest"},
            "recorded": "2026-11-24T08:00:00Z", "agent": [{"requestor": True}],
            "source": {"observer": {"display": "LIS"}}}
    assert network.put("/fhir/AuditEvent/ae1", json=sent, headers=FHIR_JSON).status_code == 201
    history = network.get("/fhir/_history?_count=100", headers=_as(network, "user/*.rs"))
    types = {e["resource"]["resourceType"] for e in history.json()["entry"] if "resource" in e}
    assert "AuditEvent" not in types and "Patient" in types


def test_break_glass_with_odd_minutes_is_a_400(network: TestClient) -> None:
    answer = network.post("/auth/break-glass", headers=_staff(network), data={
        "patient": "p2", "reason": "unconscious in the ED, no record", "minutes": "²"})
    assert answer.status_code == 400


def test_a_staff_transaction_may_register_a_patient_and_record_about_them(
        network: TestClient) -> None:
    """POSTs run before PUTs: what a transaction writes is checked once it is all done."""
    doctor = _staff(network)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        put_entry({"resourceType": "Patient", "id": "p9",
                   "managingOrganization": {"reference": "Organization/zju1"}}),
        {"resource": _observation("x", "p9"), "request": {"method": "POST",
                                                          "url": "Observation"}}]}
    answer = network.post("/fhir", json=bundle, headers={**FHIR_JSON, **doctor})
    assert answer.status_code == 200, answer.text
    other = {**bundle, "entry": [
        put_entry({"resourceType": "Patient", "id": "p10"}),
        {"resource": _observation("x", "p10"), "request": {"method": "POST",
                                                           "url": "Observation"}}]}
    assert network.post("/fhir", json=other, headers={**FHIR_JSON, **doctor}).status_code == 403
    assert network.get("/fhir/Patient/p10").status_code == 404


def test_a_patient_consent_can_withdraw_a_hospital(network: TestClient) -> None:
    consent = {"resourceType": "Consent", "id": "no-zju1", "status": "active",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                               "consentscope", "code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": {"reference": "Patient/p1"},
               "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                    "v3-ActCode", "code": "OPTOUT"}]},
               "provision": {"type": "deny",
                             "actor": [{"role": {"coding": [{
                                 "system": "http://terminology.hl7.org/CodeSystem/"
                                           "v3-ParticipationType", "code": "PRCP"}]},
                                 "reference": {"reference": "Organization/zju1"}}]}}
    doctor = _staff(network)
    assert network.get("/fhir/Patient/p1", headers=doctor).status_code == 200
    assert network.put("/fhir/Consent/no-zju1", json=consent,
                       headers=FHIR_JSON).status_code == 201
    assert network.get("/fhir/Patient/p1", headers=doctor).status_code == 404
    assert _ids(network.get("/fhir/Observation", headers=doctor)) == set()
    # A permit changes nothing; an inactive deny neither.
    permit = {**consent, "provision": {**consent["provision"], "type": "permit"}}
    assert network.put("/fhir/Consent/no-zju1", json=permit,
                       headers=FHIR_JSON).status_code == 200
    assert network.get("/fhir/Patient/p1", headers=doctor).status_code == 200
    assert network.put("/fhir/Consent/no-zju1", json=consent,
                       headers=FHIR_JSON).status_code == 200
    # An emergency opens it all the same, on the record.
    opened = network.post("/auth/break-glass", headers=doctor, data={
        "patient": "p1", "reason": "anaphylaxis in the ED, consent on file denies"})
    assert opened.status_code == 200
    assert network.get("/fhir/Patient/p1", headers=doctor).status_code == 200


def test_closed_referrals_open_nothing_after_the_care_window(network: TestClient) -> None:
    old = {"resourceType": "ServiceRequest", "id": "old-referral", "status": "completed",
           "intent": "order", "subject": {"reference": "Patient/p2"},
           "authoredOn": "2020-01-01", "performer": [{"reference": "Organization/zju1"}]}
    assert network.put("/fhir/ServiceRequest/old-referral", json=old,
                       headers=FHIR_JSON).status_code == 201
    doctor = _staff(network)
    assert network.get("/fhir/Patient/p2", headers=doctor).status_code == 404
    recent = {**old, "authoredOn": utc_today()}
    assert network.put("/fhir/ServiceRequest/old-referral", json=recent,
                       headers=FHIR_JSON).status_code == 200
    assert network.get("/fhir/Patient/p2", headers=doctor).status_code == 200


def utc_today() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).date().isoformat()


def test_earlier_versions_about_another_patient_stay_hidden(network: TestClient) -> None:
    """From a review: an Observation moved from p2 (not the doctor's) to p1 (theirs) keeps
    p2's data in its first version."""
    assert network.put("/fhir/Observation/moved", json=_observation("moved", "p2"),
                       headers=FHIR_JSON).status_code == 201
    assert network.put("/fhir/Observation/moved", json=_observation("moved", "p1"),
                       headers=FHIR_JSON).status_code == 200
    doctor = _staff(network)
    history = network.get("/fhir/Observation/moved/_history", headers=doctor).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2"]
    assert network.get("/fhir/Observation/moved/_history/1", headers=doctor).status_code == 404
    assert network.get("/fhir/Observation/moved/_history/2", headers=doctor).status_code == 200
    everything = network.get("/fhir/Observation/moved/_history").json()
    assert len(everything["entry"]) == 2  # unbound callers see both
