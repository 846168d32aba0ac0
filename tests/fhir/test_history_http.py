"""History at instance, type and system level: versions newest first, paging by cursor."""

from __future__ import annotations

import time

from fhir_helpers import FHIR_JSON, patient
from starlette.testclient import TestClient


def test_instance_history_lists_every_version(client: TestClient) -> None:
    client.put("/fhir/Patient/h1", json=patient(id="h1"), headers=FHIR_JSON)
    client.put("/fhir/Patient/h1", json=patient(id="h1", gender="female"), headers=FHIR_JSON)
    client.delete("/fhir/Patient/h1")
    bundle = client.get("/fhir/Patient/h1/_history").json()
    assert bundle["type"] == "history"
    entries = bundle["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "PUT"]
    assert "resource" not in entries[0]
    assert entries[1]["resource"]["gender"] == "female"
    assert entries[2]["response"]["status"] == "201 Created"
    assert entries[0]["fullUrl"] == "http://testserver/fhir/Patient/h1"


def test_history_of_unknown_resource_is_404(client: TestClient) -> None:
    assert client.get("/fhir/Patient/none/_history").status_code == 404


def test_type_and_system_history_with_paging(client: TestClient) -> None:
    for number in range(5):
        client.put(f"/fhir/Patient/t{number}", json=patient(id=f"t{number}"), headers=FHIR_JSON)
    client.post("/fhir/Observation", headers=FHIR_JSON, json={
        "resourceType": "Observation", "status": "final", "code": {"text": "体温"}})
    type_history = client.get("/fhir/Patient/_history").json()
    assert len(type_history["entry"]) == 5
    assert {e["resource"]["resourceType"] for e in type_history["entry"]} == {"Patient"}

    seen: list[str] = []
    url: str | None = "/fhir/_history?_count=2"
    pages = 0
    while url:
        page = client.get(url.replace("http://testserver", "")).json()
        pages += 1
        seen.extend(e["fullUrl"] for e in page.get("entry", []))
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert pages == 3
    assert len(seen) == 6
    assert len(set(seen)) == 6


def test_history_since(client: TestClient) -> None:
    client.put("/fhir/Patient/s1", json=patient(id="s1"), headers=FHIR_JSON)
    time.sleep(0.01)
    marker = client.put("/fhir/Patient/s2", json=patient(id="s2"), headers=FHIR_JSON)
    since = marker.json()["meta"]["lastUpdated"]
    bundle = client.get("/fhir/_history", params={"_since": since}).json()
    assert [e["fullUrl"].rsplit("/", 1)[1] for e in bundle["entry"]] == ["s2"]
    empty = client.get("/fhir/_history", params={"_since": "2999-01-01T00:00:00Z"}).json()
    assert "entry" not in empty
    # The time zone's "+" unescaped in the URL, as clients often send it: read as a "+".
    later = client.get("/fhir/_history?_since=2999-01-01T08:00:00+08:00")
    assert later.status_code == 200 and "entry" not in later.json()
    earlier = client.get("/fhir/_history?_since=2000-01-01T08:00:00+08:00").json()
    assert len(earlier["entry"]) == 2


def test_paging_is_stable_when_data_changes(client: TestClient) -> None:
    for number in range(4):
        client.put(f"/fhir/Patient/q{number}", json=patient(id=f"q{number}"), headers=FHIR_JSON)
    first = client.get("/fhir/Patient/_history?_count=2").json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    client.put("/fhir/Patient/q9", json=patient(id="q9"), headers=FHIR_JSON)  # newer entry
    second = client.get(next_url.replace("http://testserver", "")).json()
    first_ids = [e["fullUrl"] for e in first["entry"]]
    second_ids = [e["fullUrl"] for e in second["entry"]]
    assert not set(first_ids) & set(second_ids)
    assert len(first_ids) + len(second_ids) == 4


def test_a_resource_created_again_after_its_deletion_shows_201(client: TestClient) -> None:
    """An entry's response is the interaction's: the PUT that re-created a deleted resource
    answered 201, and its history says so, at instance, type and system level."""
    client.put("/fhir/Patient/re", json=patient(id="re"), headers=FHIR_JSON)
    client.put("/fhir/Patient/re", json=patient(id="re", gender="female"), headers=FHIR_JSON)
    client.delete("/fhir/Patient/re")
    again = client.put("/fhir/Patient/re", json=patient(id="re"), headers=FHIR_JSON)
    assert again.status_code == 201
    for path in ("/fhir/Patient/re/_history", "/fhir/Patient/_history", "/fhir/_history"):
        entries = client.get(path).json()["entry"]
        assert [e["response"]["status"] for e in entries] == [
            "201 Created", "204 No Content", "200 OK", "201 Created"], path
