"""batch and transaction Bundles, as the specification describes them (http.html#transaction).

A transaction is one database transaction: its entries are planned (ids assigned, conditional
creates and updates resolved, urn:uuid and conditional references rewritten), then processed
in the order DELETE, POST, PUT/PATCH, GET/HEAD; the first failure rolls everything back and
the answer names the failing entry. A batch runs each entry in a transaction of its own.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from yilian.errors import BadRequest, OutcomeIssue, PreconditionFailed, YilianError
from yilian.fhir import definitions, interactions
from yilian.fhir.access import Interaction
from yilian.fhir.bundle_links import NO_LINKS, Links, find_links, path_to
from yilian.fhir.guard import (
    require,
    require_instance,
    require_patients_seen,
    require_unmasked,
    written,
)
from yilian.fhir.interactions import Context, Preferences
from yilian.fhir.messages import FhirRequest, FhirResponse, JsonObject
from yilian.fhir.store.sql import Indexer, IndexRows
from yilian.kit import jsonfmt
from yilian.kit.clock import to_instant, utcnow
from yilian.kit.ids import new_id

if TYPE_CHECKING:
    from yilian.fhir.router import FhirRouter, RouterOptions

log = logging.getLogger("yilian.fhir")

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class Entry:
    index: int
    method: str
    path: str  # "Patient", "Patient/1", "Patient/1/_history/2"
    query: list[tuple[str, str]]
    resource: JsonObject | None
    full_url: str | None
    if_none_exist: str | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    target_id: str | None = None  # the id this entry writes, once planned
    outcome: FhirResponse | None = None
    prepared: IndexRows | None = None  # validated and indexed before the transaction

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def res_type(self) -> str:
        return self.path.split("/")[0]

    def as_request(self) -> FhirRequest:
        headers = {
            name: value
            for name, value in (
                ("if-none-exist", self.if_none_exist),
                ("if-match", self.if_match),
                ("if-none-match", self.if_none_match),
                ("if-modified-since", self.if_modified_since),
            )
            if value is not None
        }
        return FhirRequest(
            self.method, self.path, tuple(self.query), headers, resource=self.resource
        )


def _entry_error(entry_index: int, error: YilianError) -> YilianError:
    """The same error, its message and locations saying which entry failed."""
    where = f"Bundle.entry[{entry_index}]"
    issues = [
        OutcomeIssue(
            issue.severity,
            issue.code,
            f"{where}: {issue.diagnostics}",
            issue.expression or (where,),
        )
        for issue in error.issues
    ]
    return error.relocated(f"{where}: {error.message}", issues)


def parse_entries(bundle: Any, *, base_url: str, kind: str) -> list[Entry]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("YL-3001", "POST to the base URL takes a Bundle of type batch or "
                         "transaction", expression=("Bundle",))
    if bundle.get("type") != kind:
        raise BadRequest("YL-3002", f"Bundle.type must be 'batch' or 'transaction', got "
                         f"'{bundle.get('type')}'", expression=("Bundle.type",))
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise BadRequest("YL-3003", "Bundle.entry must be an array", expression=("Bundle.entry",))
    entries = []
    seen: dict[tuple[str, Any], int] = {}  # (fullUrl, meta.versionId) → entry
    for index, raw in enumerate(raw_entries):
        where = f"Bundle.entry[{index}]"
        if not isinstance(raw, dict):
            raise BadRequest("YL-3004", f"{where} must be an object", expression=(where,))
        _check_unique_full_url(raw, index, seen)
        request = raw.get("request")
        if not isinstance(request, dict):
            raise BadRequest("YL-3005", f"{where}.request is required in a {kind}",
                             expression=(f"{where}.request",))
        method = request.get("method")
        if method not in _METHODS:
            raise BadRequest("YL-3006", f"{where}.request.method '{method}' is not one of "
                             + ", ".join(_METHODS), expression=(f"{where}.request.method",))
        url = request.get("url")
        if not isinstance(url, str) or not url:
            raise BadRequest("YL-3007", f"{where}.request.url is required",
                             expression=(f"{where}.request.url",))
        try:
            path, query = _split_url(url, base_url)
        except YilianError as error:
            raise _entry_error(index, error) from error
        resource = raw.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise BadRequest("YL-3008", f"{where}: {method} needs a resource",
                             expression=(f"{where}.resource",))
        if method == "PATCH":
            resource = _patch_body(raw, where)
        full_url = raw.get("fullUrl")
        entries.append(
            Entry(
                index=index,
                method=method,
                path=path,
                query=query,
                resource=resource,
                full_url=full_url if isinstance(full_url, str) else None,
                if_none_exist=_str(request.get("ifNoneExist")),
                if_match=_str(request.get("ifMatch")),
                if_none_match=_str(request.get("ifNoneMatch")),
                if_modified_since=_str(request.get("ifModifiedSince")),
            )
        )
    return entries


# What an entry's resource is replaced with when the Bundle itself is validated: the
# resources are each validated on their own, with their entry's path.
_STUB = {"resourceType": "Basic", "code": {"text": "entry"}}


def check_bundle(bundle: JsonObject) -> None:
    """The batch or transaction Bundle itself against R4's Bundle: its elements (an unknown
    one, a malformed timestamp or fullUrl, a search mode outside its required binding), its
    entries' resources aside."""
    entries = bundle.get("entry")
    shell = bundle if not isinstance(entries, list) else {**bundle, "entry": [
        {**entry, "resource": _STUB}
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict) else entry
        for entry in entries]}
    if entries == []:  # "entry": [] is no entry, as clients often write an empty Bundle
        del shell["entry"]
    interactions.check_resource("Bundle", shell, validate=True)


