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
    assert head_revision() == "0013"
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


def test_load_missing_file(database_url: str) -> None:
    result = runner.invoke(app, ["load", "/nonexistent/file.json", "--db", database_url])
    assert result.exit_code == 2
