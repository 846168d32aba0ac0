"""The FHIR store on SQL: versions, tombstones, history and index rows.

Knows nothing of HTTP or of FHIR's interaction rules (those live in the router); it keeps
what it is told, one transaction at a time, and reads it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    false,
    func,
    or_,
    select,
    text,
    update,
)

from yilian.errors import Unprocessable
from yilian.fhir.store.bulk import BulkInsert, Group, pipelined
from yilian.fhir.store.tables import INDEX_TABLES, resource, resource_version
from yilian.kit import jsonfmt
from yilian.kit.clock import to_instant
from yilian.kit.db import POSTGRESQL_SESSION
from yilian.kit.hashing import hash64

JsonObject = dict[str, Any]
# Index rows by table (search.extract): tuples of each table's columns after resource_pk and
# res_type (search.rows), as BulkInsert takes them.
IndexRows = Mapping[str, Sequence[tuple[Any, ...]]]


class Indexer(Protocol):
    """A resource's search index rows (search.extract.extract_index_rows); `local_base`:
    the server's FHIR base, which tells its own resources' absolute references from other
    servers'."""

    def __call__(self, resource: JsonObject, /, *, local_base: str | None = None
                 ) -> IndexRows: ...


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
    last_updated: datetime


# A version's columns in StoredVersion's order (`stored_version` makes one of a row of them).
VERSION_COLUMNS = (
    resource.c.res_type,
    resource.c.res_id,
    resource_version.c.version,
    resource_version.c.last_updated,
    resource_version.c.deleted,
    resource_version.c.method,
    resource_version.c.content,
)
_JOIN = resource.join(resource_version, resource_version.c.resource_pk == resource.c.pk)


def stored_version(row: Any) -> StoredVersion:
    return StoredVersion(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _select_version(version: Any) -> Any:
    return (
        select(*VERSION_COLUMNS)
        .select_from(_JOIN)
        .where(
            resource.c.res_type == bindparam("res_type"),
            resource.c.res_id == bindparam("res_id"),
            resource_version.c.version == version,
        )
    )


_READ_CURRENT = _select_version(resource.c.version)
_READ_VERSION = _select_version(bindparam("version"))


def read_current(conn: Connection, res_type: str, res_id: str) -> StoredVersion | None:
    """The current version (a tombstone if deleted), or None if it never existed."""
    row = conn.execute(_READ_CURRENT, {"res_type": res_type, "res_id": res_id}).first()
    return None if row is None else stored_version(row)


class FastReader:
    """Read by id, the most frequent interaction, without SQLAlchemy's Connection machinery.

    Each thread keeps one DBAPI connection in autocommit mode and runs one fixed statement:
    ~40 µs on SQLite against ~220 µs through a SQLAlchemy transaction. Takes an engine made
    by `kit.db.make_autocommit_engine`; a connection that fails is dropped and the read
    retried once on a new one (a restarted database).
    """

    _SQL = (
        "SELECT v.version, v.last_updated, v.deleted, v.method, v.content "
        "FROM resource r JOIN resource_version v "
        "ON v.resource_pk = r.pk AND v.version = r.version "
        "WHERE r.res_type = {mark} AND r.res_id = {mark}"
    )

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.sql = self._SQL.format(mark="?" if self.sqlite else "%s")
        self._local = threading.local()
        self._opened: list[Any] = []  # every thread's connection, to close at shutdown
        self._guard = threading.Lock()

    def current(self, res_type: str, res_id: str) -> StoredVersion | None:
        try:
            row = self._fetch(res_type, res_id)
        except self.engine.dialect.loaded_dbapi.Error:
            self._drop()
            row = self._fetch(res_type, res_id)
        if row is None:
            return None
        version, last_updated, deleted, method, content = row
        if self.sqlite:  # stored as UtcDateTime stores it: UTC text, 0/1
            last_updated = datetime.fromisoformat(last_updated).replace(tzinfo=UTC)
            deleted = bool(deleted)
        return StoredVersion(res_type, res_id, version, last_updated, deleted, method,
                             None if content is None else bytes(content))

    def _fetch(self, res_type: str, res_id: str) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.engine.raw_connection()
            with self._guard:
                self._opened.append(connection)
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql, (res_type, res_id))
            return cursor.fetchone()
        finally:
            cursor.close()

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._guard:
                self._opened.remove(connection)
            connection.invalidate()

    def close(self) -> None:
        """Return every thread's connection (at shutdown, before the engine is disposed)."""
        with self._guard:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self._local = threading.local()