def _check_unique_full_url(raw: JsonObject, index: int, seen: dict[tuple[str, Any], int]
                           ) -> None:
    """bdl-7: a fullUrl is unique in a Bundle, but for versions of one resource (different
    meta.versionId). Two entries of one fullUrl would leave references to it ambiguous."""
    full_url = raw.get("fullUrl")
    if not isinstance(full_url, str):
        return
    resource = raw.get("resource")
    meta = resource.get("meta") if isinstance(resource, dict) else None
    key = (full_url, meta.get("versionId") if isinstance(meta, dict) else None)
    if key in seen:
        raise BadRequest("YL-3017", f"Bundle.entry[{index}].fullUrl '{full_url}' is already "
                         f"Bundle.entry[{seen[key]}]'s: a fullUrl is unique in a Bundle (bdl-7)",
                         expression=(f"Bundle.entry[{index}].fullUrl",))
    seen[key] = index


def _patch_body(raw: JsonObject, where: str) -> Any:
    """A JSON Patch travels in a Binary resource (FHIR R4 http.html#patch)."""
    resource = raw.get("resource")
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        data = resource.get("data")
        try:
            if not isinstance(data, str):
                raise ValueError("no base64 data")
            return jsonfmt.loads(base64.b64decode(data, validate=True))
        except (ValueError, binascii.Error, jsonfmt.JsonDecodeError) as error:
            raise BadRequest("YL-3009", f"{where}: the Binary does not hold a JSON Patch",
                             expression=(f"{where}.resource.data",)) from error
    raise BadRequest("YL-3009", f"{where}: PATCH needs a Binary resource holding a JSON Patch",
                     expression=(f"{where}.resource",))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _split_url(url: str, base_url: str) -> tuple[str, list[tuple[str, str]]]:
    """The request's path relative to this server, and its query.

    An absolute URL on another base (an IG's canonical, say) is read from its resource type
    on: http://hl7.org/fhir/us/sdc/Questionnaire/54127-6 → Questionnaire/54127-6.
    """
    if url.startswith(base_url + "/"):
        url = url[len(base_url) + 1 :]
    elif "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError as error:
            raise BadRequest("YL-3016", f"'{url}' is not a URL") from error
        segments = parts.path.strip("/").split("/")
        types = definitions.resource_types()
        start = max((i for i, s in enumerate(segments) if s in types), default=0)
        url = "/".join(segments[start:]) + (f"?{parts.query}" if parts.query else "")
    path, _, query = url.lstrip("/").partition("?")
    return path, parse_qsl(query, keep_blank_values=True)


# ------------------------------------------------------------------------------ transaction


