"""FHIR interactions without HTTP: a FhirRequest in, a FhirResponse out.

    FhirRouter.handle(request)     one interaction in its own transaction; errors → outcome
    dispatch(ctx, request)         route one interaction inside a transaction the caller holds
                                   (a transaction Bundle runs all its entries through it)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Connection, Engine

from yilian.errors import (
    BadRequest,
    Conflict,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)
from yilian.fhir import definitions, interactions
from yilian.fhir.access import Access, Interaction
from yilian.fhir.audit import Auditor, append, entry_for
from yilian.fhir.guard import (
    require,
    require_everything,
    require_instance,
    require_patients_seen,
    require_unconfined,
    require_unmasked,
    seen_versions,
    written,
)
from yilian.fhir.interactions import Context, Preferences
from yilian.fhir.messages import FhirRequest, FhirResponse, JsonObject
from yilian.fhir.operations import Invocation, Level, OperationRegistry, invocation_parameters
from yilian.fhir.store.sql import (
    AsyncFastReader,
    FastReader,
    Indexer,
    StoredVersion,
    UnitOfWork,
    WriteHook,
)
from yilian.kit import jsonfmt
from yilian.kit.clock import utcnow
from yilian.kit.db import LostRace, run_read, run_write
from yilian.kit.ids import is_valid_id

FHIR_JSON = ("application/fhir+json", "application/json", "application/json+fhir")
JSON_PATCH = "application/json-patch+json"
READ_METHODS = frozenset({"GET", "HEAD"})


def default_operations() -> OperationRegistry:
    from yilian.fhir.operations import audit_trail, validate

    registry = OperationRegistry()
    registry.register(validate.operation())
    registry.register(audit_trail.operation())
    return registry


@dataclass(frozen=True, slots=True)
class RouterOptions:
    validate: bool = True
    default_page_size: int = 20
    max_page_size: int = 1000
    operations: OperationRegistry = field(default_factory=default_operations)
    # Access tokens are required (SMART on FHIR, the sign-in endpoints beside /fhir): the
    # CapabilityStatement says so.
    smart: bool = False
    # Domains' write hooks by resource type (store.sql.WriteHook), run in every write.
    write_hooks: Mapping[str, Sequence[WriteHook]] = field(default_factory=dict)


def parse_body(request: FhirRequest) -> Any:
    """The request's JSON body, checked for content type and syntax."""
    if request.resource is not None:
        return request.resource
    if not request.body:
        raise BadRequest("YL-1100", f"{request.method} needs a body")
    media = (request.content_type or "").split(";")[0].strip().lower()
    accepted = (*FHIR_JSON, JSON_PATCH) if request.method == "PATCH" else FHIR_JSON
    if media not in accepted:
        raise UnsupportedMediaType(
            "YL-1101",
            f"Content-Type '{media or 'none'}' is not supported; send "
            + (" or ".join(accepted)),
        )
    try:
        return jsonfmt.loads(request.body)
    except jsonfmt.JsonDecodeError as error:
        raise BadRequest("YL-1102", f"The body is not valid JSON: {error}") from error


def criteria_of(request: FhirRequest) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query if k not in ("_format", "_pretty")]


def header_criteria(value: str) -> list[tuple[str, str]]:
    """If-None-Exist holds a query string, with or without the leading type and '?'."""
    query = value.split("?", 1)[1] if "?" in value else value
    return parse_qsl(query, keep_blank_values=True)


