"""The audit trail: who did what to which record, when, from where, with what outcome.

Every interaction leaves an entry: a write's in its own transaction (no change without its
trace, no trace of a change that did not happen), a read's, a search's, a refusal's and a
sign-in's shortly after (buffered and appended in batches by a background thread: a read
must not wait for a write; a crash can lose the last half second of them).

Entries are append-only and tamper-evident: each carries SHA-256(previous hash | seq | entry)
and the previous entry's hash, so editing, deleting or inserting an entry breaks the chain
from there on; `verify` walks it (`yilian audit verify`). Appends of all processes take the
row lock of `audit_head`, the chain's last link, in their transaction's last moment.

Entries read as FHIR AuditEvents (`to_audit_event`): DICOM's event types, FHIR's RESTful
interaction codes as subtypes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from yilian.errors import ServiceUnavailable
from yilian.fhir.messages import FhirRequest, FhirResponse
from yilian.fhir.store.bulk import BulkInsert, pipelined
from yilian.fhir.store.tables import audit_entity, audit_head, audit_log, audit_progress
from yilian.kit import jsonfmt
from yilian.kit.clock import to_instant, utcnow
from yilian.kit.db import write_transaction

log = logging.getLogger("yilian.audit")

GENESIS = "0" * 64
_INSERT_LOG = BulkInsert(audit_log, ())
_INSERT_ENTITY = BulkInsert(audit_entity, ())
# `append` builds its rows as tuples in this order.
assert _INSERT_LOG.columns == ["seq", "recorded", "actor", "subtype", "outcome", "entry",
                               "prev_hash", "hash"]
assert _INSERT_ENTITY.columns == ["seq", "reference"]
FLUSH_SECONDS = 0.5
MAX_PENDING = 20_000  # entries waiting at most; beyond, the caller appends them or waits

# AuditEvent.action (C create, R read, U update, D delete, E execute) by interaction.
_ACTIONS = {"create": "C", "read": "R", "vread": "R", "history-instance": "R",
            "history-type": "R", "history-system": "R", "search-type": "E",
            "search-system": "E", "search-compartment": "E", "update": "U", "patch": "U",
            "delete": "D", "transaction": "E", "batch": "E", "operation": "E",
            "capabilities": "R", "login": "E", "logout": "E", "token": "E",
            "break-glass": "E"}


@dataclass(slots=True)
class Entry:
    """One audited event. `outcome`: 0 success, 4 minor failure (refused, not found),
    8 serious failure, 12 major failure (AuditEvent.outcome). Not to be changed once handed
    to `append` or `Auditor.later` (not frozen: a frozen dataclass's __init__ cost a read a
    microsecond more, and every read makes one)."""

    subtype: str  # read, search-type, create, ..., login, token
    actor: str  # "user alice", "client:lis", "anonymous"
    outcome: int
    source: str = ""  # the caller's network address
    path: str = ""  # the request: "Patient/1", "Observation?code=..."
    entities: tuple[str, ...] = ()  # Type/id of what was read or written
    detail: str = ""  # why it failed; a break-the-glass reason
    recorded: datetime = field(default_factory=utcnow)

    def canonical(self, recorded: str) -> str:
        """The entry as hashed and stored; `recorded`: its time as a FHIR instant
        (`to_instant`), which `append` has at hand."""
        # Field by field (dataclasses.asdict deep-copies), keys already in sorted order.
        return orjson.dumps({
            "actor": self.actor, "detail": self.detail, "entities": self.entities,
            "outcome": self.outcome, "path": self.path, "recorded": recorded,
            "source": self.source, "subtype": self.subtype}).decode()


def link(prev_hash: str, seq: int, entry_json: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{seq}|{entry_json}".encode()).hexdigest()


Progress = tuple[str, int]  # (an audit recorder's key, how many of its entries are done)


def append(conn: Connection, entries: Sequence[Entry], *, progress: Progress | None = None
           ) -> None:
    """Chain entries onto the trail, in the caller's write transaction; `progress`: an
    audit recorder's, stored with them (`audit_progress`)."""
    if not entries:
        return
    sqlite = conn.dialect.name == "sqlite"
    # Locked until the transaction ends: FOR UPDATE on PostgreSQL; on SQLite the write
    # transaction holds the database's only write lock already.
    head = _through_driver(conn, "SELECT seq, hash FROM audit_head WHERE id = 1"
                           + ("" if sqlite else " FOR UPDATE"), (), fetch=True)
    if head is None:
        conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
        seq, prev = 0, GENESIS
    else:
        seq, prev = head
    rows: list[tuple[Any, ...]] = []
    refs: list[tuple[Any, ...]] = []
    for entry in entries:
        seq += 1
        # One formatting for the hashed instant and, on SQLite, the column's text: the
        # moment is new every time (every read appends an entry), so no cache helps.
        instant, stored = _stamps(entry.recorded)
        text = entry.canonical(instant)
        digest = link(prev, seq, text)
        # In the tables' column order (BulkInsert.insert).
        rows.append((seq, stored if sqlite else entry.recorded, _plain(entry.actor)[:200],
                     _plain(entry.subtype)[:40], entry.outcome, text, prev, digest))
        if len(entry.entities) == 1:
            refs.append((seq, _plain(entry.entities[0])[:200]))
        elif entry.entities:
            refs += [(seq, ref) for ref in dict.fromkeys(_plain(ref)[:200]
                                                         for ref in entry.entities)]
        prev = digest
    # The driver's own multi-row insert (COPY on PostgreSQL): SQLAlchemy's per-row work
    # would cost more than the entry itself. A write's own entry and the head's move go in
    # one round trip on PostgreSQL: the head is locked from the SELECT above to commit, and
    # every other writer waits for it meanwhile.
    with pipelined(conn, [len(rows), len(refs)]):
        _INSERT_LOG.insert(conn, rows)
        _INSERT_ENTITY.insert(conn, refs)
        _move_head(conn, seq, prev)
        if progress is not None:
            _record_progress(conn, *progress)