def prepare_transaction(
    bundle: Any, *, base_url: str, validate: bool, indexer: Indexer | None
) -> list[Entry] | None:
    """The work of a transaction that needs no database, done before the write lock.

    When nothing in the Bundle is conditional (no ifNoneExist, conditional URL or conditional
    reference), ids are assigned, references rewritten, and every resource validated and
    indexed here: on SQLite the lock is then held only for the writes, so a second server
    process can do this work for another transaction meanwhile. Otherwise `process_bundle`
    does it all inside the transaction, where conditional criteria can be resolved.
    """
    entries = parse_entries(bundle, base_url=base_url, kind="transaction")
    if validate:
        check_bundle(bundle)
    if any(_conditional(entry) for entry in entries):
        return None
    ids = _plan(None, entries)
    found = [
        find_links(entry.resource, ids)
        if entry.method in ("POST", "PUT") and isinstance(entry.resource, dict)
        else NO_LINKS
        for entry in entries
    ]
    if any("?" in node["reference"] for links in found for node in links.references):
        return None  # a conditional reference: resolved inside the transaction
    for entry, links in zip(entries, found, strict=True):
        if entry.resource is None or entry.method not in ("POST", "PUT") or "$" in entry.path:
            continue
        try:
            entry.resource = _rewrite_references(None, entry.resource, ids, entry.where,
                                                 full_url=entry.full_url, links=links)
            interactions.check_type(entry.res_type)
            resource = interactions.check_resource(entry.res_type, entry.resource,
                                                   validate=validate,
                                                   where=f"{entry.where}.resource")
        except YilianError as error:
            raise _entry_error(entry.index, error) from error
        entry.prepared = indexer(resource, local_base=base_url) if indexer is not None \
            else {}
    return entries


def _conditional(entry: Entry) -> bool:
    """Whether planning the entry needs the database (a search, or an error to report)."""
    return bool(entry.if_none_exist) or (
        entry.method in ("PUT", "PATCH", "DELETE") and "/" not in entry.path
    )


def process_bundle(
    ctx: Context,
    bundle: Any,
    prepared: list[Entry] | None,
    request: FhirRequest,
    options: RouterOptions,
) -> FhirResponse:
    """The transaction itself. It may run more than once (a rerun after losing a race), so
    it keeps no state between runs: prepared entries only gain their outcomes, and a Bundle
    planned here is parsed afresh and its resources copied before references are rewritten.
    """
    from yilian.fhir.router import dispatch

    if prepared is not None:
        entries = prepared
        for entry in entries:
            entry.outcome = None
    else:
        entries = parse_entries(bundle, base_url=ctx.base_url, kind="transaction")
        ids = _plan(ctx, entries)
        for entry in entries:
            if entry.resource is not None and entry.method in ("POST", "PUT"):
                try:
                    entry.resource = _rewrite_references(
                        ctx, copy.deepcopy(entry.resource), ids, entry.where,
                        full_url=entry.full_url,
                    )
                except YilianError as error:
                    raise _entry_error(entry.index, error) from error
    # Entries answer without their resource unless the client asks for it (as HAPI does):
    # a 500-entry ingestion should not echo every resource back.
    asked = request.header("prefer")
    prefer = Preferences.parse(asked) if asked else Preferences("minimal")
    for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
        if entry.outcome is not None:
            continue  # an ifNoneExist that matched: nothing to write
        try:
            entry.outcome = _run(ctx, entry, prefer, options, dispatch)
        except YilianError as error:
            raise _entry_error(entry.index, error) from error
    # What the caller wrote must be within what it may see once the whole transaction is
    # done (a patient PUT after the POSTs about it, as the processing order has it).
    for entry in entries:
        if entry.method in ("POST", "PUT") and entry.outcome is not None \
                and "$" not in entry.path and entry.resource is not None:
            interaction = Interaction.CREATE if entry.method == "POST" else Interaction.UPDATE
            try:
                written(ctx, interaction, entry.res_type, entry.outcome)
            except YilianError as error:
                raise _entry_error(entry.index, error) from error
    return FhirResponse(200, resource=_response_bundle(
        "transaction-response", entries, ctx.base_url,
        outcomes=prefer.return_ == "OperationOutcome"))


def _run(
    ctx: Context, entry: Entry, prefer: Preferences, options: RouterOptions, dispatch: Any
) -> FhirResponse:
    where = f"{entry.where}.resource"
    if entry.method == "POST" and "$" not in entry.path:
        if not entry.path or "/" in entry.path:
            raise BadRequest("YL-3010", "POST entries must name a resource type",
                             expression=(f"{entry.where}.request.url",))
        require(ctx, Interaction.CREATE, entry.res_type)
        require_unmasked(ctx, entry.resource)
        require_patients_seen(ctx, Interaction.CREATE, entry.res_type, entry.resource)
        return interactions.do_create(
            ctx, entry.res_type, entry.resource, prefer=prefer, res_id=entry.target_id,
            where=where, prepared=entry.prepared,
        )
    if entry.method == "PUT" and entry.target_id is not None:
        body = entry.resource
        if isinstance(body, dict) and body.get("id") is None:
            body = {**body, "id": entry.target_id}
        require_instance(ctx, Interaction.UPDATE, entry.res_type, entry.target_id,
                         may_be_new=True)
        require_unmasked(ctx, body)
        require_patients_seen(ctx, Interaction.UPDATE, entry.res_type, body)
        return interactions.do_update(
            ctx, entry.res_type, entry.target_id, body, if_match=entry.if_match,
            prefer=prefer, where=where, prepared=entry.prepared,
        )
    if entry.method in ("GET", "HEAD"):
        ctx.writer.flush()
    response: FhirResponse = dispatch(ctx, entry.as_request(), options)
    return response


