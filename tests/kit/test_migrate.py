"""The migrations build exactly the schema `yilian.fhir.store.tables` declares."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert

import yilian.auth.tables
import yilian.domains.inpatient.tables  # noqa: F401  (every module of tables, as env.py)
from yilian.fhir.store.tables import idx_reference, metadata, resource
from yilian.kit.clock import utcnow
from yilian.kit.db import make_engine
from yilian.kit.migrate import current_revision, head_revision, upgrade


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrading_data_indexed_before_references_by_identifier_says_to_reindex(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    try:
        upgrade(engine, "0013")
        with engine.begin() as conn:
            pk = conn.execute(insert(resource).values(
                res_type="Observation", res_id="o1", version=1, deleted=False,
                last_updated=utcnow())).inserted_primary_key[0]
            conn.execute(insert(idx_reference).values(
                resource_pk=pk, res_type="Observation", param="subject",
                target_type="Patient", target_id="p1"))
        with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
            upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert "yilian search reindex" in caplog.text
    finally:
        engine.dispose()


def test_upgrading_an_empty_store_says_nothing(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
            upgrade(engine)
        assert "reindex" not in caplog.text
    finally:
        engine.dispose()