def dispatch(ctx: Context, request: FhirRequest, options: RouterOptions) -> FhirResponse:
    from yilian.fhir import capability
    from yilian.fhir.history import history
    from yilian.fhir.search.endpoint import search

    method = request.method
    parts = [p for p in request.path.strip("/").split("/") if p] if request.path else []
    prefer = Preferences.parse(request.header("prefer"))
    n = len(parts)

    if n == 0:
        if method == "POST":
            raise BadRequest("YL-1109", "A batch or transaction cannot hold another one")
        if method in READ_METHODS:
            return search(ctx, None, list(request.query), request, options)
        raise MethodNotAllowed("YL-1111", f"{method} is not allowed on the base URL")

    head = parts[0]
    operation_at = next((i for i, part in enumerate(parts) if part.startswith("$")), None)
    if operation_at is not None:
        return _operation(ctx, request, parts, operation_at, options)
    if head == "metadata":
        if method not in READ_METHODS or n != 1:
            raise MethodNotAllowed("YL-1112", "metadata only answers GET")
        return _capabilities(capability.capability_statement(ctx.base_url, options),
                             request.header("if-none-match"))
    if head == "_history":
        if method not in READ_METHODS or n != 1:
            raise MethodNotAllowed("YL-1113", "_history only answers GET")
        require_everything(ctx, Interaction.SEARCH)
        return history(ctx, None, None, request, options)

    res_type = head
    interactions.check_type(res_type)
    if n == 1:
        if method in READ_METHODS:
            return search(ctx, res_type, list(request.query), request, options)
        if method == "POST":
            if_none_exist = request.header("if-none-exist")
            require(ctx, Interaction.CREATE, res_type)
            if if_none_exist:
                require(ctx, Interaction.SEARCH, res_type)
            body = parse_body(request)
            require_unmasked(ctx, body)
            require_patients_seen(ctx, Interaction.CREATE, res_type, body)
            return written(ctx, Interaction.CREATE, res_type, interactions.do_create(
                ctx,
                res_type,
                body,
                if_none_exist=header_criteria(if_none_exist) if if_none_exist else None,
                prefer=prefer,
                prepared=request.prepared,
            ))
        if method == "PUT":
            require_unconfined(ctx, Interaction.UPDATE, res_type)
            require(ctx, Interaction.SEARCH, res_type)
            return interactions.do_conditional_update(
                ctx, res_type, criteria_of(request), parse_body(request),
                if_match=request.header("if-match"), prefer=prefer, prepared=request.prepared,
            )
        if method == "DELETE":
            require_unconfined(ctx, Interaction.DELETE, res_type)
            require(ctx, Interaction.SEARCH, res_type)
            return interactions.do_conditional_delete(ctx, res_type, criteria_of(request))
        if method == "PATCH":
            require_unconfined(ctx, Interaction.UPDATE, res_type)
            require(ctx, Interaction.SEARCH, res_type)
            target = interactions.conditional_patch_target(ctx, res_type, criteria_of(request))
            return _patch(ctx, request, res_type, target, prefer)
        raise MethodNotAllowed("YL-1114", f"{method} is not allowed on /{res_type}")

    second = parts[1]
    if second == "_search" and n == 2:
        if method != "POST":
            raise MethodNotAllowed("YL-1115", "_search answers POST only")
        return search(ctx, res_type, [*request.query, *_form(request)], request, options)
    if second == "_history" and n == 2:
        if method not in READ_METHODS:
            raise MethodNotAllowed("YL-1113", "_history only answers GET")
        require_unconfined(ctx, Interaction.SEARCH, res_type)
        return history(ctx, res_type, None, request, options)

    res_id = second
    if n == 2:
        if method in READ_METHODS:
            require_instance(ctx, Interaction.READ, res_type, res_id)
            return interactions.do_read(
                ctx, res_type, res_id,
                if_none_match=request.header("if-none-match"),
                if_modified_since=request.header("if-modified-since"),
            )
        if method == "PUT":
            require_instance(ctx, Interaction.UPDATE, res_type, res_id, may_be_new=True)
            body = parse_body(request)
            require_unmasked(ctx, body)
            require_patients_seen(ctx, Interaction.UPDATE, res_type, body)
            return written(ctx, Interaction.UPDATE, res_type, interactions.do_update(
                ctx, res_type, res_id, body,
                if_match=request.header("if-match"), prefer=prefer, prepared=request.prepared,
            ))
        if method == "PATCH":
            require_instance(ctx, Interaction.UPDATE, res_type, res_id)
            return _patch(ctx, request, res_type, res_id, prefer)
        if method == "DELETE":
            require_instance(ctx, Interaction.DELETE, res_type, res_id)
            return interactions.do_delete(
                ctx, res_type, res_id, if_match=request.header("if-match")
            )
        raise MethodNotAllowed("YL-1116", f"{method} is not allowed on /{res_type}/{res_id}")

    if n in (3, 4) and parts[2] != "_history":
        # A compartment: GET Patient/123/Observation, POST Patient/123/Observation/_search.
        if n == 4 and parts[3] != "_search":
            raise NotFound("YL-1117", f"No FHIR endpoint at /{request.path}")
        interactions.check_id(res_id)
        interactions.check_type(parts[2])
        if n == 3 and method in READ_METHODS:
            return search(ctx, parts[2], list(request.query), request, options,
                          compartment=(res_type, res_id))
        if n == 4 and parts[3] == "_search" and method == "POST":
            return search(ctx, parts[2], [*request.query, *_form(request)], request, options,
                          compartment=(res_type, res_id))
        raise MethodNotAllowed("YL-1119", f"{method} is not allowed on /{request.path}")
    if parts[2] == "_history":
        if method not in READ_METHODS:
            raise MethodNotAllowed("YL-1113", "_history only answers GET")
        interactions.check_id(res_id)
        require_instance(ctx, Interaction.READ, res_type, res_id)
        if n == 3:
            return history(ctx, res_type, res_id, request, options)
        if n == 4:
            found = interactions.do_vread(ctx, res_type, res_id, parts[3])
            if found.stored is not None and not seen_versions(ctx, res_type, [found.stored]):
                raise NotFound("YL-1012", f"{res_type}/{res_id} has no version {parts[3]}")
            return found
    raise NotFound("YL-1117", f"No FHIR endpoint at /{request.path}")


