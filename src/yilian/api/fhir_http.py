"""/fhir over HTTP: a raw ASGI app turning HTTP into FhirRequests and FhirResponses into bytes.

No framework layer between the server and the router: every FHIR request pays for one
header scan, one body read and one send of bytes already serialised (the stored JSON as is).
Starlette's Request/Response and route matching cost more than a read by id itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from yilian.errors import (
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    YilianError,
    operation_outcome,
)
from yilian.errors import OutcomeIssue as Issue
from yilian.fhir.access import UNRESTRICTED, Access
from yilian.fhir.audit import Entry
from yilian.fhir.masking import masked_response
from yilian.fhir.messages import FhirRequest, FhirResponse
from yilian.fhir.router import FhirRouter, fast_read_target, plainly_readable
from yilian.fhir.store.sql import AsyncFastReader
from yilian.kit import jsonfmt
from yilian.kit.clock import to_http_date

log = logging.getLogger("yilian.fhir")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = "/fhir"
_UNDER = PREFIX + "/"
FHIR_MEDIA = b"application/fhir+json; charset=utf-8"
JSON_MEDIA = b"application/json; charset=utf-8"
_JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json",
                           "application/json+fhir"})
_SKIPPED_HEADERS = frozenset({"host", "content-length", "connection", "user-agent",
                              "accept-encoding"})
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE"})
# Request headers that may change a read's answer beyond its format (a 304, a preference):
# a read carrying one takes the general path.
_ANSWER_CHANGING_HEADERS = frozenset({b"if-none-match", b"if-modified-since",
                                      b"if-match", b"prefer"})


class FhirFirst(Starlette):
    """The application: Starlette, but a request for /fhir or a path under it (but
    `except_paths`, which the routes answer) goes straight to the FHIR endpoint, before
    Starlette's two middlewares, its router and their wrappers of `send`: nearly every request
    is one, and the endpoint answers its own errors (an OperationOutcome, a 500 logged).
    Reads by id under load, three runs side by side: 14,525-15,114/s against 14,173-14,466
    through the router."""

    def __init__(self, endpoint: FhirEndpoint, *, except_paths: Collection[str] = (),
                 **starlette: Any) -> None:
        super().__init__(**starlette)
        self.fhir = endpoint
        self.except_paths = frozenset(except_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._is_fhir(scope):
            await self.fhir(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def _is_fhir(self, scope: Scope) -> bool:
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        return (path == PREFIX or path.startswith(_UNDER)) and path not in self.except_paths


class Authenticate(Protocol):
    """A request's Access from its Authorization header (auth.emergency.Authenticator)."""

    def verify(self, authorization: str | None) -> Access: ...
    def with_emergencies(self, access: Access) -> Access: ...


