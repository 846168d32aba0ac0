"""The application: create_app(settings) mounts /fhir (and later /api, /ui)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from yilian.api.domain_http import domain_api
from yilian.api.fhir_http import FhirEndpoint, FhirFirst
from yilian.api.oauth_http import OAuthEndpoints
from yilian.api.smart import smart_metadata, warn_auth_off
from yilian.auth.emergency import Authenticator
from yilian.auth.oauth import AuthorizationServer
from yilian.auth.tokens import Keys, Verifier
from yilian.config import Settings
from yilian.domains.inpatient import setup as inpatient
from yilian.errors import OutcomeIssue, operation_outcome
from yilian.fhir.access import UNRESTRICTED, Access
from yilian.fhir.audit import Auditor
from yilian.fhir.audit_recorder import RecordingAuditor
from yilian.fhir.masking import masked_response
from yilian.fhir.messages import FhirRequest, FhirResponse
from yilian.fhir.router import FhirRouter, RouterOptions, default_operations
from yilian.fhir.search.extract import extract_index_rows, warm_up
from yilian.fhir.store.sql import AsyncFastReader, FastReader, WriteHook
from yilian.kit import heap, jsonfmt
from yilian.kit.db import make_autocommit_engine, make_engine
from yilian.kit.ratelimit import RateLimiter
from yilian.web.pages import Pages

SMART_UNDER_FHIR = "/fhir/.well-known/smart-configuration"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    reads = make_autocommit_engine(settings.database_url)
    reader = FastReader(reads)
    auditor = RecordingAuditor(engine) if settings.audit_recorder == "process" \
        else Auditor(engine)
    operations = default_operations()
    write_hooks: dict[str, list[WriteHook]] = {}
    inpatient.install(operations, write_hooks)
    router = FhirRouter(
        engine,
        reader=reader,
        audit=auditor,
        indexer=extract_index_rows,
        options=RouterOptions(
            validate=settings.validate_resources,
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
            smart=settings.auth,
            operations=operations,
            write_hooks=write_hooks,
        ),
    )
    keys = Keys(engine)
    authenticator = Authenticator(engine, Verifier(keys), reads=reads) if settings.auth \
        else None
    endpoint = FhirEndpoint(
        router, max_body_bytes=settings.max_body_bytes, base_url=settings.base_url,
        authenticate=authenticator,
    )
    if not settings.auth:
        warn_auth_off()
    public_root = settings.base_url.removesuffix("/").removesuffix("/fhir") \
        if settings.base_url else None
    oauth = OAuthEndpoints(AuthorizationServer(engine, keys), public_root, settings.base_url,
                           sign_in_limit=RateLimiter(10, 60), token_limit=RateLimiter(120, 60),
                           audit=auditor, verifier=Verifier(keys))

    fhir_base = settings.base_url or f"http://{settings.host}:{settings.port}/fhir"
    def fhir_for_pages(request: FhirRequest) -> FhirResponse:
        answer = router.handle(request, fhir_base)
        return masked_response(answer) if request.access.masked else answer  # as /fhir does

    pages = Pages(engine, keys,
                  authenticator.verify_with_emergencies if authenticator else _unrestricted,
                  auditor, fhir_for_pages, secure_cookies=fhir_base.startswith("https://"),
                  sign_out=authenticator.sign_out if authenticator else None)

    async def home(_: Request) -> Response:
        return RedirectResponse("/ui/")

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def smart_configuration(request: Request) -> Response:
        root = public_root or str(request.base_url).rstrip("/")
        return JSONResponse(smart_metadata(settings.base_url or f"{root}/fhir", root))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # anyio's default of 40 threads lets requests fight over the GIL; a few suffice. On
        # SQLite every query is a run of short calls that let go of the GIL and take it back:
        # measured, 8 connections searching got 844 answers/s with 8 threads, 1,396 with 2.
        # PostgreSQL's threads mostly wait on the server, so more of them keep it busy.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads or (
            2 if engine.dialect.name == "sqlite" else 8)
        warm_up()
        if isinstance(auditor, RecordingAuditor):
            auditor.start()
        heap.settle()
        if engine.dialect.name == "postgresql":
            endpoint.async_reader = AsyncFastReader(reads)
        yield
        if endpoint.async_reader is not None:
            await endpoint.async_reader.close()
            endpoint.async_reader = None
        reader.close()
        auditor.close()
        engine.dispose()
        reads.dispose()

    async def not_found(_: Request, error: Exception) -> Response:
        status = getattr(error, "status_code", 404)
        outcome = operation_outcome([OutcomeIssue(
            "error", "not-found" if status == 404 else "not-supported",
            f"[YL-1117] No endpoint answers this request ({status})",
        )])
        return Response(jsonfmt.dumps(outcome), status_code=status,
                        media_type="application/fhir+json; charset=utf-8")

    # The FHIR endpoint is a raw ASGI app (see api.fhir_http), answered before the routes: at
    # /fhir itself (the batch/transaction endpoint) and everything under it but SMART's
    # configuration.
    app = FhirFirst(
        endpoint,
        except_paths=(SMART_UNDER_FHIR,),
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
        routes=[
            Route(SMART_UNDER_FHIR, smart_configuration),
            Route("/", home),
            Route("/healthz", health),
            *oauth.routes(),
            Route("/.well-known/smart-configuration", smart_configuration),
            Mount("/api", app=domain_api(engine, authenticator, auditor)),
            Mount("/ui", app=Starlette(routes=pages.routes())),
        ],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = reads
    app.state.router = router
    app.state.keys = keys
    app.state.audit = auditor
    app.state.fhir = endpoint
    return app


def _unrestricted(_: str | None) -> Access:
    """The pages' caller with access control off (YILIAN_AUTH=off, experiments only)."""
    return UNRESTRICTED