def _capabilities(statement: JsonObject, if_none_match: str | None) -> FhirResponse:
    """The CapabilityStatement with an ETag of its content (http.html#capabilities: "An
    ETag header SHOULD be returned"), and 304 to a client that has it already."""
    body = jsonfmt.dumps(statement)
    etag = f'W/"{hashlib.sha256(body).hexdigest()[:20]}"'
    if if_none_match is not None and etag in (tag.strip() for tag in if_none_match.split(",")):
        return FhirResponse(304, headers={"ETag": etag})
    return FhirResponse(200, resource=statement, content=body, headers={"ETag": etag})


def _patch(ctx: Context, request: FhirRequest, res_type: str, res_id: str,
           prefer: Preferences | None) -> FhirResponse:
    def check(patched: JsonObject) -> None:  # what it will be, as a PUT is checked
        require_unmasked(ctx, patched)
        require_patients_seen(ctx, Interaction.UPDATE, res_type, patched)

    return written(ctx, Interaction.UPDATE, res_type, interactions.do_patch(
        ctx, res_type, res_id, parse_body(request),
        if_match=request.header("if-match"), prefer=prefer, check=check,
    ))


_LEVELS: dict[int, Level] = {0: "system", 1: "type", 2: "instance"}


def _is_capabilities(request: FhirRequest) -> bool:
    """The public CapabilityStatement: not worth a trace."""
    return request.path.strip("/") == "metadata"


def _operation(
    ctx: Context, request: FhirRequest, parts: list[str], at: int, options: RouterOptions
) -> FhirResponse:
    """[base]/$op, [base]/Type/$op, [base]/Type/id/$op."""
    if at != len(parts) - 1 or at > 2:
        raise NotFound("YL-1117", f"No FHIR endpoint at /{request.path}")
    level = _LEVELS[at]
    res_type = parts[0] if at >= 1 else None
    res_id = parts[1] if at == 2 else None
    if res_type is not None:
        interactions.check_type(res_type)
    if res_id is not None:
        interactions.check_id(res_id)
    if request.method not in ("GET", "POST"):
        raise MethodNotAllowed("YL-1133", "Operations are invoked with POST (or GET when they "
                               "change nothing)")
    operation = options.operations.find(parts[at][1:], level, res_type)
    if operation.affects_state and res_type is None:
        require_everything(ctx, Interaction.UPDATE)
    elif operation.affects_state:
        assert res_type is not None
        require(ctx, Interaction.UPDATE, res_type)
    if res_id is not None:
        assert res_type is not None
        require_instance(ctx, Interaction.READ, res_type, res_id)
    body = parse_body(request) if request.method == "POST" else None
    call = Invocation(level, res_type, res_id, invocation_parameters(operation, request, body),
                      body, request)
    return operation.handler(ctx, call)


def _form(request: FhirRequest) -> list[tuple[str, str]]:
    """POST _search sends its parameters as application/x-www-form-urlencoded."""
    if not request.body:
        return []
    media = (request.content_type or "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType(
            "YL-1118", "POST _search takes application/x-www-form-urlencoded parameters"
        )
    try:
        return parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as error:
        raise BadRequest("YL-1119", "The form body is not UTF-8") from error


