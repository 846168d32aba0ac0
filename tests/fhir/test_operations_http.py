"""Operations: $validate, and how unknown operations are answered."""

from __future__ import annotations

from fhir_helpers import FHIR_JSON, patient
from starlette.testclient import TestClient


def test_validate_a_valid_resource(client: TestClient) -> None:
    response = client.post("/fhir/Patient/$validate", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 200
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["severity"] for i in outcome["issue"]] == ["information"]


def test_validate_reports_faults_with_200(client: TestClient) -> None:
    body = {"resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": patient(gender="xyz")}]}
    response = client.post("/fhir/Patient/$validate", json=body, headers=FHIR_JSON)
    assert response.status_code == 200
    issues = response.json()["issue"]
    assert any(i["severity"] == "error" and i["expression"] == ["Patient.gender"]
               for i in issues)
    assert client.get("/fhir/Patient/_history").json().get("entry") is None  # nothing written


def test_validate_modes(client: TestClient) -> None:
    client.put("/fhir/Patient/v1", json=patient(id="v1"), headers=FHIR_JSON)
    wrong_id = {"resourceType": "Parameters", "parameter": [
        {"name": "mode", "valueCode": "update"},
        {"name": "resource", "resource": patient(id="other")}]}
    issues = client.post("/fhir/Patient/v1/$validate", json=wrong_id,
                         headers=FHIR_JSON).json()["issue"]
    assert issues[0]["expression"] == ["Patient.id"]
    delete = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]}
    assert client.post("/fhir/Patient/v1/$validate", json=delete,
                       headers=FHIR_JSON).status_code == 200
    assert client.post("/fhir/Patient/none/$validate", json=delete,
                       headers=FHIR_JSON).status_code == 404
    bad_mode = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "x"}]}
    assert client.post("/fhir/Patient/$validate", json=bad_mode,
                       headers=FHIR_JSON).status_code == 400


def test_validate_type_mismatch(client: TestClient) -> None:
    response = client.post("/fhir/Observation/$validate", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 200
    assert response.json()["issue"][0]["severity"] == "error"


def test_unknown_operation_is_404_not_supported(client: TestClient) -> None:
    response = client.post("/fhir/ValueSet/$lookup", headers=FHIR_JSON,
                           json={"resourceType": "Parameters"})
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-supported"
    assert "$lookup" in response.json()["issue"][0]["diagnostics"]
    assert client.post("/fhir/$nothing", json={"resourceType": "Parameters"},
                       headers=FHIR_JSON).status_code == 404
    assert client.delete("/fhir/Patient/$validate").status_code == 405
