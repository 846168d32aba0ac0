"""The app's routing table: /fhir and everything under it go to the FHIR endpoint, except
SMART's configuration; the same under a root path (behind a proxy that strips a prefix)."""

from __future__ import annotations

from fhir_helpers import authorized, patient
from starlette.testclient import TestClient

from yilian.api.app import create_app
from yilian.config import Settings


def test_fhir_paths_reach_the_fhir_endpoint_and_only_them(client: TestClient) -> None:
    smart = client.get("/fhir/.well-known/smart-configuration")
    assert smart.status_code == 200 and "token_endpoint" in smart.json()
    transaction = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch",
                                             "entry": []})
    assert transaction.status_code == 200
    assert transaction.json()["type"] == "batch-response"
    assert client.get("/fhir/").status_code == 200  # the base: a system search
    assert client.get("/fhir/metadata").json()["resourceType"] == "CapabilityStatement"
    elsewhere = client.get("/fhirx/Patient")
    assert elsewhere.status_code == 404 and "YL-1117" in elsewhere.text


def test_under_a_root_path_fhir_links_keep_the_prefix(settings: Settings) -> None:
    """`yilian serve` behind a proxy at /yilian (uvicorn --root-path): paths arrive whole,
    the root path beside them (ASGI), and answers link back under the prefix (no base URL
    configured: links follow the request)."""
    app = create_app(Settings(database_url=settings.database_url))
    try:
        with TestClient(app, base_url="http://testserver", root_path="/yilian") as raw:
            client = authorized(raw)
            created = client.post("/yilian/fhir/Patient", json=patient(family="Rooted"))
            assert created.status_code == 201
            assert created.headers["location"].startswith(
                "http://testserver/yilian/fhir/Patient/")
            read = client.get(f"/yilian/fhir/Patient/{created.json()['id']}")
            assert read.status_code == 200 and read.json()["name"][0]["family"] == "Rooted"
            smart = client.get("/yilian/fhir/.well-known/smart-configuration").json()
            assert smart["token_endpoint"].startswith("http://testserver/yilian/")
    finally:
        app.state.engine.dispose()