def _move_head(conn: Connection, seq: int, digest: str) -> None:
    _through_driver(conn, "UPDATE audit_head SET seq = {0}, hash = {1} WHERE id = 1",
                    (seq, digest))


def _record_progress(conn: Connection, recorder: str, done: int) -> None:
    """The recorder's count of done entries (one statement, in SQLite and PostgreSQL)."""
    _through_driver(conn, "INSERT INTO audit_progress (recorder, done) VALUES ({0}, {1}) "
                    "ON CONFLICT (recorder) DO UPDATE SET done = excluded.done",
                    (recorder, done))


def _through_driver(conn: Connection, sql: str, params: Sequence[Any], *,
                    fetch: bool = False) -> Any:
    """One statement of `append` straight through the driver, `{0}`, `{1}`... its values'
    places: SQLAlchemy's execution machinery cost an entry more than the rest of its work
    (on SQLite an entry appended alone, as every write appends its own: 68.5 µs with the
    head's two statements through SQLAlchemy, 17.8 without), and a PostgreSQL pipeline
    (`pipelined`) can carry a statement sent so. Errors come out as SQLAlchemy's, as from
    Connection.execute (in a pipeline, at its end)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    postgresql = conn.dialect.name == "postgresql"
    sql = sql.format(*(f"${n}" if postgresql else "?" for n in range(1, len(params) + 1)))
    dbapi = conn.dialect.loaded_dbapi
    try:
        if postgresql:
            with psycopg.RawCursor(driver) as raw:
                raw.execute(sql, list(params))
                return raw.fetchone() if fetch else None
        cursor = driver.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchone() if fetch else None
        finally:
            cursor.close()
    except dbapi.Error as error:
        raise DBAPIError.instance(sql, params, error, dbapi.Error,
                                  dialect=conn.dialect) from error


def progress_of(conn: Connection, recorder: str) -> int | None:
    """How many of the entries sent to a recorder it stored (or refused for good); None if
    it stored none."""
    done: int | None = conn.execute(
        select(audit_progress.c.done).where(audit_progress.c.recorder == recorder)
    ).scalar_one_or_none()
    return done


def forget_progress(conn: Connection, recorder: str) -> None:
    conn.execute(delete(audit_progress).where(audit_progress.c.recorder == recorder))


def _stamps(moment: datetime) -> tuple[str, str]:
    """(the moment as a FHIR instant, as `to_instant` writes it; as SQLite's UtcDateTime text,
    as `store.bulk` writes it) from one isoformat."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    text = moment.isoformat(" ", "microseconds")  # 2026-11-23 12:00:00.123456+00:00
    return f"{text[:10]}T{text[11:23]}Z", text[:26]