_Criteria = tuple[str, tuple[tuple[str, str], ...]]  # a type and its query, pairs sorted


def _criteria(res_type: str, query: Iterable[tuple[str, str]]) -> _Criteria:
    return res_type, tuple(sorted(query))


class _Ids(dict[str, str]):
    """fullUrl → the local reference (Type/id) of the resource its entry writes; `created`:
    the fullUrls of entries that create theirs (its first version is this transaction's);
    `conditional`: the criteria of conditional creates and updates → their resources (a
    conditional reference with the same criteria means that one, as HAPI reads it, also when
    the transaction creates it)."""

    def __init__(self) -> None:
        super().__init__()
        self.created: set[str] = set()
        self.conditional: dict[_Criteria, str] = {}


def _plan(ctx: Context | None, entries: list[Entry]) -> _Ids:
    """Assign every written resource its id; map fullUrls to the local references.
    Without a context (before the transaction) no entry may be conditional."""
    ids = _Ids()
    targets: set[str] = set()
    for entry in entries:
        try:
            _plan_entry(ctx, entry, ids)
        except YilianError as error:
            raise _entry_error(entry.index, error) from error
        if entry.method in ("POST", "PUT", "PATCH", "DELETE") and entry.target_id:
            key = f"{entry.res_type}/{entry.target_id}"
            if key in targets:
                raise BadRequest(
                    "YL-3011",
                    f"{entry.where}: {key} is written by more than one entry of the transaction",
                    expression=(entry.where,),
                )
            targets.add(key)
    return ids


def _plan_entry(ctx: Context | None, entry: Entry, ids: _Ids) -> None:
    parts = entry.path.split("/") if entry.path else []
    if entry.method in ("POST", "PUT", "PATCH", "DELETE") and parts:
        interactions.check_type(parts[0])
    if entry.method == "POST" and "$" in entry.path:
        return  # an operation: nothing to plan
    if entry.method == "POST":
        if entry.if_none_exist:
            from yilian.fhir.router import header_criteria

            assert ctx is not None, "conditional entries are planned in the transaction"
            matches = interactions.find_matches(
                ctx, entry.res_type, header_criteria(entry.if_none_exist)
            )
            if len(matches) > 1:
                raise PreconditionFailed(
                    "YL-3012",
                    f"ifNoneExist matched {len(matches)} {entry.res_type} resources",
                )
            if matches:
                entry.target_id = matches[0]
                from yilian.fhir.store import sql as store

                stored = store.read_current(ctx.conn, entry.res_type, matches[0])
                assert stored is not None
                entry.outcome = interactions.resource_response(ctx.base_url, stored, status=200)
        if entry.target_id is None:
            entry.target_id = new_id()
    elif entry.method == "PUT" and len(parts) == 1:
        assert ctx is not None, "conditional entries are planned in the transaction"
        # As a PUT to Type?criteria would: the transaction processes each entry "as if it
        # were an individual interaction" (http.html#transaction).
        entry.target_id = interactions.conditional_update_target(
            ctx, entry.res_type, entry.query, entry.resource, where=f"{entry.where}.resource")
    elif entry.method in ("PUT", "PATCH", "DELETE") and len(parts) == 2:
        interactions.check_id(parts[1])
        entry.target_id = parts[1]
    elif entry.method in ("PATCH", "DELETE") and len(parts) == 1:
        assert ctx is not None, "conditional entries are planned in the transaction"
        if entry.method == "PATCH":  # as PATCH Type?criteria: one match, else 412 or 404
            matches = [interactions.conditional_patch_target(ctx, entry.res_type, entry.query)]
        else:
            matches = interactions.find_matches(ctx, entry.res_type, entry.query)
        if len(matches) > 1:
            raise PreconditionFailed(
                "YL-3014", f"The conditional DELETE matched {len(matches)} resources"
            )
        if matches:
            entry.target_id = matches[0]
            entry.path = f"{entry.res_type}/{matches[0]}"
            entry.query = []
        else:
            entry.outcome = FhirResponse(204)
    if entry.full_url and entry.target_id and entry.method in ("POST", "PUT"):
        ids[entry.full_url] = f"{entry.res_type}/{entry.target_id}"
        if entry.method == "POST" and entry.outcome is None:
            ids.created.add(entry.full_url)
    if entry.target_id and entry.method == "POST" and entry.if_none_exist:
        from yilian.fhir.router import header_criteria

        ids.conditional[_criteria(entry.res_type, header_criteria(entry.if_none_exist))] = \
            f"{entry.res_type}/{entry.target_id}"
    elif entry.target_id and entry.method == "PUT" and len(parts) == 1:
        ids.conditional[_criteria(entry.res_type, entry.query)] = \
            f"{entry.res_type}/{entry.target_id}"


