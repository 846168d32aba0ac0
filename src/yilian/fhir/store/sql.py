"""The FHIR store on SQL: versions, tombstones, history and index rows.

Knows nothing of HTTP or of FHIR's interaction rules (those live in the router); it keeps
what it is told, one transaction at a time, and reads it back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, and_, delete, insert, or_, select, text, update

from yilian.fhir.store.tables import INDEX_TABLES, resource, resource_version
from yilian.kit import jsonfmt
from yilian.kit.clock import to_instant
from yilian.kit.hashing import hash64

JsonObject = dict[str, Any]
IndexRows = Mapping[str, Sequence[Mapping[str, Any]]]
Indexer = Callable[[JsonObject], IndexRows]


# Index values are cut to their column's length: PostgreSQL refuses longer ones, and a prefix
# is what search compares anyway (lookups of longer values are cut the same way).
_LIMITS: dict[str, dict[str, int]] = {
    name: {
        column.name: column.type.length
        for column in table.columns
        if isinstance(column.type, String) and column.type.length
    }
    for name, table in INDEX_TABLES.items()
}


def _clamped(row: Mapping[str, Any], limits: dict[str, int]) -> dict[str, Any]:
    copy = dict(row)
    for column, limit in limits.items():
        value = copy.get(column)
        if isinstance(value, str) and len(value) > limit:
            copy[column] = value[:limit]
    return copy


@dataclass(frozen=True, slots=True)
class StoredVersion:
    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    deleted: bool
    method: str
    content: bytes | None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True, slots=True)
class CurrentRow:
    pk: int
    version: int
    deleted: bool


_VERSION_COLUMNS = (
    resource.c.res_type,
    resource.c.res_id,
    resource_version.c.version,
    resource_version.c.last_updated,
    resource_version.c.deleted,
    resource_version.c.method,
    resource_version.c.content,
)
_JOIN = resource.join(resource_version, resource_version.c.resource_pk == resource.c.pk)


def _stored(row: Any) -> StoredVersion:
    return StoredVersion(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def read_current(conn: Connection, res_type: str, res_id: str) -> StoredVersion | None:
    """The current version (a tombstone if deleted), or None if it never existed."""
    row = conn.execute(
        select(*_VERSION_COLUMNS)
        .select_from(_JOIN)
        .where(
            resource.c.res_type == res_type,
            resource.c.res_id == res_id,
            resource_version.c.version == resource.c.version,
        )
    ).first()
    return None if row is None else _stored(row)


def read_version(
    conn: Connection, res_type: str, res_id: str, version: int
) -> StoredVersion | None:
    row = conn.execute(
        select(*_VERSION_COLUMNS)
        .select_from(_JOIN)
        .where(
            resource.c.res_type == res_type,
            resource.c.res_id == res_id,
            resource_version.c.version == version,
        )
    ).first()
    return None if row is None else _stored(row)


def read_current_many(conn: Connection, pks: Sequence[int]) -> list[StoredVersion]:
    """Current versions of the given resources, in the order of `pks`."""
    if not pks:
        return []
    rows = conn.execute(
        select(resource.c.pk, *_VERSION_COLUMNS)
        .select_from(_JOIN)
        .where(resource.c.pk.in_(pks), resource_version.c.version == resource.c.version)
    ).all()
    by_pk = {row[0]: _stored(row[1:]) for row in rows}
    return [by_pk[pk] for pk in pks if pk in by_pk]


@dataclass(frozen=True, slots=True)
class HistoryCursor:
    """Position after the last entry of a page: newest first, then by pk and version."""

    last_updated: datetime
    resource_pk: int
    version: int


def read_history(
    conn: Connection,
    *,
    res_type: str | None = None,
    res_id: str | None = None,
    since: datetime | None = None,
    at: datetime | None = None,
    after: HistoryCursor | None = None,
    count: int,
) -> tuple[list[StoredVersion], HistoryCursor | None]:
    """One page of history, newest first, and the cursor of the next page (None at the end)."""
    rv = resource_version
    query = select(rv.c.resource_pk, *_VERSION_COLUMNS).select_from(_JOIN)
    if res_type is not None:
        query = query.where(rv.c.res_type == res_type)
    if res_id is not None:
        query = query.where(resource.c.res_id == res_id)
    if since is not None:
        query = query.where(rv.c.last_updated >= since)
    if at is not None:
        query = query.where(rv.c.last_updated <= at)
    if after is not None:
        query = query.where(
            or_(
                rv.c.last_updated < after.last_updated,
                and_(
                    rv.c.last_updated == after.last_updated,
                    or_(
                        rv.c.resource_pk > after.resource_pk,
                        and_(rv.c.resource_pk == after.resource_pk, rv.c.version < after.version),
                    ),
                ),
            )
        )
    query = query.order_by(
        rv.c.last_updated.desc(), rv.c.resource_pk.asc(), rv.c.version.desc()
    ).limit(count + 1)
    rows = conn.execute(query).all()
    page = rows[:count]
    cursor = None
    if len(rows) > count:
        last = page[-1]
        cursor = HistoryCursor(last_updated=last[4], resource_pk=last[0], version=last[3])
    return [_stored(row[1:]) for row in page], cursor


@dataclass
class UnitOfWork:
    """The writes of one transaction. Version and index rows are batched until `flush`.

    Everything written in one unit shares one lastUpdated instant, as FHIR allows for a
    transaction; history orders ties by resource and version.
    """

    conn: Connection
    now: datetime
    indexer: Indexer | None
    _versions: list[dict[str, Any]] = field(default_factory=list)
    _stale_index_pks: list[int] = field(default_factory=list)
    _index_rows: dict[int, IndexRows] = field(default_factory=dict)  # by resource pk
    _res_types: dict[int, str] = field(default_factory=dict)

    def lock_current(self, res_type: str, res_id: str) -> CurrentRow | None:
        """The current row, locked until commit (FOR UPDATE on PostgreSQL; SQLite's write
        transaction already holds the database's write lock)."""
        row = self.conn.execute(
            select(resource.c.pk, resource.c.version, resource.c.deleted)
            .where(resource.c.res_type == res_type, resource.c.res_id == res_id)
            .with_for_update()
        ).first()
        return None if row is None else CurrentRow(row[0], row[1], row[2])

    def put(
        self,
        res_type: str,
        res_id: str,
        body: JsonObject,
        *,
        method: str,
        current: CurrentRow | None,
    ) -> tuple[StoredVersion, JsonObject]:
        """Write a new version of a resource; returns it and the stored JSON (meta set)."""
        version = 1 if current is None else current.version + 1
        stored_json = with_server_meta(body, res_id, version, self.now)
        content = jsonfmt.dumps(stored_json)
        pk = self._upsert_resource(res_type, res_id, version, deleted=False, current=current)
        self._versions.append(
            {
                "resource_pk": pk,
                "version": version,
                "res_type": res_type,
                "last_updated": self.now,
                "method": method,
                "deleted": False,
                "content": content,
            }
        )
        if current is not None and not current.deleted:
            self._stale_index_pks.append(pk)
        if self.indexer is not None:
            # Replaces rows staged earlier in this unit for the same resource.
            self._index_rows[pk] = self.indexer(stored_json)
            self._res_types[pk] = res_type
        stored = StoredVersion(res_type, res_id, version, self.now, False, method, content)
        return stored, stored_json

    def delete(self, res_type: str, res_id: str, current: CurrentRow) -> StoredVersion:
        """Mark a resource deleted with a new version that has no content."""
        version = current.version + 1
        pk = self._upsert_resource(res_type, res_id, version, deleted=True, current=current)
        self._versions.append(
            {
                "resource_pk": pk,
                "version": version,
                "res_type": res_type,
                "last_updated": self.now,
                "method": "DELETE",
                "deleted": True,
                "content": None,
            }
        )
        self._stale_index_pks.append(pk)
        self._index_rows.pop(pk, None)
        return StoredVersion(res_type, res_id, version, self.now, True, "DELETE", None)

    def _upsert_resource(
        self, res_type: str, res_id: str, version: int, *, deleted: bool, current: CurrentRow | None
    ) -> int:
        if current is None:
            pk: int = self.conn.execute(
                insert(resource)
                .values(
                    res_type=res_type,
                    res_id=res_id,
                    version=version,
                    last_updated=self.now,
                    deleted=deleted,
                )
                .returning(resource.c.pk)
            ).scalar_one()
            return pk
        self.conn.execute(
            update(resource)
            .where(resource.c.pk == current.pk)
            .values(version=version, last_updated=self.now, deleted=deleted)
        )
        return current.pk

    def flush(self) -> None:
        """Send the batched rows; searches within the transaction see them afterwards."""
        if self._stale_index_pks:
            stale = self._stale_index_pks
            for table in INDEX_TABLES.values():
                self.conn.execute(delete(table).where(table.c.resource_pk.in_(stale)))
            self._stale_index_pks = []
        if self._versions:
            self.conn.execute(insert(resource_version), self._versions)
            self._versions = []
        if self._index_rows:
            by_table: dict[str, list[dict[str, Any]]] = {}
            for pk, tables in self._index_rows.items():
                res_type = self._res_types[pk]
                for name, rows in tables.items():
                    bucket = by_table.setdefault(name, [])
                    limits = _LIMITS[name]
                    for row in rows:
                        clamped = _clamped(row, limits)
                        clamped["resource_pk"] = pk
                        clamped["res_type"] = res_type
                        bucket.append(clamped)
            for name, rows in by_table.items():
                if rows:
                    self.conn.execute(insert(INDEX_TABLES[name]), rows)
            self._index_rows = {}


def with_server_meta(body: JsonObject, res_id: str, version: int, now: datetime) -> JsonObject:
    """The resource as stored: id and meta.versionId/lastUpdated set by the server."""
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = to_instant(now)
    stored: JsonObject = {"resourceType": body["resourceType"], "id": res_id, "meta": meta}
    for key, value in body.items():
        if key not in stored:
            stored[key] = value
    return stored


def lock_key(conn: Connection, key: str) -> None:
    """Serialise transactions that use the same key until they end.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do, since a write
    transaction (BEGIN IMMEDIATE) already holds the database's only write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": hash64(key)})
