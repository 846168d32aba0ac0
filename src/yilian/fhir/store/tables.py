"""The FHIR store's tables (SQLAlchemy Core; the same schema on SQLite and PostgreSQL).

    resource          one row per logical resource: its current version (HAPI's HFJ_RESOURCE)
    resource_version  every version's JSON, the current one included (HAPI's HFJ_RES_VER)
    idx_*             search index rows of the current version, one table per parameter type
                      (HAPI's HFJ_SPIDX_*, Microsoft's *SearchParam), written in the same
                      transaction as the resource; tokens carry 64-bit hashes for cheap lookups

Reads join resource → resource_version on (pk, version): two primary-key probes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    text,
)

from yilian.kit.dbtypes import UtcDateTime

# Deterministic constraint names so Alembic diffs are stable on both databases.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY is SQLite's rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")
Stamp = UtcDateTime()
Dec = Numeric(precision=38, scale=10, asdecimal=True)


def Prefixed(length: int) -> String:
    """Text searched by prefix as a range of its index (kit.sqlhints.after_prefix): ordered
    by code point on both databases. SQLite's BINARY collation is; PostgreSQL's needs "C"
    (a linguistic collation orders "z-a" between "za" and "zb", and LIKE 'za%' reads no
    index under any collation but "C" in PostgreSQL 15)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")

resource = Table(
    "resource",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", Stamp, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Index("uq_resource_type_id", "res_type", "res_id", unique=True),
    Index("ix_resource_type_updated", "res_type", "last_updated"),
    # A type's resources in pk order: the first page of `GET /fhir/Observation` without
    # sorting them all.
    Index("ix_resource_type_pk", "res_type", "pk"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("resource_pk", BigId, ForeignKey("resource.pk", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("res_type", String(64), nullable=False),  # denormalised for type-level history
    Column("last_updated", Stamp, nullable=False),
    Column("method", String(8), nullable=False),  # POST, PUT, PATCH, DELETE
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", LargeBinary, nullable=True),  # NULL for a deletion
    Index("ix_resource_version_updated", "last_updated"),
    Index("ix_resource_version_type_updated", "res_type", "last_updated"),
)


def _index_table(name: str, *columns: Column[object], indexes: tuple[Index, ...] = ()) -> Table:
    return Table(
        name,
        metadata,
        # No key of their own (migration 0018): nothing looks a row up but by its columns'
        # indexes, and on PostgreSQL a serial key cost every row a sequence step and a unique
        # index entry (the indexing overhead in process, four rounds side by side: 70-76% →
        # 65-67%). SQLite numbers the rows itself (rowid).
        # No foreign key to resource: the store writes a resource's rows with it and deletes
        # them itself when it is written again (`delete_index_rows`); resource rows are never
        # deleted. PostgreSQL checked the key with a lookup per row: ingestion in process
        # went from 3,131-3,147 to 4,348-4,486 resources/s without it (SQLite: no change).
        Column("resource_pk", BigId, nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
        # The element of a composite parameter a component's row comes from (rows of one
        # element share it: search/composite.py); NULL for the rows of other parameters.
        Column("grp", Integer, nullable=True),
        Index(f"ix_{name}_resource", "resource_pk"),
        *indexes,
    )


idx_string = _index_table(
    "idx_string",
    Column("value_norm", Prefixed(200), nullable=False),
    Column("value_exact", String(200), nullable=False),
    indexes=(Index("ix_idx_string_lookup", "res_type", "param", "value_norm"),),
)

idx_token = _index_table(
    "idx_token",
    Column("system", String(400)),
    Column("code", String(400)),
    Column("text", Prefixed(400)),
    Column("type_system", String(400)),
    Column("type_code", String(200)),
    Column("hash_code", BigInteger, nullable=False),
    Column("hash_sys", BigInteger, nullable=False),
    indexes=(
        Index("ix_idx_token_code", "hash_code", "resource_pk"),
        # system|code by both hashes (in pk order), system| by the first.
        Index("ix_idx_token_sys", "hash_sys", "hash_code", "resource_pk"),
    ),
)

idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64)),
    Column("target_id", String(64)),
    Column("target_version", String(64)),
    Column("url", String(800)),
    indexes=(
        Index("ix_idx_reference_target", "target_type", "target_id", "res_type", "param"),
        # Most references are Type/id (url NULL): the url index holds only the others.
        Index("ix_idx_reference_url", "url", sqlite_where=text("url IS NOT NULL"),
              postgresql_where=text("url IS NOT NULL")),
    ),
)

idx_date = _index_table(
    "idx_date",
    Column("low", Stamp, nullable=False),
    Column("high", Stamp, nullable=False),
    indexes=(
        Index("ix_idx_date_low", "res_type", "param", "low"),
        Index("ix_idx_date_high", "res_type", "param", "high"),
    ),
)

idx_number = _index_table(
    "idx_number",
    Column("value", Dec, nullable=False),
    Column("low", Dec, nullable=False),
    Column("high", Dec, nullable=False),
    indexes=(Index("ix_idx_number_lookup", "res_type", "param", "value"),),
)

idx_quantity = _index_table(
    "idx_quantity",
    Column("system", String(400)),
    Column("code", String(200)),
    Column("unit", String(200)),
    Column("value", Dec, nullable=False),
    Column("low", Dec, nullable=False),
    Column("high", Dec, nullable=False),
    indexes=(Index("ix_idx_quantity_lookup", "res_type", "param", "value"),),
)

idx_uri = _index_table(
    "idx_uri",
    Column("uri", Prefixed(800), nullable=False),
    indexes=(Index("ix_idx_uri_lookup", "res_type", "param", "uri"),),
)

INDEX_TABLES: dict[str, Table] = {
    "string": idx_string,
    "token": idx_token,
    "reference": idx_reference,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "uri": idx_uri,
}


# The audit trail (fhir.audit): append-only, each entry chained to the one before by a
# SHA-256 over its content and the previous entry's hash. `audit_head` holds the last link;
# taking its row lock orders the appends of all processes.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=False),
    Column("recorded", Stamp, nullable=False),
    Column("actor", String(200), nullable=False),  # who: "user alice", "client:lis"
    Column("subtype", String(40), nullable=False),  # read, search-type, create, login...
    Column("outcome", Integer, nullable=False),  # 0 success, 4, 8, 12 (AuditEvent.outcome)
    Column("entry", Text, nullable=False),  # the entry's fields, canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_recorded", "recorded"),
    Index("ix_audit_log_actor", "actor", "seq"),
)

# No foreign key to audit_log: `append` writes an entry's rows together, and `verify` finds
# an entity row without its entry; the key's check cost PostgreSQL more than the rest of an
# entry's insert (15.6 µs an entry with it, 6.8 without).
audit_entity = Table(
    "audit_entity",
    metadata,
    Column("seq", BigId, primary_key=True),
    Column("reference", String(200), primary_key=True),  # Type/id the entry is about
    Index("ix_audit_entity_reference", "reference", "seq"),
)

# How far each audit recorder process has got (fhir.audit_recorder): the number of the
# entries it was sent that are done, written in the transaction that stores them. A server
# whose recorder ended before saying so reads it here, and does not send those again.
audit_progress = Table(
    "audit_progress",
    metadata,
    Column("recorder", String(64), primary_key=True),
    Column("done", BigInteger, nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
