"""The extracted rows go into the store's idx_* tables as they are, on SQLite and PostgreSQL:
column names, widths, NOT NULLs, numeric precision and time zones all fit."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from search_examples import example, instances
from sqlalchemy import func, insert, select

from yilian.fhir.search.extract import extract_index_rows
from yilian.fhir.search.rows import ROW_TYPES
from yilian.fhir.store.bulk import BulkInsert
from yilian.fhir.store.tables import INDEX_TABLES, idx_date, idx_quantity, idx_token, resource
from yilian.kit.db import make_engine, write_transaction
from yilian.kit.hashing import hash64


def test_every_example_s_rows_insert_and_read_back(database_url: str) -> None:
    engine = make_engine(database_url)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    expected: dict[str, int] = dict.fromkeys(INDEX_TABLES, 0)
    try:
        with write_transaction(engine) as conn:
            for number, item in enumerate(instances()):
                res_type = item["resourceType"]
                pk = conn.execute(
                    insert(resource)
                    .values(
                        res_type=res_type,
                        res_id=f"r{number}",
                        version=1,
                        last_updated=now,
                        deleted=False,
                    )
                    .returning(resource.c.pk)
                ).scalar_one()
                for table, found in extract_index_rows(item).items():
                    if found:
                        rows = [{**row._asdict(), "resource_pk": pk, "res_type": res_type}
                                for row in found]
                        conn.execute(insert(INDEX_TABLES[table]), rows)
                        expected[table] += len(found)
        with engine.connect() as conn:
            for table, count in expected.items():
                stored = conn.execute(select(func.count()).select_from(INDEX_TABLES[table]))
                assert stored.scalar_one() == count, table
            # Patient-example's birth date and gender come back as written.
            patient = example("Patient-example.json")
            birth = conn.execute(
                select(idx_date.c.low, idx_date.c.high).where(
                    idx_date.c.res_type == "Patient", idx_date.c.param == "birthdate",
                    idx_date.c.low == datetime(1974, 12, 24, 16, tzinfo=UTC),
                )
            ).first()  # fmt: skip
            assert birth is not None
            assert tuple(birth) == (
                datetime(1974, 12, 24, 16, tzinfo=UTC),
                datetime(1974, 12, 25, 15, 59, 59, 999999, tzinfo=UTC),
            )
            assert patient["gender"] == "male"
            males = conn.execute(
                select(func.count()).where(
                    idx_token.c.hash_code == hash64("Patient", "gender", "male")
                )
            ).scalar_one()
            assert males >= 1
            # Observation-f001's 6.3 mmol/L keeps its decimals.
            glucose = conn.execute(
                select(idx_quantity.c.value, idx_quantity.c.low, idx_quantity.c.high).where(
                    idx_quantity.c.param == "value-quantity", idx_quantity.c.code == "mmol/L",
                    idx_quantity.c.value == Decimal("6.3"),
                )
            ).first()  # fmt: skip
            assert glucose is not None
            assert tuple(glucose) == (Decimal("6.3"), Decimal("6.25"), Decimal("6.35"))
    finally:
        engine.dispose()


def test_row_fields_are_the_columns_the_store_inserts_in_order() -> None:
    """Rows go to the driver as tuples (store.bulk): a field out of order would put values
    in the wrong columns."""
    for name, table in INDEX_TABLES.items():
        fields = ROW_TYPES[name]._fields  # type: ignore[attr-defined]
        assert fields == tuple(BulkInsert(table, ("resource_pk", "res_type")).rest), name