def _plain(text: str) -> str:
    """Text a database column holds as it is (PostgreSQL refuses NUL; the canonical JSON
    keeps everything, escaped)."""
    return text.replace("\x00", "") if "\x00" in text else text


def _columns_agree(conn: Connection, row: Any) -> bool:
    """The columns searches use say what the hashed entry says (else an edit there would
    hide an entry from searches without breaking the chain)."""
    fields = orjson.loads(row.entry)
    refs = set(conn.scalars(select(audit_entity.c.reference)
                            .where(audit_entity.c.seq == row.seq)))
    return (row.actor == _plain(fields["actor"])[:200]
            and row.subtype == _plain(fields["subtype"])[:40]
            and row.outcome == fields["outcome"]
            and to_instant(row.recorded) == fields["recorded"]
            and refs == {_plain(ref)[:200] for ref in fields["entities"]})


@dataclass(frozen=True)
class Broken:
    seq: int
    why: str


def head(conn: Connection) -> tuple[int, str]:
    """The chain's last link (seq, hash): kept somewhere else (printed, mailed, in another
    system), it lets `verify(expect=...)` tell that no entry up to it was removed since,
    which the chain alone cannot (cutting its end and rewriting its head leaves no trace)."""
    row = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
    return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))


def verify(conn: Connection, *, batch: int = 5000, expect: tuple[int, str] | None = None
           ) -> tuple[int, Broken | None]:
    """Walk the chain: (entries checked, the first broken link or None). With `expect`, a
    (seq, hash) taken by `head` earlier, the chain must still hold that link."""
    prev, expected_seq, checked = GENESIS, 1, 0
    while True:
        rows = conn.execute(select(audit_log).where(audit_log.c.seq >= expected_seq)
                            .order_by(audit_log.c.seq).limit(batch)).all()
        for row in rows:
            if row.seq != expected_seq:
                return checked, Broken(expected_seq, f"entries {expected_seq} to {row.seq - 1} "
                                       "are missing")
            if row.prev_hash != prev:
                return checked, Broken(row.seq, "does not follow the entry before it")
            if link(prev, row.seq, row.entry) != row.hash or not _columns_agree(conn, row):
                return checked, Broken(row.seq, "was changed after it was written")
            prev, expected_seq, checked = row.hash, row.seq + 1, checked + 1
        if len(rows) < batch:
            break
    top = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
    last = expected_seq - 1
    if top is not None and (top.seq != last or top.hash != prev):
        return checked, Broken(last + 1, f"entries after {last} are missing (the chain's "
                               f"head is at {top.seq})")
    # An entity row outside the chain (the checks above saw every entry's own rows): it
    # names a resource no entry says was touched, and would show in searches of the trail.
    # Found from the key's two ends: one index probe each.
    lowest, highest = conn.execute(select(func.min(audit_entity.c.seq),
                                          func.max(audit_entity.c.seq))).one()
    if highest is not None and (highest > last or lowest < 1):
        return checked, Broken(highest if highest > last else lowest,
                               "has an entity row but no entry")
    if expect is not None:
        seq, digest = expect
        kept = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).first()
        if kept is None or kept.hash != digest:
            return checked, Broken(seq, "is not the entry recorded then: the trail was cut "
                                   "or rewritten after it")
    return checked, None


