"""A real FHIR client library (fhirpy) drives the server: create, read, update, history,
search."""

from __future__ import annotations

from fhirpy import SyncFHIRClient


def test_fhirpy_create_read_update_history_search(
        live_server: str, live_headers: dict[str, str]) -> None:
    client = SyncFHIRClient(
        live_server, extra_headers={"Content-Type": "application/fhir+json", **live_headers})
    created = client.resource(
        "Patient",
        name=[{"family": "李", "given": ["小龙"]}],
        gender="male",
        identifier=[{"system": "http://hospital.example/mrn", "value": "FP-1"}],
    )
    created.save()
    assert created.id
    assert created["meta"]["versionId"] == "1"

    fetched = client.reference("Patient", created.id).to_resource()
    assert fetched["name"][0]["family"] == "李"

    fetched["gender"] = "female"
    fetched.save()
    assert fetched["meta"]["versionId"] == "2"

    history = client.resources("Patient").search(_id=created.id).fetch_all()
    assert [p.id for p in history] == [created.id]

    found = client.resources("Patient").search(identifier="http://hospital.example/mrn|FP-1")
    results = found.fetch()
    assert len(results) == 1
    assert results[0]["gender"] == "female"

    versions = client.execute(f"Patient/{created.id}/_history", method="get")
    assert [e["response"]["etag"] for e in versions["entry"]] == ['W/"2"', 'W/"1"']

    fetched.delete()
    assert client.resources("Patient").search(_id=created.id).fetch() == []
