"""The migrations build exactly the schema `yilian.fhir.store.tables` declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import yilian.auth.tables
import yilian.domains.inpatient.tables  # noqa: F401  (every module of tables, as env.py)
from yilian.fhir.store.tables import metadata
from yilian.kit.db import make_engine


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []
