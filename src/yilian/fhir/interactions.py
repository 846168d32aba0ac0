"""The FHIR RESTful interactions on one resource type: the rules of the specification.

Each function runs inside a transaction the caller opened (a read or a write one), so a
transaction Bundle and a domain action can join several of them into one commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import jsonpatch
from sqlalchemy import Connection

from yilian.errors import (
    BadRequest,
    Conflict,
    Gone,
    NotFound,
    OutcomeIssue,
    PreconditionFailed,
    Unprocessable,
)
from yilian.fhir import definitions
from yilian.fhir.access import UNRESTRICTED, Access, Interaction
from yilian.fhir.messages import FhirResponse, JsonObject
from yilian.fhir.store import sql as store
from yilian.fhir.store.sql import CurrentRow, IndexRows, StoredVersion, UnitOfWork
from yilian.kit import jsonfmt
from yilian.kit.clock import to_http_date
from yilian.kit.ids import is_valid_id, new_id, small_number

QueryPairs = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Preferences:
    return_: str = "representation"  # minimal | representation | OperationOutcome

    @classmethod
    def parse(cls, header: str | None) -> Preferences:
        if not header:
            return cls()
        for part in header.split(";"):
            for item in part.split(","):
                key, _, value = item.strip().partition("=")
                if key.strip().lower() == "return" and value.strip().strip('"') in (
                    "minimal",
                    "representation",
                    "OperationOutcome",
                ):
                    return cls(return_=value.strip().strip('"'))
        return cls()


_NO_PREFERENCES = Preferences()  # one for every answer without a Prefer header


@dataclass
class Context:
    """What an interaction needs: the open transaction and where the server lives."""

    conn: Connection
    base_url: str
    uow: UnitOfWork | None = None
    validate: bool = True
    access: Access = UNRESTRICTED  # what the caller may do (fhir.access)

    @property
    def writer(self) -> UnitOfWork:
        if self.uow is None:
            raise AssertionError("a write interaction ran in a read transaction")
        return self.uow


# ---------------------------------------------------------------------------------- checks


def check_type(res_type: str) -> None:
    if res_type not in definitions.resource_types():
        raise NotFound("YL-1001", f"Unknown resource type '{res_type}'")


def check_id(res_id: str) -> None:
    if not is_valid_id(res_id):
        raise BadRequest(
            "YL-1002",
            f"'{res_id}' is not a valid FHIR id ([A-Za-z0-9-.], 1 to 64 characters)",
        )


def check_resource(
    res_type: str, body: Any, *, validate: bool = True, where: str = ""
) -> JsonObject:
    """The body is a resource of the expected type and, when asked, valid against the R4
    definitions."""
    if not isinstance(body, dict):
        raise BadRequest("YL-1003", "The body must be a JSON object (a FHIR resource)")
    given = body.get("resourceType")
    if given != res_type:
        raise BadRequest(
            "YL-1004",
            f"The body's resourceType '{given}' does not match the URL's type '{res_type}'",
            expression=(_prefixed(where, f"{res_type}.resourceType"),),
        )
    if validate:
        from yilian.fhir.validate import get_validator

        problems = get_validator().validate(body)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            issues = [
                OutcomeIssue("error", p.code, p.message, (_prefixed(where, p.path),))
                for p in errors
            ]
            raise Unprocessable(
                "YL-1005",
                f"{res_type} is not valid FHIR R4: {errors[0].message}",
                issues=issues,
            )
    return body


def _prefixed(where: str, path: str) -> str:
    """Re-root a resource's FHIRPath ("Patient.name[0]") under a Bundle entry, if any."""
    if not where:
        return path
    _, dot, rest = path.partition(".")
    return f"{where}.{rest}" if dot else where


def check_if_match(if_match: str | None, current: CurrentRow | None) -> None:
    """RFC 9110 §13.1.1, which FHIR's version-aware updates follow: `*`, or a list of
    entity tags of which one must be the current version's."""
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",") if tag.strip()]
    exists = current is not None and not current.deleted
    if "*" in tags:
        if exists:
            return
        raise PreconditionFailed("YL-1006", "If-Match: * asked for a current version; "
                                 "there is none")
    if not tags:
        raise BadRequest("YL-1007", "If-Match is empty: give a version ETag such as W/\"3\"")
    expected = [parse_etag(tag) for tag in tags]
    if current is None or current.deleted or current.version not in expected:
        have = "none" if current is None or current.deleted else str(current.version)
        asked = " or ".join(str(version) for version in expected)
        raise PreconditionFailed(
            "YL-1006", f"If-Match asked for version {asked}, the current version is {have}",
        )


def parse_etag(value: str) -> int:
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if small_number(text) is None:
        raise BadRequest("YL-1007", f"'{value}' is not a version ETag such as W/\"3\"")
    return int(text)


# ------------------------------------------------------------------------------- responses


def resource_response(
    base_url: str,
    stored: StoredVersion,
    *,
    status: int = 200,
    prefer: Preferences | None = None,
    resource: JsonObject | None = None,
    location: bool = False,
) -> FhirResponse:
    headers = {"ETag": stored.etag, "Last-Modified": to_http_date(stored.last_updated)}
    if location:
        headers["Location"] = (
            f"{base_url}/{stored.res_type}/{stored.res_id}/_history/{stored.version}"
        )
    choice = (prefer or _NO_PREFERENCES).return_
    if choice == "minimal":
        return FhirResponse(status, headers=headers, stored=stored)
    if choice == "OperationOutcome":
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": f"{stored.res_type}/{stored.res_id} version {stored.version}",
                }
            ],
        }
        return FhirResponse(status, resource=outcome, headers=headers, stored=stored)
    return FhirResponse(
        status, resource=resource, content=stored.content, headers=headers, stored=stored
    )


# ------------------------------------------------------------------------------------ read


def do_read(
    ctx: Context,
    res_type: str,
    res_id: str,
    *,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
) -> FhirResponse:
    check_type(res_type)
    check_id(res_id)
    stored = store.read_current(ctx.conn, res_type, res_id)
    return answer_read(ctx.base_url, res_type, res_id, stored, if_none_match=if_none_match,
                       if_modified_since=if_modified_since)


def answer_read(
    base_url: str,
    res_type: str,
    res_id: str,
    stored: StoredVersion | None,
    *,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
) -> FhirResponse:
    """The read interaction's answer for what the store found (shared by the fast path)."""
    if stored is None:
        raise NotFound("YL-1010", f"{res_type}/{res_id} is not known")
    if stored.deleted:
        raise Gone("YL-1011", f"{res_type}/{res_id} was deleted (version {stored.version})")
    not_modified = (
        _etag_matches(if_none_match, stored.version)
        if if_none_match is not None  # then If-Modified-Since is ignored (RFC 7232 §3.3)
        else if_modified_since is not None and _not_modified_since(if_modified_since, stored)
    )
    if not_modified:
        return FhirResponse(304, headers={"ETag": stored.etag,
                                          "Last-Modified": to_http_date(stored.last_updated)})
    return resource_response(base_url, stored)


def _etag_matches(header: str, version: int) -> bool:
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        try:
            if parse_etag(candidate) == version:
                return True
        except BadRequest:
            continue
    return False


def _not_modified_since(header: str, stored: StoredVersion) -> bool:
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False  # an unparseable date is ignored, as HTTP says
    if since.tzinfo is None:
        return False
    return stored.last_updated.replace(microsecond=0) <= since


def do_vread(ctx: Context, res_type: str, res_id: str, version: str) -> FhirResponse:
    check_type(res_type)
    check_id(res_id)
    number = small_number(version)
    if number is None:
        raise NotFound("YL-1012", f"{res_type}/{res_id} has no version '{version}'")
    stored = store.read_version(ctx.conn, res_type, res_id, number)
    if stored is None:
        raise NotFound("YL-1012", f"{res_type}/{res_id} has no version {version}")
    if stored.deleted:
        raise Gone("YL-1013", f"Version {version} of {res_type}/{res_id} is a deletion")
    return resource_response(ctx.base_url, stored)


# ----------------------------------------------------------------------------------- write


def find_matches(ctx: Context, res_type: str, criteria: QueryPairs, *, limit: int = 2) -> list[str]:
    """Ids matching conditional criteria (strictly parsed: an unknown parameter is an error).

    On PostgreSQL the criteria are locked for the rest of the transaction, so two requests with
    the same criteria run one after the other and the second sees what the first wrote.
    """
    from yilian.fhir.guard import confine
    from yilian.fhir.search.ambiguity import refuse_ambiguous_ids
    from yilian.fhir.search.query import RESULT_PARAMETERS, parse_query, search_ids

    # Matching is searching: the caller must be allowed to, and sees only what it may.
    ctx.access.require(Interaction.SEARCH, res_type)
    parsed = parse_query(res_type, criteria, strict=True)
    result_params = sorted({name for name, _ in criteria
                            if name.partition(":")[0] in RESULT_PARAMETERS} - {
        "_format", "_pretty"})
    if result_params:
        raise BadRequest("YL-1022", f"{', '.join(result_params)} cannot be part of the "
                         "criteria of a conditional interaction", expression=tuple(result_params))
    if not parsed.criteria:
        raise BadRequest("YL-1020", "A conditional interaction needs search criteria")
    # The lock key is the criteria as parsed, so the same query written differently (another
    # order of parameters) takes the same lock.
    store.lock_key(ctx.conn, f"{res_type}?{sorted(parsed.applied())}")
    if ctx.uow is not None:
        ctx.uow.flush()
    expression = confine(ctx.access, res_type, parsed.expression())
    refuse_ambiguous_ids(ctx.conn, res_type, parsed, expression, ctx.base_url)
    return search_ids(ctx.conn, res_type, expression, limit=limit)


def do_create(
    ctx: Context,
    res_type: str,
    body: Any,
    *,
    if_none_exist: QueryPairs | None = None,
    prefer: Preferences | None = None,
    res_id: str | None = None,
    where: str = "",
    prepared: IndexRows | None = None,
) -> FhirResponse:
    """POST: a new resource with an id the server assigns (any id in the body is ignored).

    `prepared`: the index rows of a body already validated and indexed outside the
    transaction (a transaction Bundle does that work before it takes the write lock).
    """
    check_type(res_type)
    resource = check_resource(res_type, body, validate=ctx.validate and prepared is None,
                              where=where)
    if if_none_exist is not None:
        matches = find_matches(ctx, res_type, if_none_exist)
        if len(matches) > 1:
            raise PreconditionFailed(
                "YL-1021",
                f"If-None-Exist matched {len(matches)} {res_type} resources; it must match "
                "at most one",
            )
        if matches:
            stored = store.read_current(ctx.conn, res_type, matches[0])
            assert stored is not None
            return resource_response(ctx.base_url, stored, status=200, prefer=prefer)
    stored, stored_json = ctx.writer.put(
        res_type, res_id or new_id(), resource, method="POST", current=None,
        index_rows=prepared,
    )
    return resource_response(
        ctx.base_url, stored, status=201, prefer=prefer, resource=stored_json, location=True
    )


def do_update(
    ctx: Context,
    res_type: str,
    res_id: str,
    body: Any,
    *,
    if_match: str | None = None,
    prefer: Preferences | None = None,
    method: str = "PUT",
    where: str = "",
    prepared: IndexRows | None = None,
) -> FhirResponse:
    """PUT: a new version, or the first one when the client chose the id (update-as-create).
    `prepared` as for `do_create`."""
    check_type(res_type)
    check_id(res_id)
    resource = check_resource(res_type, body, validate=ctx.validate and prepared is None,
                              where=where)
    body_id = resource.get("id")
    if body_id is None:
        raise BadRequest(
            "YL-1030",
            "An update must carry the resource's id in the body",
            expression=(_prefixed(where, f"{res_type}.id"),),
        )
    if body_id != res_id:
        raise BadRequest(
            "YL-1031",
            f"The body's id '{body_id}' does not match the id '{res_id}' in the URL",
            expression=(_prefixed(where, f"{res_type}.id"),),
        )
    current = ctx.writer.lock_current(res_type, res_id)
    check_if_match(if_match, current)
    if current is not None and not current.deleted:
        unchanged = _unchanged(ctx, res_type, res_id, resource)
        if unchanged is not None:
            return resource_response(ctx.base_url, unchanged, status=200, prefer=prefer)
    stored, stored_json = ctx.writer.put(res_type, res_id, resource, method=method,
                                         current=current, index_rows=prepared)
    created = current is None or current.deleted
    return resource_response(
        ctx.base_url,
        stored,
        status=201 if created else 200,
        prefer=prefer,
        resource=stored_json,
        location=created,
    )


def _unchanged(
    ctx: Context, res_type: str, res_id: str, resource: JsonObject
) -> StoredVersion | None:
    """The current version if the new content equals it (no new version is made then)."""
    current = store.read_current(ctx.conn, res_type, res_id)
    if current is None or current.content is None:
        return None
    previous = jsonfmt.loads(current.content)
    return current if _without_version_meta(previous) == _without_version_meta(resource) else None


