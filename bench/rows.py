"""Phase 1, ceiling: exactly the rows the server wrote, inserted again with no FHIR work.

The rows are read back from the server's database after its ingestion (outside any timing),
grouped by the Bundle that created them, then inserted into an empty migrated database of the
same kind through the same engine setup (make_engine, write_transaction: BEGIN IMMEDIATE on
SQLite), one transaction per Bundle, each table with one SQLAlchemy Core executemany.
Resources keep their pks because index and version rows refer to them.

A second, driver-only variant sends the same rows as pre-converted tuples through
exec_driver_sql: the floor of what the database and its driver need.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, insert, select

from bench.ingest import ResourceKey
from yilian.fhir.store.tables import INDEX_TABLES, resource, resource_version
from yilian.kit.clock import to_http_date
from yilian.kit.db import make_engine, read_transaction, write_transaction

Row = dict[str, Any]


@dataclass
class BundleRows:
    resources: list[Row] = field(default_factory=list)
    versions: list[Row] = field(default_factory=list)
    index: dict[str, list[Row]] = field(default_factory=dict)  # by INDEX_TABLES name

    def index_count(self) -> int:
        return sum(len(rows) for rows in self.index.values())


@dataclass
class ReadBack:
    bundles: list[BundleRows]
    # "Type/id" → (body, ETag, Last-Modified): what GET /fhir/Type/id answers
    reads: dict[str, tuple[bytes, str, str]]

    def index_summary(self) -> str:
        """Index rows by table, largest first: "token 52,000, reference 40,000, ..."."""
        counts: dict[str, int] = {}
        for bundle in self.bundles:
            for name, rows in bundle.index.items():
                counts[name] = counts.get(name, 0) + len(rows)
        ordered = sorted(counts.items(), key=lambda item: -item[1])
        return ", ".join(f"{name} {count:,}" for name, count in ordered)

    def count(self, what: str) -> int:
        if what == "resources":
            return sum(len(b.resources) for b in self.bundles)
        if what == "versions":
            return sum(len(b.versions) for b in self.bundles)
        return sum(b.index_count() for b in self.bundles)


def read_back(url: str, keys: list[list[ResourceKey]]) -> ReadBack:
    wanted = {key: number for number, bundle in enumerate(keys) for key in bundle}
    bundles = [BundleRows() for _ in keys]
    engine = make_engine(url, pool_size=1)
    try:
        with read_transaction(engine) as conn:
            of_pk: dict[int, int] = {}
            ids: dict[int, str] = {}
            for row in conn.execute(select(resource).order_by(resource.c.pk)).mappings():
                number = wanted.get((row["res_type"], row["res_id"]))
                if number is not None:
                    of_pk[row["pk"]] = number
                    ids[row["pk"]] = f"{row['res_type']}/{row['res_id']}"
                    bundles[number].resources.append(dict(row))
            reads: dict[str, tuple[bytes, str, str]] = {}
            query = select(resource_version).order_by(
                resource_version.c.resource_pk, resource_version.c.version
            )
            for row in conn.execute(query).mappings():
                number = of_pk.get(row["resource_pk"])
                if number is not None:
                    bundles[number].versions.append(dict(row))
                    reads[ids[row["resource_pk"]]] = (
                        row["content"],
                        f'W/"{row["version"]}"',
                        to_http_date(row["last_updated"]),
                    )
            for name, table in INDEX_TABLES.items():
                query = select(table).order_by(table.c.resource_pk)
                for row in conn.execute(query).mappings():
                    number = of_pk.get(row["resource_pk"])
                    if number is not None:
                        bundles[number].index.setdefault(name, []).append(dict(row))
    finally:
        engine.dispose()
    missing = len(wanted) - len(of_pk)
    if missing:
        raise RuntimeError(f"{missing} created resources were not found in the database")
    return ReadBack(bundles, reads)


def _insert_bundle(engine: Engine, rows: BundleRows) -> None:
    with write_transaction(engine) as conn:
        conn.execute(insert(resource), rows.resources)
        conn.execute(insert(resource_version), rows.versions)
        for name, table in INDEX_TABLES.items():
            if rows.index.get(name):
                conn.execute(insert(table), rows.index[name])


def time_inserts(url: str, bundles: list[BundleRows]) -> float:
    """Seconds to insert every Bundle's rows, one write transaction per Bundle."""
    engine = make_engine(url)
    try:
        with engine.connect():  # open the pooled connection outside the timing
            pass
        started = time.perf_counter()
        for rows in bundles:
            _insert_bundle(engine, rows)
        return time.perf_counter() - started
    finally:
        engine.dispose()


# The driver-only variant: the same rows, converted to the driver's values beforehand (outside
# the timing) and sent as tuples with Connection.exec_driver_sql, so no SQLAlchemy work per
# row is left either: the floor of what the database and its driver need.

Batch = tuple[str, list[tuple[Any, ...]]]  # SQL and its parameter tuples, for one table


def _driver_batch(engine: Engine, table: Table, rows: list[Row]) -> Batch:
    dialect = engine.dialect
    columns = [c for c in table.columns if c.name in rows[0]]
    marker = "?" if dialect.name == "sqlite" else "%s"
    sql = (f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) "
           f"VALUES ({', '.join(marker for _ in columns)})")
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    params = [
        tuple(row[c.name] if p is None else p(row[c.name])
              for c, p in zip(columns, processors, strict=True))
        for row in rows
    ]
    return sql, params


def _driver_batches(engine: Engine, rows: BundleRows) -> list[Batch]:
    tables: list[tuple[Table, list[Row]]] = [
        (resource, rows.resources), (resource_version, rows.versions),
        *((INDEX_TABLES[name], rows.index.get(name, [])) for name in INDEX_TABLES),
    ]
    return [_driver_batch(engine, table, table_rows) for table, table_rows in tables if table_rows]


def time_driver_inserts(url: str, bundles: list[BundleRows]) -> float:
    """Seconds to insert the same rows as driver tuples, one write transaction per Bundle."""
    engine = make_engine(url)
    try:
        prepared = [_driver_batches(engine, rows) for rows in bundles]
        with engine.connect():
            pass
        started = time.perf_counter()
        for batches in prepared:
            with write_transaction(engine) as conn:
                for sql, params in batches:
                    conn.exec_driver_sql(sql, params)
        return time.perf_counter() - started
    finally:
        engine.dispose()
