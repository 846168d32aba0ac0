"""A diagnostic: the ceiling app's stack reading each answer from the database, through the
store's own reader, and nothing else.

    GET /fhir/Type/id   the current version's stored bytes, ETag and Last-Modified, read as
                        Yilian's plain reads read them: `FastReader` on SQLite (on the event
                        loop), `AsyncFastReader` on PostgreSQL (batched, asynchronous)

No token check, no access rules, no audit entry, no FHIR router: what a read by id costs
on this machine when it only has to fetch the bytes from the database, beside the ceiling
app's answers from memory (the bench's reference for both). Not a strict bound on Yilian's
reads: this app answers through Starlette's routing and Response as the ceiling app does,
which Yilian's plain reads skip (api/fhir_http.py), so on SQLite they can come out ahead of
it. Settings from the environment (YILIAN_DATABASE_URL).

    python -m bench.serve_app bench.store_read_app:app 127.0.0.1 8003
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.ceiling_app import FHIR_MEDIA
from yilian.config import Settings
from yilian.fhir.store.sql import AsyncFastReader, FastReader, StoredVersion
from yilian.kit.clock import to_http_date
from yilian.kit.db import make_autocommit_engine

_ENGINE = make_autocommit_engine(Settings().database_url)
_SYNC = FastReader(_ENGINE)
_ASYNC: list[AsyncFastReader] = []  # made in the lifespan: it belongs to the running loop


async def _current(res_type: str, res_id: str) -> StoredVersion | None:
    if _ASYNC:
        return await _ASYNC[0].current(res_type, res_id)
    return _SYNC.current(res_type, res_id)


async def fhir(request: Request) -> Response:
    res_type, _, res_id = request.path_params["path"].partition("/")
    stored = await _current(res_type, res_id)
    if stored is None or stored.content is None:
        return Response(b"", status_code=404, media_type=FHIR_MEDIA)
    headers = {"ETag": f'W/"{stored.version}"',
               "Last-Modified": to_http_date(stored.last_updated)}
    return Response(stored.content, headers=headers, media_type=FHIR_MEDIA)


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    if _ENGINE.dialect.name == "postgresql":
        _ASYNC.append(AsyncFastReader(_ENGINE))
    yield
    for reader in _ASYNC:
        await reader.close()
    _SYNC.close()
    _ENGINE.dispose()


app = Starlette(
    routes=[
        Route("/healthz", health),
        Route("/fhir/{path:path}", fhir, methods=["GET"]),
    ],
    lifespan=lifespan,
)
