"""The official transaction and batch example Bundles (hl7.fhir.r4.examples@4.0.1)."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import FHIR_JSON
from r4_examples import EXAMPLES
from starlette.testclient import TestClient

from yilian.kit import jsonfmt


def official(name: str) -> Any:
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"the official examples are missing at {EXAMPLES}: run `make examples`")
    return jsonfmt.loads(path.read_bytes())


def post(client: TestClient, bundle: Any) -> Any:
    return client.post("/fhir", content=jsonfmt.dumps(bundle), headers=FHIR_JSON)


def prepare_transaction_example(client: TestClient) -> None:
    """What Bundle-bundle-transaction.json assumes exists: Patient/123a at version 2,
    Patient/234 to delete, Patient/12334 at version 4, a patient with identifier 123456."""
    base = {"resourceType": "Patient", "active": True}
    for version in range(2):
        client.put("/fhir/Patient/123a", headers=FHIR_JSON,
                   json={**base, "id": "123a", "birthDate": f"197{version}-01-01"})
    client.put("/fhir/Patient/234", json={**base, "id": "234"}, headers=FHIR_JSON)
    for version in range(4):
        client.put("/fhir/Patient/12334", headers=FHIR_JSON,
                   json={**base, "id": "12334", "birthDate": f"198{version}-01-01"})
    client.post("/fhir/Patient", headers=FHIR_JSON,
                json={**base, "identifier": [{"value": "123456"}]})


def test_transaction_example_refuses_its_unknown_operation(client: TestClient) -> None:
    """Entry 7 POSTs to ValueSet/$lookup: R4 defines $lookup on CodeSystem only, so the whole
    transaction fails, names the entry, and writes nothing."""
    prepare_transaction_example(client)
    response = post(client, official("Bundle-bundle-transaction.json"))
    assert response.status_code == 404
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[7]"]
    assert "$lookup" in issue["diagnostics"]
    assert client.get("/fhir/Patient/234").status_code == 200  # the DELETE was rolled back


def test_transaction_example_without_the_lookup(client: TestClient) -> None:
    prepare_transaction_example(client)
    bundle = official("Bundle-bundle-transaction.json")
    del bundle["entry"][7]
    response = post(client, bundle)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == [
        "201 Created",  # POST Patient
        "201 Created",  # POST Patient ifNoneExist (no match yet)
        "201 Created",  # PUT Patient/123 (update-as-create)
        "201 Created",  # conditional PUT, no match
        "200 OK",  # PUT Patient/123a with ifMatch W/"2"
        "204 No Content",  # DELETE Patient/234
        "204 No Content",  # conditional DELETE identifier=123456
        "200 OK",  # GET Patient?name=peter
        "304 Not Modified",  # GET Patient/12334 with ifNoneMatch W/"4"
    ]
    assert client.get("/fhir/Patient/234").status_code == 410
    assert client.get("/fhir/Patient/123a").json()["meta"]["versionId"] == "3"
    searchset = response.json()["entry"][7]["resource"]
    assert searchset["type"] == "searchset"
    assert len(searchset["entry"]) == 5  # the five Peters this transaction wrote
    # Sent again, the ifNoneExist entry now finds its patient instead of creating one.
    again = official("Bundle-bundle-transaction.json")
    del again["entry"][7]
    for entry in again["entry"]:
        entry["request"].pop("ifMatch", None)
    result = post(client, again)
    assert result.status_code == 200, result.text
    assert result.json()["entry"][1]["response"]["status"] == "200 OK"


@pytest.mark.parametrize("name", ["Bundle-hla-1.json", "Bundle-xds.json", "Bundle-ussg-fht.json"])
def test_other_transaction_examples(client: TestClient, name: str) -> None:
    bundle = official(name)
    response = post(client, bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert len(entries) == len(bundle["entry"])
    assert all(e["response"]["status"] in ("200 OK", "201 Created") for e in entries)


@pytest.mark.parametrize("name", ["Bundle-bundle-request-simplesummary.json",
                                  "Bundle-bundle-request-medsallergies.json"])
def test_batch_examples(client: TestClient, name: str) -> None:
    patient = official("Patient-example.json")
    assert client.put("/fhir/Patient/example", content=jsonfmt.dumps(patient),
                      headers=FHIR_JSON).status_code == 201
    response = post(client, official(name))
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK"
    assert entries[0]["resource"]["id"] == "example"
    for entry in entries[1:]:
        assert entry["response"]["status"] == "200 OK"
        assert entry["resource"]["type"] == "searchset"