def _rewrite_references(
    ctx: Context | None,
    resource: JsonObject,
    ids: _Ids,
    where: str,
    *,
    full_url: str | None = None,
    links: Links | None = None,
) -> JsonObject:
    """Turn urn:uuid, fullUrl and conditional references into Type/id, in place (the
    resource was parsed from this request, so nothing else holds it), and the other links
    the specification names (http.html#trules): uri-like elements whose whole value is an
    entry's fullUrl, and href/src links in the narrative. `full_url`: the entry's own, which
    relative references are read against. `links`: when already found."""
    if links is None:
        links = find_links(resource, ids)
    for node in links.references:
        reference = node["reference"]
        if (local := _entry_reference(reference, ids, full_url)) is not None:
            node["reference"] = local
        elif reference.startswith(("urn:uuid:", "urn:oid:")):
            raise BadRequest(
                "YL-3020",
                f"The reference '{reference}' names no entry of this transaction",
                expression=(_reference_path(resource, node, where),),
            )
        elif "?" in reference:
            head, _, query = reference.partition("?")
            if not head or "/" in head:
                continue
            assert ctx is not None, "conditional references are resolved in the transaction"
            interactions.check_type(head)
            criteria = parse_qsl(query, keep_blank_values=True)
            if (planned := ids.conditional.get(_criteria(head, criteria))) is not None:
                node["reference"] = planned
                continue
            matches = interactions.find_matches(ctx, head, criteria)
            if len(matches) != 1:
                raise PreconditionFailed(
                    "YL-3021",
                    f"The conditional reference '{reference}' matched {len(matches)} "
                    "resources; it must match exactly one",
                    expression=(_reference_path(resource, node, where),),
                )
            node["reference"] = f"{head}/{matches[0]}"
    for container, key in links.values:
        container[key] = ids[container[key]]
    text = resource.get("text")
    div = text.get("div") if isinstance(text, dict) else None
    if isinstance(text, dict) and isinstance(div, str) and ("href=" in div or "src=" in div):
        text["div"] = _LINK.sub(
            lambda m: f'{m.group(1)}="{ids.get(m.group(2), m.group(2))}"', div
        )
    return resource


