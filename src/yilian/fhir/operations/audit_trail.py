"""`$audit-trail`: the server's own audit trail (fhir.audit), searched as AuditEvents.

    GET /fhir/$audit-trail?entity=Patient/1&agent-name=user alice&date=ge2026-11-01
                          &outcome=4&subtype=read&_count=50
    GET /fhir/$audit-trail?_id=42

Newest first, `next` links by sequence. Only callers granted AuditEvent by name may look (a
privacy officer's `user/AuditEvent.rs`; `*` scopes do not reach it: fhir.access). The trail
is apart from AuditEvent resources other systems send (stored and searched like any type),
and nobody writes it through the API.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from yilian.errors import BadRequest
from yilian.fhir.access import Interaction
from yilian.fhir.audit import to_audit_event
from yilian.fhir.bundles import link, page_url
from yilian.fhir.interactions import Context
from yilian.fhir.messages import FhirResponse
from yilian.fhir.operations import Invocation, Operation
from yilian.fhir.search import values as parse_values
from yilian.fhir.search.predicates import date_bounds, range_prefix
from yilian.fhir.store.tables import audit_entity, audit_log
from yilian.kit.clock import to_instant, utcnow
from yilian.kit.ids import new_id

_PARAMETERS = frozenset({"entity", "agent-name", "date", "outcome", "subtype", "_id",
                         "_count", "_cursor", "_format", "_pretty"})
_SEARCHED = "entity, agent-name, date, outcome, subtype and _id"


def audit_trail(ctx: Context, call: Invocation) -> FhirResponse:
    ctx.access.require(Interaction.SEARCH, "AuditEvent")
    return _search(ctx, list(call.request.query), 20, 1000)


def operation() -> Operation:
    return Operation(_DEFINITION, audit_trail)


_DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition", "id": "audit-trail",
    "url": "http://yilian.example.org/fhir/OperationDefinition/audit-trail",
    "name": "AuditTrail", "title": "The server's audit trail", "status": "active",
    "kind": "operation", "code": "audit-trail", "affectsState": False,
    "system": True, "type": False, "instance": False,
    "description": "Searches the server's append-only, hash-chained audit trail; answers a "
                   "searchset Bundle of AuditEvents, newest first.",
    "parameter": [
        {"name": name, "use": "in", "min": 0, "max": "*", "type": kind, "documentation": text}
        for name, kind, text in (
            ("entity", "string", "Type/id the entries are about"),
            ("agent-name", "string", "who: 'user alice', 'client:lis'"),
            ("date", "string", "when, with FHIR date prefixes"),
            ("outcome", "string", "0, 4, 8 or 12"),
            ("subtype", "string", "read, search-type, create, update, login, token..."),
            ("_id", "string", "one entry, by its sequence number"),
            ("_count", "string", "entries per page"))
    ] + [{"name": "return", "use": "out", "min": 1, "max": "1", "type": "Bundle"}],
}


def _search(ctx: Context, pairs: list[tuple[str, str]], page_size: int,
            max_page_size: int) -> FhirResponse:
    conditions: list[ColumnElement[bool]] = []
    count = page_size
    for name, value in pairs:
        if name not in _PARAMETERS:
            raise BadRequest("YL-4051", f"AuditEvent is searched by {_SEARCHED}; not '{name}'",
                             expression=(name,))
        if name == "entity":
            conditions.append(audit_log.c.seq.in_(select(audit_entity.c.seq).where(
                audit_entity.c.reference.in_(value.split(",")))))
        elif name == "agent-name":
            conditions.append(audit_log.c.actor.in_(value.split(",")))
        elif name == "date":
            day = parse_values.parse_date(name, value)
            conditions.append(range_prefix(audit_log.c.recorded, audit_log.c.recorded,
                                           day.prefix, *date_bounds(day)))
        elif name == "outcome":
            if not all(v in ("0", "4", "8", "12") for v in value.split(",")):
                raise BadRequest("YL-4054", "outcome is 0, 4, 8 or 12", expression=(name,))
            conditions.append(audit_log.c.outcome.in_([int(v) for v in value.split(",")]))
        elif name == "subtype":
            conditions.append(audit_log.c.subtype.in_(value.split(",")))
        elif name == "_id":
            conditions.append(audit_log.c.seq.in_([int(v) for v in value.split(",")
                                                   if _sequence_number(v)]))
        elif name == "_count":
            count = _count(value, max_page_size)
        elif name == "_cursor":
            if not _sequence_number(value):
                raise BadRequest("YL-4052", "_cursor is not one of this server's",
                                 expression=("_cursor",))
            conditions.append(audit_log.c.seq < int(value))
    rows = ctx.conn.execute(select(audit_log.c.seq, audit_log.c.entry).where(*conditions)
                            .order_by(audit_log.c.seq.desc()).limit(count + 1)).all()
    page = rows[:count]
    applied = [(k, v) for k, v in pairs if k not in ("_cursor", "_format", "_pretty")]
    links = [link("self", page_url(ctx.base_url, "$audit-trail", pairs))]
    if len(rows) > count:
        links.append(link("next", page_url(ctx.base_url, "$audit-trail",
                                           [*applied, ("_cursor", str(page[-1].seq))])))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle", "id": new_id(), "meta": {"lastUpdated": to_instant(utcnow())},
        "type": "searchset", "link": links,
        "entry": [{"fullUrl": f"urn:yilian:audit:{row.seq}",
                   "resource": to_audit_event(row.seq, row.entry),
                   "search": {"mode": "match"}} for row in page],
    }
    return FhirResponse(200, resource=bundle)


def _sequence_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def _count(value: str, max_page_size: int) -> int:
    if not _sequence_number(value) or not 1 <= int(value) <= max_page_size:
        raise BadRequest("YL-4053", f"_count takes 1 to {max_page_size}", expression=("_count",))
    return int(value)