class FhirEndpoint:
    """The ASGI app for every path under /fhir."""

    def __init__(self, router: FhirRouter, *, max_body_bytes: int, base_url: str | None,
                 authenticate: Authenticate | None) -> None:
        self.router = router
        self.max_body_bytes = max_body_bytes
        self.base_url = base_url
        # The caller's Access from its Authorization header; None: access control is off.
        self.authenticate = authenticate
        # Set by the app's lifespan on PostgreSQL: reads by id then never block the loop.
        self.async_reader: AsyncFastReader | None = None
        # Plain reads by id answered by `_read_quickly` (off: every request takes the general
        # path, which answers the same bytes; the tests compare the two).
        self.quick_reads = router.reader is not None

    async def _read_quickly(self, scope: Scope, send: Send) -> bool:
        """A plain read by id, the commonest request by far (GET /fhir/Type/id, no query, no
        conditional header, a caller with no bounds), answered with the least work: the
        headers scanned once for the two that matter, no FhirRequest or FhirResponse, the
        stored bytes sent as they are. The general path would answer the same bytes and write
        the same audit entry. False, having sent nothing, for any other request, and for any
        answer but 200 (unknown, deleted, refused): the general path then answers it."""
        path: str = scope["path"]
        if not path.startswith(_UNDER) or scope.get("root_path") or scope.get("app_root_path"):
            return False
        res_type, slash, res_id = path[len(_UNDER):].partition("/")
        if not slash:
            return False
        authorization = accept = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return False
                authorization = value.decode("latin-1")
            elif name == b"accept":
                if accept is not None:
                    return False
                accept = value.decode("latin-1")
            elif name in _ANSWER_CHANGING_HEADERS:
                return False
        if accept and not _accepts_json(accept):
            return False
        if self.authenticate is None:
            access = UNRESTRICTED
        else:
            try:
                access = self.authenticate.verify(authorization)
            except YilianError:  # the general path refuses it, on the audit trail
                return False
        if not plainly_readable(access, res_type, res_id):
            return False
        try:
            if self.async_reader is not None:
                stored = await self.async_reader.current(res_type, res_id)
            else:
                assert self.router.reader is not None
                stored = self.router.reader.current(res_type, res_id)
        except Exception:  # the general path reports it, logged
            return False
        if stored is None or stored.deleted or stored.content is None:
            return False
        if self.router.audit is not None:
            try:
                self.router.audit.later(Entry(
                    "read", access.subject, 0, source=_address(scope),
                    path=f"GET {res_type}/{res_id}", entities=(f"{res_type}/{res_id}",)))
            except ServiceUnavailable as error:  # the audit trail cannot be written
                await _send_outcome(send, error.http_status, error.to_outcome())
                return True
        body = stored.content
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"etag", stored.etag.encode()),
            (b"last-modified", to_http_date(stored.last_updated).encode()),
            (b"content-type", _media_for(accept)),
            (b"content-length", str(len(body)).encode()),
        ]})
        await send({"type": "http.response.body", "body": body})
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "GET" and not scope["query_string"] and self.quick_reads \
                and await self._read_quickly(scope, send):
            return
        try:
            fhir_request, base_url = await self._to_fhir(scope, receive)
        except Unauthorized as error:
            # RFC 6750: say how to authenticate; `invalid_token` when one was sent.
            challenge = 'Bearer realm="yilian"' + (
                ', error="invalid_token"' if error.code != "YL-4010" else "")
            if self.router.audit is not None:
                self.router.audit.later(Entry(
                    "read" if method in ("GET", "HEAD") else "operation", "anonymous", 4,
                    source=_address(scope), path=f"{method} {scope['path']}",
                    detail=error.message))
            await _send(send, 401, jsonfmt.dumps(error.to_outcome()),
                        [(b"www-authenticate", challenge.encode())], head=False)
            return
        except YilianError as error:
            await _send_outcome(send, error.http_status, error.to_outcome())
            return
        except Exception:
            log.exception("unexpected failure before %s %s", method, scope["path"])
            await _send_outcome(send, 500, operation_outcome([Issue(
                "fatal", "exception", "[YL-0500] The server failed unexpectedly; the failure "
                "is logged and nothing was written")]))
            return
        try:
            target = fast_read_target(fhir_request)
            if target is not None and self.async_reader is not None:
                answer = await self.router.read_by_id(fhir_request, base_url, target,
                                                      self.async_reader)
                self.router.audit_later(fhir_request, answer, read=target)
            elif target is not None:
                # A read by id on SQLite is one indexed lookup in process: answering it on
                # the event loop costs less than the hop to a worker thread and back.
                answer = self.router.read_now(fhir_request, base_url, target)
            else:
                answer = await run_in_threadpool(self.router.handle, fhir_request, base_url)
        except ServiceUnavailable as error:  # the audit trail cannot be written: no answer
            await _send_outcome(send, error.http_status, error.to_outcome())
            return
        except Exception:
            log.exception("unexpected failure in %s %s", method, scope["path"])
            await _send_outcome(
                send,
                500,
                operation_outcome([Issue("fatal", "exception",
                                         "[YL-0500] The server failed unexpectedly; the "
                                         "failure is logged and nothing was written")]),
            )
            return
        if fhir_request.access.masked:
            answer = masked_response(answer)
        await _send_answer(send, answer, pretty=_wants_pretty(fhir_request),
                           head=method == "HEAD", media=_media_type(fhir_request))

    async def _to_fhir(self, scope: Scope, receive: Receive) -> tuple[FhirRequest, str]:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raw_query = scope.get("query_string", b"")
        query = tuple(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)
                      if raw_query else ())
        _check_format(query, headers.get("accept"))
        method = scope["method"]
        body = None if method in _NO_BODY_METHODS else await self._read_body(headers, receive)
        # The full path (ASGI): the app's root path, if any, then /fhir. FhirRoute leaves the
        # root path as it came; under a Mount it would be app_root_path.
        app_root = scope.get("app_root_path", scope.get("root_path", ""))
        path = scope["path"][len(app_root) + len(PREFIX):].lstrip("/")
        request = FhirRequest(
            method=method,
            path=path,
            query=query,
            headers={k: v for k, v in headers.items() if k not in _SKIPPED_HEADERS},
            body=body,
            content_type=headers.get("content-type"),
            access=await self._access(method, path, headers.get("authorization")),
            source=_address(scope),
        )
        return request, self.base_url or _base_url(scope, headers)

    async def _access(self, method: str, path: str, authorization: str | None) -> Access:
        """The caller's Access; the CapabilityStatement is public, as SMART requires. The
        token is checked on the event loop (remembered, ~1 µs); staff's emergencies take a
        database read, in a worker thread (not for `system/` grants, which no emergency
        widens)."""
        if self.authenticate is None or (method in ("GET", "HEAD")
                                         and path.strip("/") == "metadata"):
            return UNRESTRICTED
        access = self.authenticate.verify(authorization)
        if access.staff_bound_anywhere:
            access = await run_in_threadpool(self.authenticate.with_emergencies, access)
        return access

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        declared = headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() \
                and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks) or None


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    """The FHIR base as the client addressed it."""
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    app_root = scope.get("app_root_path", scope.get("root_path", ""))
    return f"{scope.get('scheme', 'http')}://{host}{app_root}{PREFIX}"


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "YL-1120", f"The body is larger than this server accepts ({limit} bytes; "
        "configure YILIAN_MAX_BODY_BYTES)"
    )


def _check_format(query: tuple[tuple[str, str], ...], accept: str | None) -> None:
    for name, value in query:
        # An unescaped "+" arrives as a space (application/fhir+json → "application/fhir json").
        if name == "_format" and \
                value.split(";")[0].strip().replace(" ", "+") not in _JSON_FORMATS:
            raise _NotAcceptable(value)
    if accept and not _accepts_json(accept):
        raise _NotAcceptable(accept)


def _accepts_json(accept: str) -> bool:
    if ";" not in accept and ("json" in accept or "*/*" in accept):
        return True  # the common header, without parameters: no range refused by q=0
    return any(_takes_json(media_range) for media_range in accept.split(","))


def _takes_json(media_range: str) -> bool:
    """Whether one range of an Accept header admits FHIR JSON (RFC 9110 §12.5.1): */*,
    application/*, or a JSON type, and not with q=0 nor another FHIR version than R4's
    (http.html#version-parameter: fhirVersion=4.0)."""
    kind, *parameters = (part.strip().lower() for part in media_range.split(";"))
    for parameter in parameters:
        name, _, value = (part.strip() for part in parameter.partition("="))
        if (name == "q" and value in ("0", "0.0", "0.00", "0.000")) or (
                name == "fhirversion" and value.strip('"') not in ("4.0", "4.0.1")):
            return False
    return kind in ("*/*", "application/*") or "json" in kind


class _NotAcceptable(BadRequest):
    http_status = 406

    def __init__(self, asked: str) -> None:
        super().__init__("YL-1121", f"This server speaks FHIR JSON only, not '{asked}'",
                         issue_type="not-supported")


def _media_type(request: FhirRequest) -> bytes:
    """The answer's Content-Type: FHIR's, but application/json for a client that asked for
    that generic type (http.html#mime-type: "the server SHOULD respond with the requested
    mime type"), by _format or by an Accept header that names no FHIR type."""
    for name, value in request.query:
        if name == "_format":
            return JSON_MEDIA if value.split(";")[0].strip() == "application/json" \
                else FHIR_MEDIA
    return _media_for(request.headers.get("accept"))


def _media_for(accept: str | None) -> bytes:
    """The answer's Content-Type for an Accept header (`_media_type`)."""
    return JSON_MEDIA if accept and "application/json" in accept and "fhir" not in accept \
        else FHIR_MEDIA


def _wants_pretty(request: FhirRequest) -> bool:
    return any(k == "_pretty" and v == "true" for k, v in request.query)


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


async def _send_outcome(send: Send, status: int, outcome: dict[str, Any]) -> None:
    await _send(send, status, jsonfmt.dumps(outcome), [], head=False)


async def _send_answer(send: Send, answer: FhirResponse, *, pretty: bool, head: bool,
                       media: bytes = FHIR_MEDIA) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in answer.headers.items()]
    if answer.status in (204, 304):
        await _send(send, answer.status, None, headers, head=head)
        return
    if pretty and (parsed := answer.body_json()) is not None:
        body: bytes | None = jsonfmt.dumps_pretty(parsed)
    else:
        body = answer.body_bytes()
    await _send(send, answer.status, body, headers, head=head, media=media)


async def _send(
    send: Send, status: int, body: bytes | None, headers: list[tuple[bytes, bytes]], *,
    head: bool, media: bytes = FHIR_MEDIA,
) -> None:
    if body is not None:
        headers.append((b"content-type", media))
    if status not in (204, 304):
        headers.append((b"content-length", str(len(body or b"")).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head or body is None else body})