def _without_version_meta(resource: JsonObject) -> JsonObject:
    copy = dict(resource)
    meta = dict(copy.get("meta") or {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        copy["meta"] = meta
    else:
        copy.pop("meta", None)
    return copy


def do_conditional_update(
    ctx: Context,
    res_type: str,
    criteria: QueryPairs,
    body: Any,
    *,
    if_match: str | None = None,
    prefer: Preferences | None = None,
    where: str = "",
    prepared: IndexRows | None = None,
) -> FhirResponse:
    check_type(res_type)
    target = conditional_update_target(ctx, res_type, criteria, body, where=where)
    if isinstance(body, dict) and body.get("id") is None:
        body = {**body, "id": target}
    return do_update(
        ctx, res_type, target, body, if_match=if_match, prefer=prefer, where=where,
        prepared=prepared,
    )


def conditional_update_target(
    ctx: Context, res_type: str, criteria: QueryPairs, body: Any, *, where: str = ""
) -> str:
    """The id a conditional update writes: the one resource its criteria match, else the
    body's id (a resource that must not exist yet) or a new one. The same for a PUT to
    `Type?criteria` and for a transaction's entry of it."""
    matches = find_matches(ctx, res_type, criteria)
    if len(matches) > 1:
        raise PreconditionFailed(
            "YL-1032",
            f"The conditional update matched {len(matches)} {res_type} resources; "
            "it must match at most one",
        )
    body_id = body.get("id") if isinstance(body, dict) else None
    if matches:
        if body_id is not None and body_id != matches[0]:
            raise BadRequest(
                "YL-1033",
                f"The body's id '{body_id}' is not the id '{matches[0]}' the criteria matched",
                expression=(_prefixed(where, f"{res_type}.id"),),
            )
        return matches[0]
    if not isinstance(body_id, str):
        return new_id()
    existing = ctx.writer.lock_current(res_type, body_id)
    if existing is not None and not existing.deleted:
        raise Conflict(
            "YL-1034",
            f"The criteria matched nothing, but {res_type}/{body_id} exists: a conditional "
            "update does not overwrite a resource its criteria do not match",
            expression=(_prefixed(where, f"{res_type}.id"),),
        )
    return body_id


def do_patch(
    ctx: Context,
    res_type: str,
    res_id: str,
    operations: Any,
    *,
    if_match: str | None = None,
    prefer: Preferences | None = None,
    check: Callable[[JsonObject], None] | None = None,
) -> FhirResponse:
    """PATCH with a JSON Patch document (RFC 6902); the result must still be valid, and pass
    `check` (the caller's access rules on what the resource will be) before it is written."""
    check_type(res_type)
    check_id(res_id)
    if not isinstance(operations, list):
        raise BadRequest("YL-1040", "A JSON Patch body must be an array of operations")
    current_row = ctx.writer.lock_current(res_type, res_id)
    if current_row is None:
        raise NotFound("YL-1010", f"{res_type}/{res_id} is not known")
    if current_row.deleted:
        raise Gone("YL-1011", f"{res_type}/{res_id} was deleted")
    check_if_match(if_match, current_row)
    stored = store.read_current(ctx.conn, res_type, res_id)
    assert stored is not None and stored.content is not None
    try:
        patched = jsonpatch.JsonPatch(operations).apply(jsonfmt.loads(stored.content))
    except jsonpatch.JsonPatchTestFailed as error:
        raise Unprocessable("YL-1041", f"JSON Patch test failed: {error}") from error
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
            KeyError, IndexError) as error:
        raise Unprocessable("YL-1042", f"JSON Patch could not be applied: {error}") from error
    if not isinstance(patched, dict) or patched.get("id") != res_id:
        raise Unprocessable("YL-1043", "A patch may not change the resource's id")
    if patched.get("resourceType") != res_type:
        raise Unprocessable("YL-1044", "A patch may not change the resourceType")
    if check is not None:
        check(patched)
    return do_update(
        ctx, res_type, res_id, patched, prefer=prefer, method="PATCH"
    )


def do_delete(
    ctx: Context, res_type: str, res_id: str, *, if_match: str | None = None
) -> FhirResponse:
    """DELETE: a new version marking the resource gone; deleting twice changes nothing."""
    check_type(res_type)
    check_id(res_id)
    current = ctx.writer.lock_current(res_type, res_id)
    if current is None:
        raise NotFound("YL-1010", f"{res_type}/{res_id} is not known")
    check_if_match(if_match, None if current.deleted else current)
    if current.deleted:
        return FhirResponse(204)
    stored = ctx.writer.delete(res_type, res_id, current)
    return FhirResponse(204, headers={"ETag": stored.etag}, stored=stored)


def conditional_patch_target(ctx: Context, res_type: str, criteria: QueryPairs) -> str:
    """The one resource a conditional PATCH's criteria match (http.html#patch: "servers that
    support PATCH, and that support Conditional Update SHOULD also support conditional
    PATCH"): 412 if several, 404 if none (a patch has nothing to create)."""
    matches = find_matches(ctx, res_type, criteria)
    if len(matches) > 1:
        raise PreconditionFailed(
            "YL-1035", f"The conditional PATCH matched {len(matches)} {res_type} resources; "
            "it must match one")
    if not matches:
        raise NotFound("YL-1036", f"The conditional PATCH matched no {res_type}")
    return matches[0]


def do_conditional_delete(ctx: Context, res_type: str, criteria: QueryPairs) -> FhirResponse:
    check_type(res_type)
    matches = find_matches(ctx, res_type, criteria)
    if len(matches) > 1:
        raise PreconditionFailed(
            "YL-1050",
            f"The conditional delete matched {len(matches)} {res_type} resources; "
            "it must match at most one",
        )
    if not matches:
        return FhirResponse(204)
    return do_delete(ctx, res_type, matches[0])


# --------------------------------------------------------------------------------- history


def parse_instant_param(name: str, value: str) -> datetime:
    # An instant has no spaces: one is the "+" of a time zone sent unescaped, which a query
    # string reads as a space (HAPI reads it back the same way).
    value = value.replace(" ", "+")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise BadRequest("YL-1060", f"{name} must be an instant, got '{value}'",
                         expression=(name,)) from error
    if moment.tzinfo is None:
        raise BadRequest("YL-1061", f"{name} must carry a time zone, got '{value}'",
                         expression=(name,))
    return moment