_LINK = re.compile(r'\b(href|src)="([^"]*)"')
# A RESTful fullUrl: the server's base, then Type/id (bundle.html#references).
_RESTFUL = re.compile(r"^(https?://.+)/[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _entry_reference(reference: str, ids: _Ids, full_url: str | None) -> str | None:
    """The local reference for a reference to an entry of the Bundle, if it is one
    (bundle.html#references): by the entry's fullUrl; a relative Type/id read against the
    referring entry's RESTful base; a version-specific one by its versionless URL, staying
    version-specific (http.html#trules) where the version is known: the first, of an entry
    that creates its resource."""
    if (local := ids.get(reference)) is not None:
        return local
    target, versioned, _ = reference.partition("/_history/")
    if "://" not in target and not target.startswith("urn:") and full_url \
            and (restful := _RESTFUL.match(full_url)):
        target = f"{restful.group(1)}/{target}"
    local = ids.get(target)
    if local is None or not versioned:
        return local
    if target in ids.created:
        return f"{local}/_history/1"
    return None if reference.startswith(local) else local  # as written if it is already


def _reference_path(resource: JsonObject, node: JsonObject, where: str) -> str:
    return f"{path_to(resource, node, f'{where}.resource') or where}.reference"


# ------------------------------------------------------------------------------------ batch


def process_batch(
    router: FhirRouter, bundle: Any, request: FhirRequest, base_url: str
) -> FhirResponse:
    """Each entry on its own: one failing entry is reported and the others still happen."""
    from yilian.fhir.router import dispatch, is_write
    from yilian.kit.db import read_transaction

    entries = parse_entries(bundle, base_url=base_url, kind="batch")
    if router.options.validate:
        check_bundle(bundle)
    prefer = request.header("prefer")
    full_urls = {entry.full_url for entry in entries if entry.full_url}
    for entry in entries:
        single = entry.as_request()
        if prefer:
            single = FhirRequest(single.method, single.path, single.query,
                                 {**single.headers, "prefer": prefer}, resource=single.resource)
        try:
            _refer_to_no_entry(entry, full_urls)
            if is_write(single, router.options.operations):
                entry.outcome = router.write(
                    functools.partial(dispatch, request=single, options=router.options),
                    base_url,
                    request.access,
                    audited=replace(single, access=request.access, source=request.source),
                )
            else:
                with read_transaction(router.engine) as conn:
                    ctx = Context(conn, base_url, validate=router.options.validate,
                                  access=request.access)
                    entry.outcome = dispatch(ctx, single, router.options)
        except YilianError as error:
            entry.outcome = FhirResponse(error.http_status,
                                         resource=_entry_error(entry.index, error).to_outcome())
        except Exception:
            # Entries before this one are committed: the batch must still answer for each.
            log.exception("unexpected failure in batch entry %d", entry.index)
            failure = YilianError("YL-0500", "The server failed on this entry unexpectedly; "
                                  "nothing of it was written", issue_type="exception")
            entry.outcome = FhirResponse(500, resource=failure.to_outcome())
    asked = Preferences.parse(prefer) if prefer else None
    return FhirResponse(200, resource=_response_bundle(
        "batch-response", entries, base_url,
        outcomes=asked is not None and asked.return_ == "OperationOutcome"))


# ---------------------------------------------------------------------------------- answers


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _refer_to_no_entry(entry: Entry, full_urls: set[str]) -> None:
    """A batch's entries are processed each on its own: one referring to another's fullUrl
    is "non-conformant", and "Servers SHOULD validate that this is the case" (http.html
    #brules); stored, the reference would point at nothing."""
    if not full_urls or not isinstance(entry.resource, dict):
        return
    for node in find_links(entry.resource, ()).references:
        if node["reference"] in full_urls:
            raise BadRequest(
                "YL-3022", f"The reference '{node['reference']}' is to another entry of this "
                "batch, whose entries are processed each on its own: send a transaction",
                expression=(_reference_path(entry.resource, node, entry.where),))


def _response_bundle(kind: str, entries: list[Entry], base_url: str, *,
                     outcomes: bool = False) -> JsonObject:
    """`outcomes`: the client asked for OperationOutcomes (Prefer: return=OperationOutcome)."""
    return {
        "resourceType": "Bundle",
        "id": new_id(),
        "meta": {"lastUpdated": to_instant(utcnow())},
        "type": kind,
        **({"entry": list(_response_entries(entries, base_url, outcomes))} if entries else {}),
    }


def _response_entries(entries: list[Entry], base_url: str, outcomes: bool
                      ) -> Iterator[JsonObject]:
    for entry in entries:
        outcome = entry.outcome
        assert outcome is not None
        response: JsonObject = {"status": _status_line(outcome.status)}
        stored = outcome.stored
        result: JsonObject = {}
        if stored is not None:
            result["fullUrl"] = f"{base_url}/{stored.res_type}/{stored.res_id}"
            if outcome.status == 201 or entry.method in ("POST", "PUT", "PATCH"):
                response["location"] = (
                    f"{stored.res_type}/{stored.res_id}/_history/{stored.version}"
                )
            response["etag"] = stored.etag
            response["lastModified"] = to_instant(stored.last_updated)
        # HEAD: "the same response as a GET, but with no body" (http.html#head).
        body = None if entry.method == "HEAD" and outcome.status < 400 else outcome.body_bytes()
        if body is not None:
            import orjson

            # An error's outcome, or the one `Prefer: return=OperationOutcome` asked for,
            # goes in response.outcome, "hints and warnings produced as part of processing
            # this entry"; a resource in entry.resource.
            if outcome.status >= 400 or (outcomes and entry.method in ("POST", "PUT", "PATCH")):
                response["outcome"] = orjson.Fragment(body)
            else:
                result["resource"] = orjson.Fragment(body)
        result["response"] = response
        yield result