def is_write(request: FhirRequest, operations: OperationRegistry) -> bool:
    if request.method in READ_METHODS:
        return False
    path = request.path.strip("/")
    if request.method == "POST" and path.endswith("_search"):
        return False
    last = path.rsplit("/", 1)[-1]
    if last.startswith("$"):
        parts = path.split("/")
        level = _LEVELS.get(len(parts) - 1, "instance")
        res_type = parts[0] if len(parts) > 1 else None
        try:
            return operations.find(last[1:], level, res_type).affects_state
        except NotFound:
            return False  # dispatch reports it, in a read transaction
    return True


def plainly_readable(access: Access, res_type: str, res_id: str) -> bool:
    """Whether `access` may read res_type/res_id with no check past the type, the id and its
    grants: not for a caller confined to a patient's compartment, bound to organizations'
    patients, in an emergency, or whose reads are masked. False for an unknown type or a
    malformed id too (the general path says which, in an OperationOutcome)."""
    return (
        not access.masked and not access.emergency and not access.staff_bound_anywhere
        and res_type in definitions.resource_types() and is_valid_id(res_id)
        and access.allows(Interaction.READ, res_type) and not _bounded_read(access, res_type)
    )


def _bounded_read(access: Access, res_type: str) -> bool:
    """Whether reading `res_type` is bounded to some patients' records: whether a resource
    is one of them takes a search (fhir.guard)."""
    return (access.patient is not None and access.confined(Interaction.READ, res_type)) \
        or access.staff_bound(Interaction.READ, res_type)


def fast_read_target(request: FhirRequest) -> tuple[str, str] | None:
    """(type, id) when the request is a plain read, the interaction served without a
    SQLAlchemy transaction (not for a caller bound to some patients' records: whether the
    resource is one of them takes a search)."""
    if request.method not in READ_METHODS:
        return None
    path = request.path.strip("/")
    res_type, slash, res_id = path.partition("/")
    if not slash or "/" in res_id or res_id.startswith("$") or res_type.startswith(("_", "$")):
        return None
    if res_id in ("_history", "_search") or res_type == "metadata":
        return None
    return None if _bounded_read(request.access, res_type) else (res_type, res_id)


