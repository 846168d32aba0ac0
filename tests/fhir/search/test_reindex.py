"""`yilian search reindex`: index rows rebuilt from the stored resources, on both databases."""

from __future__ import annotations

from typing import Any

from fhir_helpers import FHIR_JSON
from sqlalchemy import Engine, delete, func, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from yilian.cli.main import app
from yilian.fhir.store.tables import INDEX_TABLES

runner = CliRunner()


def _index_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every index row but its id, sorted: what a reindex must reproduce exactly."""
    found = {}
    with engine.connect() as conn:
        for name, table in INDEX_TABLES.items():
            columns = [c for c in table.columns if c.name != "id"]
            found[name] = sorted(tuple(str(v) for v in row) for row in conn.execute(
                select(*columns)))
    return found


def _ids(client: TestClient, query: str) -> set[str]:
    bundle = client.get(f"/fhir/{query}").json()
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def test_reindex_rebuilds_what_was_lost(client: TestClient, engine: Engine,
                                        database_url: str) -> None:
    entries = [{"resource": r, "request": {"method": "PUT",
                                           "url": f"{r['resourceType']}/{r['id']}"}}
               for r in (
                   {"resourceType": "Patient", "id": "p1", "name": [{"family": "张"}],
                    "identifier": [{"system": "urn:yilian:mrn", "value": "M1"}]},
                   {"resourceType": "Patient", "id": "p2", "name": [{"family": "王"}]},
                   {"resourceType": "Observation", "id": "o1", "status": "final",
                    "code": {"text": "pulse"}, "subject": {"reference": "Patient/p1"},
                    "effectiveDateTime": "2024-05-01"},
               )]
    response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                          "entry": entries}, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    assert client.delete("/fhir/Patient/p2").status_code in (200, 204)
    written = _index_rows(engine)

    # The index rows of every Patient lost (as when a search parameter is added).
    with engine.begin() as conn:
        for table in INDEX_TABLES.values():
            conn.execute(delete(table).where(table.c.res_type == "Patient"))
    assert _ids(client, "Patient?identifier=urn:yilian:mrn|M1") == set()

    result = runner.invoke(app, ["search", "reindex", "--db", database_url,
                                 "--type", "Patient"])
    assert result.exit_code == 0, result.output
    assert "reindexed 1 resources of Patient" in result.output  # p2 is deleted
    assert _ids(client, "Patient?identifier=urn:yilian:mrn|M1") == {"p1"}
    assert _ids(client, "Patient?family=张") == {"p1"}
    assert _index_rows(engine) == written

    # All types: the same rows again, none doubled.
    result = runner.invoke(app, ["search", "reindex", "--db", database_url])
    assert result.exit_code == 0, result.output
    assert "reindexed 2 resources" in result.output
    assert _index_rows(engine) == written
    with engine.connect() as conn:
        observation_rows = conn.execute(select(func.count()).select_from(
            INDEX_TABLES["date"]).where(INDEX_TABLES["date"].c.res_type == "Observation"))
        assert observation_rows.scalar_one() >= 1


def test_reindex_refuses_an_unknown_type(database_url: str) -> None:
    result = runner.invoke(app, ["search", "reindex", "--db", database_url, "--type", "Patien"])
    assert result.exit_code == 2
    assert "Unknown resource type: Patien" in result.output
