"""/api: the domains' JSON APIs (FastAPI), with the same access tokens, audit trail and
OperationOutcome errors as /fhir."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy import Engine

from yilian.domains.inpatient import endpoints as inpatient
from yilian.errors import OutcomeIssue, Unauthorized, YilianError, operation_outcome
from yilian.fhir.access import UNRESTRICTED, Access
from yilian.fhir.audit import Auditor, Entry
from yilian.kit import jsonfmt

_OUTCOME_MEDIA = "application/fhir+json; charset=utf-8"


def domain_api(engine: Engine, authenticator: Any | None, auditor: Auditor) -> FastAPI:
    """`authenticator`: auth.emergency.Authenticator, or None with access control off."""

    def authenticate(request: Request) -> Access:
        if authenticator is None:
            return UNRESTRICTED
        # A sync dependency: FastAPI runs it in a worker thread, where the read of the
        # caller's emergencies may block.
        access: Access = authenticator.verify_with_emergencies(
            request.headers.get("authorization"))
        return access

    def audit(request: Request, caller: Access, entities: tuple[str, ...]) -> None:
        auditor.later(Entry("search-type", caller.subject, 0, source=_address(request),
                            path=f"GET {request.url.path}?{request.url.query}",
                            entities=entities))

    app = FastAPI(title="Yilian domain APIs", version="1", docs_url="/docs",
                  openapi_url="/openapi.json")
    app.include_router(inpatient.router(engine, authenticate, audit))

    @app.exception_handler(YilianError)
    async def yilian_error(request: Request, error: YilianError) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="yilian"'} \
            if isinstance(error, Unauthorized) else None
        if error.http_status in (401, 403):
            auditor.later(Entry("search-type", "anonymous" if error.http_status == 401 else "",
                                4, source=_address(request),
                                path=f"GET {request.url.path}?{request.url.query}",
                                detail=error.message))
        return Response(jsonfmt.dumps(error.to_outcome()), status_code=error.http_status,
                        media_type=_OUTCOME_MEDIA, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> Response:
        issues = [OutcomeIssue("error", "invalid", f"[YL-6190] {problem['msg']}",
                               (".".join(str(p) for p in problem["loc"][1:]) or "request",))
                  for problem in error.errors()]
        return Response(jsonfmt.dumps(operation_outcome(issues)), status_code=400,
                        media_type=_OUTCOME_MEDIA)

    return app


def _address(request: Request) -> str:
    return request.client.host if request.client else ""
