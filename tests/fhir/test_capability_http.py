"""/fhir/metadata states what the server supports, and nothing it does not."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_capability_statement(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert statement["format"] == ["application/fhir+json", "json"]
    assert statement["implementation"]["url"] == "http://testserver/fhir"
    rest = statement["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {
        "transaction", "batch", "search-system", "history-system"}
    assert rest["compartment"] == ["http://hl7.org/fhir/CompartmentDefinition/patient"]
    resources = {r["type"]: r for r in rest["resource"]}
    assert len(resources) == 146
    patient = resources["Patient"]
    assert {i["code"] for i in patient["interaction"]} == {
        "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
        "create", "search-type",
    }
    assert patient["versioning"] == "versioned-update"
    assert patient["conditionalCreate"] is True
    assert patient["conditionalDelete"] == "single"
    params = {p["name"]: p["type"] for p in patient["searchParam"]}
    assert params["identifier"] == "token"
    assert params["name"] == "string"
    assert params["_id"] == "token"
    assert params["birthdate"] == "date"
    assert params["_lastUpdated"] == "date"
    # Full-text search is not implemented, so it is not claimed.
    assert "_content" not in params and "_text" not in params
    assert [op["name"] for op in patient["operation"]] == ["validate"]
    assert "Patient:organization" in patient["searchInclude"]
    assert "Observation:subject" in patient["searchRevInclude"]


def test_capability_statement_is_valid_r4(client: TestClient) -> None:
    from yilian.fhir.validate import get_validator

    statement = client.get("/fhir/metadata").json()
    errors = [i for i in get_validator().validate(statement) if i.severity == "error"]
    assert errors == []


def test_root_opens_the_pages(client: TestClient) -> None:
    """People start at the pages (the bed board); FHIR clients at /fhir/metadata."""
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/ui/"


def test_the_capability_statement_has_an_etag(client: TestClient) -> None:
    """http.html#capabilities: "An ETag header SHOULD be returned"; a client holding the
    statement already gets 304."""
    first = client.get("/fhir/metadata")
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and client.get("/fhir/metadata").headers["etag"] == etag
    assert client.get("/fhir/metadata", headers={"If-None-Match": etag}).status_code == 304
    other = client.get("/fhir/metadata", headers={"If-None-Match": 'W/"1", W/"2"'})
    assert other.status_code == 200 and other.json() == first.json()