class AsyncFastReader:
    """Reads by id on PostgreSQL without leaving the event loop, batched.

    A blocking read on the loop holds every other request for the round trip; a read in a
    worker thread pays the hop and the GIL. Here reads await asynchronous connections and
    share queries (`unnest` of their keys): at most `batches_in_flight` queries run at once,
    and the reads that arrive meanwhile wait to go together in the next, so under load a
    statement's cost, in psycopg and in PostgreSQL, is paid once for several reads (8
    connections, on this noisy machine: 2,600-2,700 reads/s with a query per turn of the
    loop, 2,500-4,000 with one batch in flight; two, so that one slow query does not hold
    every read). An idle reader sends a read at once. A small pool of
    autocommit connections, each keeping the statement prepared; a connection that fails is
    dropped and the batch retried once on a new one.
    """

    # The keys go as two array literals (`_array`): psycopg's dumping of lists cost more
    # than the rest of a batch's client work; the rows come back in binary (the content
    # as it is stored, not hex to decode).
    _SQL = (
        "SELECT k.res_type, k.res_id, v.version, v.last_updated, v.deleted, v.method, "
        "v.content FROM unnest(%s::text[], %s::text[]) AS k(res_type, res_id) "
        "JOIN resource r ON r.res_type = k.res_type AND r.res_id = k.res_id "
        "JOIN resource_version v ON v.resource_pk = r.pk AND v.version = r.version"
    )

    def __init__(self, engine: Engine, *, size: int = 8, batches_in_flight: int = 2) -> None:
        assert engine.dialect.name == "postgresql"
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.size = size
        self._idle: list[Any] = []
        self._cursors: dict[Any, Any] = {}  # connection → its binary cursor
        self._opened = 0
        self._available: asyncio.Condition | None = None
        self._pending: dict[tuple[str, str], asyncio.Future[StoredVersion | None]] = {}
        self._batches: set[asyncio.Task[None]] = set()
        self._scheduled = False
        self.batches_in_flight = batches_in_flight

    async def current(self, res_type: str, res_id: str) -> StoredVersion | None:
        key = (res_type, res_id)
        future = self._pending.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._pending[key] = loop.create_future()
            self._schedule(loop)
        return await asyncio.shield(future)  # a cancelled read must not cancel its batch

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and self._pending and len(self._batches) < self.batches_in_flight:
            # After the callbacks already due: the reads of this turn join the batch.
            self._scheduled = True
            loop.call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, {}
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._answer(batch))
        self._batches.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        self._schedule(asyncio.get_running_loop())

    async def _answer(self, batch: dict[tuple[str, str], asyncio.Future[StoredVersion | None]]
                      ) -> None:
        import psycopg

        types = _array(key[0] for key in batch)
        ids = _array(key[1] for key in batch)
        try:
            try:
                rows = await self._fetch(types, ids, fresh=False)
            except psycopg.OperationalError:
                rows = await self._fetch(types, ids, fresh=True)
        except Exception as error:
            for future in batch.values():
                if not future.done():
                    future.set_exception(error)
            return
        found = {
            (res_type, res_id): StoredVersion(
                res_type, res_id, version, last_updated, deleted, method,
                None if content is None else bytes(content),
            )
            for res_type, res_id, version, last_updated, deleted, method, content in rows
        }
        for key, future in batch.items():
            if not future.done():
                future.set_result(found.get(key))

    async def _fetch(self, types: str, ids: str, *, fresh: bool) -> list[Any]:
        import psycopg

        connection = await self._acquire(fresh=fresh)
        try:
            cursor = self._cursors.get(connection)
            if cursor is None:  # one per connection, kept: making one cost a tenth of a batch
                cursor = self._cursors[connection] = connection.cursor(binary=True)
            await cursor.execute(self._SQL, (types, ids), prepare=True)
            rows: list[Any] = await cursor.fetchall()
        except psycopg.Error:
            await self._discard(connection)
            raise
        await self._release(connection)
        return rows

    async def _acquire(self, *, fresh: bool) -> Any:
        import psycopg

        if self._available is None:  # made here: it belongs to the running loop
            self._available = asyncio.Condition()
        async with self._available:
            while not fresh and not self._idle and self._opened >= self.size:
                await self._available.wait()
            if self._idle and not fresh:
                return self._idle.pop()
            self._opened += 1
        try:
            connection = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, connect_timeout=3
            )
        except BaseException:
            await self._discard(None)
            raise
        try:
            # The statement's generic plan (index lookups, key by key) is the plan for any
            # keys, but PostgreSQL's estimates for an unnest of parameters keep it planning
            # every execution anew: measured, 157 µs of the database server's CPU a batch
            # of three against 53 with the generic plan kept.
            await connection.execute("SET plan_cache_mode = force_generic_plan")
            await connection.execute(POSTGRESQL_SESSION)
        except BaseException:
            await self._discard(connection)
            raise
        return connection

    async def _release(self, connection: Any) -> None:
        assert self._available is not None
        async with self._available:
            self._idle.append(connection)
            self._available.notify()

    async def _discard(self, connection: Any) -> None:
        assert self._available is not None
        if connection is not None:
            self._cursors.pop(connection, None)
            with contextlib.suppress(Exception):
                await connection.close()
        async with self._available:
            self._opened -= 1
            self._available.notify()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        self._cursors.clear()
        for connection in idle:
            with contextlib.suppress(Exception):
                await connection.close()
        self._opened -= len(idle)


