"""The Synthea bundles in shared/data/synthea-r4 load through POST /fhir as transactions."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SHARED_DATA
from starlette.testclient import TestClient

SYNTHEA = SHARED_DATA / "synthea-r4"


def synthea_bundles() -> list[Path]:
    if not SYNTHEA.exists():
        return []
    return sorted(p for p in SYNTHEA.iterdir() if p.name != "LICENSE")


@pytest.mark.slow
def test_synthea_bundles_load_as_transactions(client: TestClient) -> None:
    bundles = synthea_bundles()
    if not bundles:
        pytest.skip(f"the Synthea sample data is missing at {SYNTHEA}")
    created = 0
    for path in bundles:
        response = client.post("/fhir", content=path.read_bytes(),
                               headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 200, f"{path.name}: {response.text[:500]}"
        statuses = {e["response"]["status"] for e in response.json()["entry"]}
        assert statuses == {"201 Created"}, path.name
        created += len(response.json()["entry"])
    assert created == 8598
    # References were rewritten to the server's ids: an Observation's subject resolves.
    page = client.get("/fhir/Observation?_count=1").json()
    subject = page["entry"][0]["resource"]["subject"]["reference"]
    assert subject.startswith("Patient/")
    assert client.get(f"/fhir/{subject}").status_code == 200
    # And the search indexes were written: the patient's observations can be found by it.
    found = client.get(f"/fhir/Observation?subject={subject}&_count=500").json()
    assert len(found["entry"]) >= 1