class AuditUnavailable(ServiceUnavailable):
    """A full queue of entries (MAX_PENDING) cannot be appended or handed over: the database
    refuses them. The caller's request fails (503) rather than be answered unaudited."""

    def __init__(self, waiting: int) -> None:
        super().__init__("YL-0503", f"The audit trail cannot be written now ({waiting} "
                         "entries wait for the database): the request was not answered; "
                         "try again later")


class Auditor:
    """Appends entries: in a write's transaction (`append`), or soon (`later`)."""

    beat_seconds = FLUSH_SECONDS
    max_pending = MAX_PENDING

    def __init__(self, engine: Engine, *, progress_key: str | None = None) -> None:
        self.engine = engine
        # An audit recorder's key: each append also stores how many of the entries this
        # auditor was handed are done (`done`), for its server to read if it ends unheard.
        self.progress_key = progress_key
        self.done = 0
        self._pending: deque[Entry] = deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def later(self, entry: Entry) -> None:
        self._pending.append(entry)
        if len(self._pending) >= self.max_pending:
            # The background work is not keeping up: the caller does it, so memory stays
            # bounded and the load slows down instead of the trail falling behind.
            self._catch_up()
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop:
                    self._thread = threading.Thread(target=self._run, name="audit",
                                                    daemon=True)
                    self._thread.start()

    def hold(self, entries: Iterable[Entry]) -> None:
        """Queue entries for the next `flush`, without the background thread (for an owner
        that flushes on its own beat: the audit recorder process)."""
        self._pending.extend(entries)

    @property
    def held(self) -> int:
        """Entries waiting for a flush."""
        return len(self._pending)

    def _catch_up(self) -> None:
        with self._lock:
            if len(self._pending) >= self.max_pending:
                try:
                    Auditor.flush(self)
                except Exception as error:  # the database is away: no answer unaudited
                    raise AuditUnavailable(len(self._pending)) from error

    def _beat(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Append what is pending now (the background thread does this every half second).
        If the batch fails, each entry is tried alone: one the database refuses is logged
        and dropped rather than holding back every entry after it; if the database is away,
        the entries wait for the next beat."""
        entries = []
        while self._pending:
            entries.append(self._pending.popleft())
        if not entries:
            return
        try:
            with write_transaction(self.engine) as conn:
                append(conn, entries, progress=self._progress(len(entries)))
            self.done += len(entries)
            return
        except Exception:
            log.warning("a batch of %d audit entries failed; writing them one by one",
                        len(entries))
        for number, entry in enumerate(entries):
            try:
                with write_transaction(self.engine) as conn:
                    append(conn, [entry], progress=self._progress(number + 1))
            except (DataError, IntegrityError):
                log.exception("an audit entry (%s by %s) cannot be written",
                              entry.subtype, entry.actor)
            except Exception:  # the database is away: keep the rest for the next beat
                self._pending.extendleft(reversed(entries[number:]))
                self.done += number
                raise
        self.done += len(entries)

    def _progress(self, more: int) -> Progress | None:
        """What an append of the next `more` entries stores as this auditor's progress."""
        return None if self.progress_key is None else (self.progress_key, self.done + more)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop:
            if self._wake.wait(self.beat_seconds) and not self._stop:
                self._wake.clear()  # woken early (a full queue), not stopped
            try:
                self._beat()
            except Exception as error:  # the database is away: next beat
                log.debug("audit entries wait for the next beat: %s", error)


# --- entries of FHIR interactions ----------------------------------------------------------------


def entry_for(request: FhirRequest, response: FhirResponse, *,
              read: tuple[str, str] | None = None) -> Entry:
    """The audit entry of one interaction and its answer (`read`: a read by id of this
    (type, id), known already: the commonest entry, spared working out the rest)."""
    status = response.status
    detail = ""
    if status >= 400 and response.resource is not None:
        issues = response.resource.get("issue") or [{}]
        detail = str(issues[0].get("diagnostics", ""))[:500]
    query = "&".join(f"{k}={v}" for k, v in request.query)
    if request.access.emergency:  # every interaction while the glass is broken is flagged
        detail = f"emergency access ({request.access.emergency_reason}) {detail}".strip()
    return Entry(
        subtype="read" if read else interaction_of(request, response),
        actor=request.access.subject,
        outcome=0 if status < 400 else 4 if status < 500 else 8,
        source=request.source,
        path=f"{request.method} {request.path}" + (f"?{query}" if query else ""),
        entities=(f"{read[0]}/{read[1]}",) if read else _entities(request, response),
        detail=detail,
    )


def interaction_of(request: FhirRequest, response: FhirResponse) -> str:
    """The FHIR RESTful interaction code of a request."""
    parts = [p for p in request.path.strip("/").split("/") if p]
    method, n = request.method, len(parts)
    if any(part.startswith("$") for part in parts):
        return "operation"
    if n == 0:
        if method == "POST":
            kind = (response.resource or {}).get("type", "")
            return "batch" if kind == "batch-response" else "transaction"
        return "search-system"
    if parts[0] == "metadata":
        return "capabilities"
    if parts[0] == "_history":
        return "history-system"
    if n == 1 or (n == 2 and parts[1] == "_search"):
        return {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(
            method if n == 1 else "", "search-type")
    if parts[1] == "_history":
        return "history-type"
    if n == 2:
        return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "read")
    if parts[2] == "_history":
        return "vread" if n == 4 else "history-instance"
    return "search-compartment"


def _entities(request: FhirRequest, response: FhirResponse) -> tuple[str, ...]:
    if response.entities:
        return response.entities
    if response.stored is not None:
        return (f"{response.stored.res_type}/{response.stored.res_id}",)
    body = response.resource
    if body is not None and body.get("resourceType") == "Bundle":
        found = []
        for item in body.get("entry") or []:
            location = (item.get("response") or {}).get("location")
            full_url = item.get("fullUrl")
            if location:
                found.append("/".join(str(location).split("/")[:2]))
            elif full_url:
                found.append("/".join(str(full_url).rsplit("/", 2)[-2:]))
        return tuple(dict.fromkeys(found))
    parts = [p for p in request.path.strip("/").split("/") if p]
    if len(parts) >= 2 and not parts[1].startswith(("_", "$")):
        return (f"{parts[0]}/{parts[1]}",)
    return ()


# --- as FHIR AuditEvents --------------------------------------------------------------------------

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_REST = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
         "display": "RESTful Operation"}
