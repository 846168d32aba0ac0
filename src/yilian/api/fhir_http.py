"""/fhir over HTTP: turns HTTP into FhirRequests and FhirResponses into bytes.

Raw Starlette, no per-request validation layer: the body is read once, the answer is the
stored JSON sent as is (serialise once, send bytes).
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from yilian.errors import (
    BadRequest,
    PayloadTooLarge,
    YilianError,
    operation_outcome,
)
from yilian.errors import OutcomeIssue as Issue
from yilian.fhir.messages import FhirRequest, FhirResponse
from yilian.fhir.router import FhirRouter, fast_read_target
from yilian.kit import jsonfmt

log = logging.getLogger("yilian.fhir")

FHIR_MEDIA = "application/fhir+json; charset=utf-8"
_JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json",
                           "application/json+fhir"})
_SKIPPED_HEADERS = frozenset({"host", "content-length", "connection", "user-agent",
                              "accept-encoding"})


class FhirEndpoint:
    def __init__(self, router: FhirRouter, *, max_body_bytes: int, base_url: str | None) -> None:
        self.router = router
        self.max_body_bytes = max_body_bytes
        self.base_url = base_url

    async def handle(self, request: Request) -> Response:
        try:
            fhir_request = await self._to_fhir(request)
        except YilianError as error:
            return _outcome_response(error.http_status, error.to_outcome())
        pretty = _wants_pretty(fhir_request)
        base_url = self.base_url or _base_url(request)
        try:
            if fast_read_target(fhir_request) is not None:
                # A read by id is one indexed lookup (tens of µs): answering it on the event
                # loop costs less than the hop to a worker thread and back.
                answer = self.router.handle(fhir_request, base_url)
            else:
                answer = await run_in_threadpool(self.router.handle, fhir_request, base_url)
        except Exception:
            log.exception("unexpected failure in %s /fhir/%s", request.method,
                          fhir_request.path)
            return _outcome_response(
                500,
                operation_outcome([Issue("fatal", "exception",
                                         "[YL-0500] The server failed unexpectedly; the "
                                         "failure is logged and nothing was written")]),
            )
        return _to_http(answer, pretty=pretty)

    async def _to_fhir(self, request: Request) -> FhirRequest:
        query = tuple(request.query_params.multi_items())
        _check_format(query, request.headers.get("accept"))
        body = await self._read_body(request)
        headers = {k: v for k, v in request.headers.items() if k not in _SKIPPED_HEADERS}
        return FhirRequest(
            method=request.method,
            path=request.path_params.get("path", ""),
            query=query,
            headers=headers,
            body=body,
            content_type=request.headers.get("content-type"),
        )

    async def _read_body(self, request: Request) -> bytes | None:
        if request.method in ("GET", "HEAD", "DELETE"):
            return None
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
        return b"".join(chunks) or None


def _base_url(request: Request) -> str:
    """The FHIR base as the client addressed it (Starlette's request.base_url builds a whole
    URL object; this is the part we need, at a tenth of the cost)."""
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}/fhir"


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "YL-1120", f"The body is larger than this server accepts ({limit} bytes; "
        "configure YILIAN_MAX_BODY_BYTES)"
    )


def _check_format(query: tuple[tuple[str, str], ...], accept: str | None) -> None:
    for name, value in query:
        if name == "_format" and value.split(";")[0].strip() not in _JSON_FORMATS:
            raise _NotAcceptable(value)
    if accept and "json" not in accept and "*/*" not in accept and "xml" in accept:
        raise _NotAcceptable(accept)


class _NotAcceptable(BadRequest):
    http_status = 406

    def __init__(self, asked: str) -> None:
        super().__init__("YL-1121", f"This server speaks FHIR JSON only, not '{asked}'",
                         issue_type="not-supported")


def _wants_pretty(request: FhirRequest) -> bool:
    return any(k == "_pretty" and v == "true" for k, v in request.query)


def _outcome_response(status: int, outcome: dict[str, object]) -> Response:
    return Response(jsonfmt.dumps(outcome), status_code=status, media_type=FHIR_MEDIA)


def _to_http(answer: FhirResponse, *, pretty: bool) -> Response:
    if answer.status in (204, 304):
        return Response(status_code=answer.status, headers=answer.headers)
    if pretty and (parsed := answer.body_json()) is not None:
        body: bytes | None = jsonfmt.dumps_pretty(parsed)
    else:
        body = answer.body_bytes()
    return Response(
        body if body is not None else b"",
        status_code=answer.status,
        headers=answer.headers,
        media_type=FHIR_MEDIA if body is not None else None,
    )
