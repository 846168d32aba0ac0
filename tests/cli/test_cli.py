"""The `yilian` command: db upgrade and load (files, Bundles, NDJSON, with a summary)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from yilian.cli.main import app
from yilian.fhir.store.tables import resource
from yilian.kit.db import make_engine
from yilian.kit.migrate import head_revision

runner = CliRunner()


def test_db_upgrade_creates_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert result.exit_code == 0, result.output
    assert f"revision {head_revision()}" in result.output
    assert head_revision() == "0018"
    assert "8 OperationDefinitions stored" in result.output  # $admit ..., $audit-trail
    again = runner.invoke(app, ["db", "upgrade", "--db", url])  # idempotent
    assert again.exit_code == 0


def test_load_files_bundles_and_ndjson(database_url: str, tmp_path: Path) -> None:
    single = tmp_path / "patient.json"
    single.write_text(json.dumps({"resourceType": "Patient", "id": "load-1", "gender": "male"}))
    collection = tmp_path / "collection.json"
    collection.write_text(json.dumps({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "gender": "female"}},
                  {"resource": {"resourceType": "Patient", "id": "load-2"}}],
    }))
    transaction = tmp_path / "tx.json"
    transaction.write_text(json.dumps({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{"resource": {"resourceType": "Patient"},
                   "request": {"method": "POST", "url": "Patient"}}],
    }))
    ndjson = tmp_path / "more.ndjson"
    ndjson.write_text(
        json.dumps({"resourceType": "Patient", "id": "nd-1"}) + "\n"
        + json.dumps({"resourceType": "Patient", "id": "nd-2", "gender": "xyz"}) + "\n"
        + "{not json\n"
    )
    result = runner.invoke(app, ["load", str(tmp_path), "--db", database_url])
    assert result.exit_code == 1, result.output  # two lines failed
    assert "created 5, updated 0, failed 2" in result.output
    assert "more.ndjson:2" in result.output
    assert "Patient.gender" in result.output
    assert "more.ndjson:3" in result.output

    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(resource)).scalar_one() == 5
    engine.dispose()

    single_again = runner.invoke(app, ["load", str(single), "--db", database_url])
    assert single_again.exit_code == 0
    assert "created 0, updated 1, failed 0" in single_again.output


def test_load_bundles_of_every_kind(database_url: str, tmp_path: Path) -> None:
    """A batch's failed entries each with their reason; a collection's references to each
    other resolved; a history replayed oldest first; a searchset's outcome not stored."""
    patient_url = "urn:uuid:0b1d5c2e-6f3a-4b8e-9c7d-1e2f3a4b5c6d"
    documents = {
        "batch.json": {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Patient", "id": "b1"},
             "request": {"method": "PUT", "url": "Patient/b1"}},
            {"resource": {"resourceType": "Patient", "id": "b2", "gender": "xyz"},
             "request": {"method": "PUT", "url": "Patient/b2"}},
            {"request": {"method": "GET", "url": "Patient/b1"}},
            {"request": {"method": "DELETE", "url": "Patient/b1"}}]},
        "collection.json": {"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": patient_url, "resource": {"resourceType": "Patient"}},
            {"resource": {"resourceType": "Observation", "id": "c-obs", "status": "final",
                          "code": {"text": "x"}, "subject": {"reference": patient_url}}}]},
        "history.json": {"resourceType": "Bundle", "type": "history", "entry": [
            {"request": {"method": "DELETE", "url": "Patient/h2"}},
            {"resource": {"resourceType": "Patient", "id": "h2"},
             "request": {"method": "PUT", "url": "Patient/h2"}},
            {"resource": {"resourceType": "Patient", "id": "h1", "gender": "female"},
             "request": {"method": "PUT", "url": "Patient/h1"}},
            {"resource": {"resourceType": "Patient", "id": "h1", "gender": "male"},
             "request": {"method": "POST", "url": "Patient"}}]},
        "searchset.json": {"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "Patient", "id": "s1"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "OperationOutcome", "id": "note", "issue": [
                {"severity": "warning", "code": "informational"}]},
             "search": {"mode": "outcome"}}]},
        "typeless.json": {"id": "abc"},
    }
    for name, document in documents.items():
        (tmp_path / name).write_text(json.dumps(document))
    result = runner.invoke(app, ["load", str(tmp_path), "--db", database_url])
    assert result.exit_code == 1, result.output
    # batch: b1 created, b2 failed, read, deleted; collection: 2 created; history: h1
    # created then updated, h2 created then deleted; searchset: s1; the typeless file failed.
    assert "created 6, updated 1, failed 2, deleted 2, read 1" in result.output
    assert "batch.json entry 1: 422" in result.output and "gender" in result.output
    assert "typeless.json: not a FHIR resource: it has no resourceType" in result.output

    engine = make_engine(database_url)
    with engine.connect() as conn:
        stored = {(row.res_type, row.res_id): row for row in conn.execute(
            select(resource.c.res_type, resource.c.res_id, resource.c.deleted))}
    engine.dispose()
    assert stored[("Patient", "h2")].deleted and stored[("Patient", "b1")].deleted
    assert ("OperationOutcome", "note") not in stored
    from yilian.fhir.store.sql import read_current
    from yilian.kit import jsonfmt
    from yilian.kit.db import read_transaction

    engine = make_engine(database_url)
    with read_transaction(engine) as conn:
        h1 = read_current(conn, "Patient", "h1")
        observation = read_current(conn, "Observation", "c-obs")
    engine.dispose()
    assert h1 is not None and h1.content is not None and h1.version == 2
    assert jsonfmt.loads(h1.content)["gender"] == "female"  # the newest, listed first
    assert observation is not None and observation.content is not None
    subject = jsonfmt.loads(observation.content)["subject"]["reference"]
    assert subject.startswith("Patient/") and ("Patient", subject[8:]) in stored


def test_load_missing_file(database_url: str) -> None:
    result = runner.invoke(app, ["load", "/nonexistent/file.json", "--db", database_url])
    assert result.exit_code == 2