class FhirRouter:
    """Runs each request in the transaction it needs and turns errors into outcomes."""

    def __init__(
        self,
        engine: Engine,
        *,
        indexer: Indexer | None,
        options: RouterOptions | None = None,
        reader: FastReader | None = None,
        audit: Auditor | None = None,
    ) -> None:
        self.engine = engine
        self.reader = reader
        # The audit trail (fhir.audit): None only for tools that write without a caller.
        self.audit = audit
        self.indexer = indexer
        self.options = options or RouterOptions()
        # Validation tables are compiled once, at start, not on the first write.
        if self.options.validate:
            from yilian.fhir.validate import get_validator

            get_validator()

    def handle(self, request: FhirRequest, base_url: str) -> FhirResponse:
        """One interaction in its own transaction, audited: a write in that transaction, any
        other interaction (and a failed write) right after."""
        response = self._handle(request, base_url)
        self.audit_later(request, response)
        return response

    def audit_later(self, request: FhirRequest, response: FhirResponse, *,
                    read: tuple[str, str] | None = None) -> None:
        if self.audit is not None and not response.audited and not _is_capabilities(request):
            self.audit.later(entry_for(request, response, read=read))

    def read_now(self, request: FhirRequest, base_url: str, target: tuple[str, str]
                 ) -> FhirResponse:
        """A read by id (`fast_read_target`), answered and audited without routing."""
        from yilian.errors import YilianError

        try:
            response = self._fast_read(request, base_url, *target) if self.reader else \
                self._handle(request, base_url)
        except YilianError as error:
            response = FhirResponse(error.http_status, resource=error.to_outcome())
        self.audit_later(request, response, read=target)
        return response

    def _handle(self, request: FhirRequest, base_url: str) -> FhirResponse:
        from yilian.errors import YilianError

        try:
            if self.reader is not None and (target := fast_read_target(request)):
                return self._fast_read(request, base_url, *target)
            if request.method == "POST" and not request.path.strip("/"):
                return self._bundle(request, base_url)
            if is_write(request, self.options.operations):
                ready = self._prepare(request, base_url)
                return self.write(lambda ctx: dispatch(ctx, ready, self.options), base_url,
                                  request.access, audited=request)

            def read(conn: Connection) -> FhirResponse:
                ctx = Context(conn, base_url, validate=self.options.validate,
                              access=request.access)
                return dispatch(ctx, request, self.options)

            return run_read(self.engine, read,
                            autocommit=self.reader.engine if self.reader else None)
        except YilianError as error:
            return FhirResponse(error.http_status, resource=error.to_outcome())
        except LostRace as error:
            conflict = Conflict("YL-1150", f"{error}; send the request again")
            return FhirResponse(conflict.http_status, resource=conflict.to_outcome())

    def _prepare(self, request: FhirRequest, base_url: str) -> FhirRequest:
        """A create or update's body parsed, validated and indexed before the write
        transaction: on SQLite the write lock is then held for the writes alone."""
        if request.method not in ("POST", "PUT"):
            return request
        parts = request.path.strip("/").split("/")
        if len(parts) > 2 or any(part.startswith(("$", "_")) for part in parts):
            return request
        res_type = parts[0]
        interactions.check_type(res_type)
        if len(parts) == 2:
            interactions.check_id(parts[1])
        resource = interactions.check_resource(res_type, parse_body(request),
                                               validate=self.options.validate)
        rows = self.indexer(resource, local_base=base_url) if self.indexer is not None else {}
        return replace(request, resource=resource, prepared=rows)

    def _fast_read(
        self, request: FhirRequest, base_url: str, res_type: str, res_id: str
    ) -> FhirResponse:
        assert self.reader is not None
        interactions.check_type(res_type)
        interactions.check_id(res_id)
        request.access.require(Interaction.READ, res_type)
        return self._answer_read(request, base_url, res_type, res_id,
                                 self.reader.current(res_type, res_id))

    async def read_by_id(
        self, request: FhirRequest, base_url: str, target: tuple[str, str],
        reader: AsyncFastReader,
    ) -> FhirResponse:
        """The fast read on an asynchronous connection (PostgreSQL, from the event loop)."""
        from yilian.errors import YilianError

        res_type, res_id = target
        try:
            interactions.check_type(res_type)
            interactions.check_id(res_id)
            request.access.require(Interaction.READ, res_type)
        except YilianError as error:
            return FhirResponse(error.http_status, resource=error.to_outcome())
        stored = await reader.current(res_type, res_id)
        return self._answer_read(request, base_url, res_type, res_id, stored)

    def _answer_read(
        self, request: FhirRequest, base_url: str, res_type: str, res_id: str,
        stored: StoredVersion | None,
    ) -> FhirResponse:
        from yilian.errors import YilianError

        try:
            return interactions.answer_read(
                base_url, res_type, res_id, stored,
                if_none_match=request.header("if-none-match"),
                if_modified_since=request.header("if-modified-since"),
            )
        except YilianError as error:
            return FhirResponse(error.http_status, resource=error.to_outcome())

    def write(self, work: Callable[[Context], FhirResponse], base_url: str,
              access: Access, *, audited: FhirRequest | None = None) -> FhirResponse:
        """One write transaction (rerun if it lost a race), its batched rows flushed, and
        the audit entry of the `audited` request written in it."""

        def unit(conn: Any) -> FhirResponse:
            uow = UnitOfWork(conn, utcnow(), self.indexer, self.options.write_hooks,
                             local_base=base_url)
            ctx = Context(conn, base_url, uow=uow, validate=self.options.validate,
                          access=access)
            response = work(ctx)
            uow.flush()
            if audited is not None and self.audit is not None:
                append(conn, [entry_for(audited, response)])
                response.audited = True
            return response

        return run_write(self.engine, unit)

    def _bundle(self, request: FhirRequest, base_url: str) -> FhirResponse:
        from yilian.fhir import transaction

        body = parse_body(request)
        if isinstance(body, dict) and body.get("type") == "batch":
            return transaction.process_batch(self, body, request, base_url)
        prepared = transaction.prepare_transaction(
            body, base_url=base_url, validate=self.options.validate, indexer=self.indexer
        )
        return self.write(
            lambda ctx: transaction.process_bundle(ctx, body, prepared, request, self.options),
            base_url,
            request.access,
            audited=request,
        )
