"""References to this server's resources and to other servers', on SQLite and PostgreSQL.

R4 search §3.1.1.4.10: "A relative reference resolving to the same value as a specified
absolute URL, or vice versa, qualifies as a match": an absolute reference under this
server's base is one of its own resources; under any other base it is another server's,
whose Patient/p1 is not this one's, for searches, chains, includes, `_has`, compartments and
access control alike.
"""

from __future__ import annotations

from fhir_helpers import FHIR_JSON, put_all
from starlette.testclient import TestClient

BASE = "http://testserver/fhir"  # the tests' server (conftest's settings)
ELSEWHERE = "http://elsewhere.org/fhir"


def _observation(obs_id: str, subject: str) -> dict[str, object]:
    return {"resourceType": "Observation", "id": obs_id, "status": "final",
            "code": {"text": "pulse"}, "subject": {"reference": subject}}


def _ids(client: TestClient, query: str, mode: str = "match") -> list[str]:
    answer = client.get(f"/fhir/{query}")
    assert answer.status_code == 200, answer.text
    return sorted(e["resource"]["id"] for e in answer.json().get("entry", [])
                  if e["search"]["mode"] == mode)


def test_another_servers_patient_is_not_this_ones(client: TestClient) -> None:
    put_all(client, [
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "Alpha"}]},
        _observation("relative", "Patient/p1"),
        _observation("absolute", f"{BASE}/Patient/p1"),
        _observation("remote", f"{ELSEWHERE}/Patient/p1"),
    ])
    ours = ["absolute", "relative"]
    assert _ids(client, "Observation?subject=Patient/p1") == ours
    assert _ids(client, f"Observation?subject={BASE}/Patient/p1") == ours
    assert _ids(client, "Observation?subject=p1") == ours
    assert _ids(client, f"Observation?subject={ELSEWHERE}/Patient/p1") == ["remote"]
    assert _ids(client, "Observation?subject:Patient.name=alpha") == ours
    assert _ids(client, "Observation?patient=p1") == ours
    assert _ids(client, "Patient?_id=p1&_revinclude=Observation:subject", "include") == ours
    assert _ids(client, "Observation?_id=remote&_include=Observation:subject",
                "include") == []
    assert _ids(client, "Observation?_id=absolute&_include=Observation:subject",
                "include") == ["p1"]
    assert _ids(client, "Patient?_has:Observation:subject:_id=remote") == []
    assert _ids(client, "Patient?_has:Observation:subject:_id=absolute") == ["p1"]
    assert _ids(client, "Patient/p1/Observation") == ours


def test_reindexing_keeps_the_distinction(client: TestClient, database_url: str) -> None:
    from typer.testing import CliRunner

    from yilian.cli.main import app

    put_all(client, [_observation("remote", f"{ELSEWHERE}/Patient/p1"),
                     _observation("relative", "Patient/p1")])
    result = CliRunner().invoke(app, ["search", "reindex", "--db", database_url],
                                env={"YILIAN_BASE_URL": BASE})
    assert result.exit_code == 0, result.output
    assert _ids(client, "Observation?subject=Patient/p1") == ["relative"]
    created = client.post("/fhir/Observation", json=_observation("x", f"{ELSEWHERE}/Patient/p1"),
                          headers=FHIR_JSON)
    assert created.status_code == 201
    assert _ids(client, "Observation?subject=Patient/p1") == ["relative"]