_LOGIN = {"system": _DCM, "code": "110114", "display": "User Authentication"}
_SIGN_IN_SUBTYPES = {"login": ("110122", "Login"), "logout": ("110123", "Logout"),
                     "token": ("110122", "Login")}


def to_audit_event(seq: int, entry_json: str) -> dict[str, Any]:
    fields: dict[str, Any] = jsonfmt.loads(entry_json)
    subtype = fields["subtype"]
    if subtype in _SIGN_IN_SUBTYPES:
        code, display = _SIGN_IN_SUBTYPES[subtype]
        kind, sub = _LOGIN, {"system": _DCM, "code": code, "display": display}
    else:
        kind, sub = _REST, {"system": "http://hl7.org/fhir/restful-interaction",
                            "code": subtype}
    event: dict[str, Any] = {
        "resourceType": "AuditEvent", "id": str(seq), "type": kind, "subtype": [sub],
        "action": _ACTIONS.get(subtype, "E"), "recorded": fields["recorded"],
        "outcome": str(fields["outcome"]),
        "agent": [{"who": {"display": fields["actor"]}, "requestor": True,
                   **({"network": {"address": fields["source"], "type": "2"}}
                      if fields["source"] else {})}],
        "source": {"observer": {"display": "Yilian"}},
    }
    if fields["detail"]:
        event["outcomeDesc"] = fields["detail"]
    entities: list[dict[str, Any]] = [{"what": {"reference": ref}} for ref in fields["entities"]]
    if fields["path"]:
        entities.append({"description": fields["path"]})
    if entities:
        event["entity"] = entities
    return event