def _array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of text values, each quoted (so that `NULL` is a string)."""
    return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for value in values) + "}"


def read_version(
    conn: Connection, res_type: str, res_id: str, version: int
) -> StoredVersion | None:
    row = conn.execute(
        _READ_VERSION, {"res_type": res_type, "res_id": res_id, "version": version}
    ).first()
    return None if row is None else stored_version(row)


def read_current_by_ids(conn: Connection, res_type: str, ids: Sequence[str]
                        ) -> dict[str, StoredVersion]:
    """Current versions of resources of one type by id (the live and the deleted)."""
    found: dict[str, StoredVersion] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):  # within SQLite's bound-parameter limit
        batch = unique[start:start + 500]
        rows = conn.execute(
            select(*VERSION_COLUMNS).select_from(_JOIN)
            .where(resource.c.res_type == res_type, resource.c.res_id.in_(batch),
                   resource_version.c.version == resource.c.version)).all()
        for row in rows:
            stored = stored_version(row)
            found[stored.res_id] = stored
    return found


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
    after: HistoryCursor | None = None,
    count: int,
    without_types: Sequence[str] = (),
) -> tuple[list[StoredVersion], HistoryCursor | None, frozenset[tuple[str, str, int]]]:
    """One page of history, newest first, the cursor of the next page (None at the end), and
    the versions (type, id, version) that came after a deletion: a resource created again;
    across types, none of `without_types`."""
    rv = resource_version
    previous = resource_version.alias("previous")
    query = select(rv.c.resource_pk, *VERSION_COLUMNS, previous.c.deleted).select_from(
        _JOIN.outerjoin(previous, and_(previous.c.resource_pk == rv.c.resource_pk,
                                       previous.c.version == rv.c.version - 1)))
    if res_type is not None:
        query = query.where(rv.c.res_type == res_type)
    if without_types:
        query = query.where(rv.c.res_type.not_in(list(without_types)))
    if res_id is not None:
        query = query.where(resource.c.res_id == res_id)
    if since is not None:
        query = query.where(rv.c.last_updated >= since)
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
    if len(rows) > count and page:
        last = page[-1]
        cursor = HistoryCursor(last_updated=last[4], resource_pk=last[0], version=last[3])
    recreated = frozenset((row[1], row[2], row[3]) for row in page if row[8])
    return [stored_version(row[1:]) for row in page], cursor, recreated


class _NewResource:
    """A resource row staged for insertion; its primary key is known after `flush`."""

    __slots__ = ("deleted", "pk", "res_id", "res_type", "version")

    def __init__(self, res_type: str, res_id: str, version: int, deleted: bool) -> None:
        self.res_type = res_type
        self.res_id = res_id
        self.version = version
        self.deleted = deleted
        self.pk: int | None = None


ResourceKey = int | _NewResource  # an existing row's pk, or a row still to insert

# Statements built once: constructing SQLAlchemy statements per row costs more than running
# them. Executed with lists of parameters, they go out as batched multi-row statements.
_UPDATE_RESOURCE = (
    update(resource)
    .where(resource.c.pk == bindparam("b_pk"))
    .values(
        version=bindparam("b_version"),
        last_updated=bindparam("b_last_updated"),
        deleted=bindparam("b_deleted"),
    )
)


# New resources through the driver (SQLAlchemy's insertmanyvalues cost a PostgreSQL ingestion
# a fifth of its time): their pks come back keyed by type and id, the order being unsure.
_INSERT_RESOURCES = BulkInsert(resource, ())
_INSERT_VERSIONS = BulkInsert(resource_version, ("resource_pk",))
_INSERT_INDEX = {
    name: BulkInsert(table, ("resource_pk", "res_type")) for name, table in INDEX_TABLES.items()
}
_LOCK_CURRENT = (
    select(resource.c.pk, resource.c.version, resource.c.deleted, resource.c.last_updated)
    .where(resource.c.res_type == bindparam("res_type"), resource.c.res_id == bindparam("res_id"))
    .with_for_update()
)


@dataclass(frozen=True, slots=True)
class Written:
    """A resource a unit of work wrote: its new content, or None when it was deleted."""

    res_type: str
    res_id: str
    resource: JsonObject | None


# Called in the writing transaction, after a flush, with what was written of the types it
# asked for: how a domain keeps its own tables in step with the record, whatever the path
# of the write (an operation, a PUT, a transaction Bundle, a load).
WriteHook = Callable[[Connection, Sequence[Written]], None]


@dataclass
class UnitOfWork:
    """The writes of one transaction, batched until `flush` (or until they must be seen).

    New resource rows, versions and index rows go out as multi-row inserts when the unit
    flushes: before any read of the store within the transaction, and before commit.
    Everything written in one unit shares one lastUpdated instant, as FHIR allows for a
    transaction; history orders ties by resource and version. Write hooks (by resource
    type) see each flush's writes of their types, in the same transaction.
    """

    conn: Connection
    now: datetime
    indexer: Indexer | None
    hooks: Mapping[str, Sequence[WriteHook]] = field(default_factory=dict)
    local_base: str | None = None  # the FHIR base of the request writing (Indexer)
    _written: list[Written] = field(default_factory=list)
    _new: list[_NewResource] = field(default_factory=list)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _versions: list[tuple[ResourceKey, tuple[Any, ...]]] = field(default_factory=list)
    _stale_index_pks: list[int] = field(default_factory=list)
    _index_rows: dict[ResourceKey, tuple[str, IndexRows]] = field(default_factory=dict)

    def lock_current(self, res_type: str, res_id: str) -> CurrentRow | None:
        """The current row, locked until commit (FOR UPDATE on PostgreSQL; SQLite's write
        transaction already holds the database's write lock)."""
        self.flush()
        row = self.conn.execute(_LOCK_CURRENT, {"res_type": res_type, "res_id": res_id}).first()
        return None if row is None else CurrentRow(row[0], row[1], row[2], row[3])

    def put(
        self,
        res_type: str,
        res_id: str,
        body: JsonObject,
        *,
        method: str,
        current: CurrentRow | None,
        index_rows: IndexRows | None = None,
    ) -> tuple[StoredVersion, JsonObject]:
        """Write a new version of a resource; returns it and the stored JSON (meta set).

        `current` must come from `lock_current` in this unit, or be None for an id that
        cannot exist yet (one the server just assigned). `index_rows`, when given, were
        extracted from this body already (they do not depend on meta.versionId/lastUpdated).
        """
        version = 1 if current is None else current.version + 1
        moment = self._moment(current)
        stored_json = with_server_meta(body, res_id, version, moment)
        try:
            content = jsonfmt.dumps(stored_json)
        except jsonfmt.JsonEncodeError as error:
            raise Unprocessable(
                "YL-1009", f"{res_type}/{res_id} cannot be stored: {error} (at most 255 "
                "levels of nesting)",
            ) from error
        key = self._stage_resource(res_type, res_id, version, moment, deleted=False,
                                   current=current)
        self._stage_version(key, res_type, version, moment, method, content)
        if current is not None and not current.deleted:
            self._stale_index_pks.append(current.pk)
        if index_rows is None and self.indexer is not None:
            index_rows = self.indexer(stored_json, local_base=self.local_base)
        if index_rows is not None:
            # Replaces rows staged earlier in this unit for the same resource.
            self._index_rows[key] = (res_type, index_rows)
        stored = StoredVersion(res_type, res_id, version, moment, False, method, content)
        if res_type in self.hooks:
            self._written.append(Written(res_type, res_id, stored_json))
        return stored, stored_json

    def delete(self, res_type: str, res_id: str, current: CurrentRow) -> StoredVersion:
        """Mark a resource deleted with a new version that has no content."""
        version = current.version + 1
        moment = self._moment(current)
        key = self._stage_resource(res_type, res_id, version, moment, deleted=True,
                                   current=current)
        self._stage_version(key, res_type, version, moment, "DELETE", None)
        self._stale_index_pks.append(current.pk)
        self._index_rows.pop(current.pk, None)
        if res_type in self.hooks:
            self._written.append(Written(res_type, res_id, None))
        return StoredVersion(res_type, res_id, version, moment, True, "DELETE", None)

    def _moment(self, current: CurrentRow | None) -> datetime:
        """The unit's instant, or just after the current version's when that one is later
        (on PostgreSQL a unit may wait for a row lock held by a writer that started after
        it): a resource's versions never go back in time."""
        if current is None or current.last_updated < self.now:
            return self.now
        return current.last_updated + timedelta(milliseconds=1)

    def _stage_resource(
        self,
        res_type: str,
        res_id: str,
        version: int,
        moment: datetime,
        *,
        deleted: bool,
        current: CurrentRow | None,
    ) -> ResourceKey:
        if current is None:
            new = _NewResource(res_type, res_id, version, deleted)
            self._new.append(new)
            return new
        self._updates.append(
            {"b_pk": current.pk, "b_version": version, "b_last_updated": moment,
             "b_deleted": deleted}
        )
        return current.pk

    def _stage_version(
        self,
        key: ResourceKey,
        res_type: str,
        version: int,
        moment: datetime,
        method: str,
        content: bytes | None,
    ) -> None:
        # resource_version's columns after resource_pk, in order (BulkInsert.rest).
        self._versions.append((key, (version, res_type, moment, method, content is None,
                                     content)))

    def flush(self) -> None:
        """Send the staged rows; reads within the transaction see them afterwards."""
        if self._new:
            new, self._new = self._new, []
            inserted = _INSERT_RESOURCES.insert_returning(
                self.conn, [(n.res_type, n.res_id, n.version, self.now, n.deleted) for n in new],
                ("pk", "res_type", "res_id"))
            pks = {(res_type, res_id): pk for pk, res_type, res_id in inserted}
            for staged in new:
                staged.pk = pks[staged.res_type, staged.res_id]
        if self._updates:
            updates, self._updates = self._updates, []
            self.conn.execute(_UPDATE_RESOURCE, updates)
        if self._stale_index_pks:
            stale, self._stale_index_pks = self._stale_index_pks, []
            delete_index_rows(self.conn, stale)
        versions, self._versions = self._versions, []
        staged_rows, self._index_rows = self._index_rows, {}
        by_table: dict[str, list[Group]] = {}
        for key, (res_type, tables) in staged_rows.items():
            lead = (_pk(key), res_type)
            # The extractor cuts values to their column's width (search.normalize).
            for name, table_rows in tables.items():
                if table_rows:
                    by_table.setdefault(name, []).append((lead, table_rows))
        # A write of a resource or a few: its version and index rows in one round trip on
        # PostgreSQL, not one per table.
        batches = [len(versions), *(sum(len(rows) for _, rows in groups)
                                    for groups in by_table.values())]
        with pipelined(self.conn, batches):
            _INSERT_VERSIONS.run(self.conn, [((_pk(key),), (row,)) for key, row in versions])
            for name, groups in by_table.items():
                _INSERT_INDEX[name].run(self.conn, groups)
        if self._written:
            written, self._written = self._written, []
            for res_type in dict.fromkeys(w.res_type for w in written):
                mine = [w for w in written if w.res_type == res_type]
                for hook in self.hooks[res_type]:
                    hook(self.conn, mine)


def _pk(key: ResourceKey) -> int:
    if isinstance(key, int):
        return key
    assert key.pk is not None, "flush inserts new resources before their dependants"
    return key.pk


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


# --- reindexing ----------------------------------------------------------------------------------


def count_live(conn: Connection, types: Sequence[str] | None) -> int:
    query = select(func.count()).select_from(resource).where(resource.c.deleted == false())
    if types:
        query = query.where(resource.c.res_type.in_(types))
    total: int = conn.execute(query).scalar_one()
    return total


def live_after(conn: Connection, types: Sequence[str] | None, after_pk: int, limit: int
               ) -> list[tuple[int, str, bytes]]:
    """(pk, type, stored JSON) of the current versions of live resources after `after_pk`, in
    pk order: a batch of a walk through the store."""
    query = (
        select(resource.c.pk, resource.c.res_type, resource_version.c.content)
        .select_from(_JOIN)
        .where(resource.c.pk > after_pk, resource.c.deleted == false(),
               resource_version.c.version == resource.c.version)
        .order_by(resource.c.pk)
        .limit(limit)
    )
    if types:
        query = query.where(resource.c.res_type.in_(types))
    return [(row[0], row[1], bytes(row[2])) for row in conn.execute(query)]


_DELETE_INDEX = [delete(table).where(table.c.resource_pk.in_(bindparam("pks", expanding=True)))
                 for table in INDEX_TABLES.values()]
# PostgreSQL: the seven deletions in one statement (data-modifying CTEs all run), one round
# trip instead of seven for every resource updated.
_DELETE_INDEX_AT_ONCE = text(
    "WITH " + ", ".join(f"d_{table.name} AS (DELETE FROM {table.name} "
                        "WHERE resource_pk = ANY(:pks))" for table in INDEX_TABLES.values())
    + " SELECT 1")


def delete_index_rows(conn: Connection, pks: Sequence[int]) -> None:
    """The index rows of these resources, gone from every index table."""
    if not pks:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_DELETE_INDEX_AT_ONCE, {"pks": list(pks)})
        return
    for statement in _DELETE_INDEX:
        conn.execute(statement, {"pks": list(pks)})


def replace_index_rows(conn: Connection, rows: Sequence[tuple[int, str, IndexRows]]) -> None:
    """Swap the index rows of the given resources, (pk, type, rows by table), for new ones."""
    delete_index_rows(conn, [pk for pk, _, _ in rows])
    insert_index_rows(conn, rows)


def insert_index_rows(conn: Connection, rows: Sequence[tuple[int, str, IndexRows]]) -> None:
    """Write index rows of resources that have none, (pk, type, rows by table): a table's
    rows in one go, as a write's flush sends them."""
    by_table: dict[str, list[Group]] = {}
    for pk, res_type, tables in rows:
        for name, table_rows in tables.items():
            if table_rows:
                by_table.setdefault(name, []).append(((pk, res_type), table_rows))
    for name, groups in by_table.items():
        _INSERT_INDEX[name].run(conn, groups)
