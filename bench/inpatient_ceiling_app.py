"""The ceiling for the bed board and the census over HTTP: the same stack Yilian runs on
(uvicorn, one worker, Starlette) answering each URL with the very bytes Yilian answered it
with, from memory: no database, no thread pool, no JSON to build.

    GET /api/inpatient/board?campus=...     the body Yilian sent for that path and query,
    GET /api/inpatient/census?...           from the file the bench wrote
                                            (BENCH_INPATIENT_CEILING)

Run by the bench through `bench.serve_app`, as `yilian serve` serves Yilian
(bench/procs.bench_app_argv).
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DATA_ENV = "BENCH_INPATIENT_CEILING"
MEDIA = "application/json"


def write_data(path: Path, answers: dict[str, bytes]) -> None:
    """Save "path?query" → body bytes for the app to load when it starts."""
    path.write_bytes(orjson.dumps({key: body.decode("utf-8") for key, body in answers.items()}))


def _load() -> dict[str, bytes]:
    location = os.environ.get(DATA_ENV)
    if not location:
        return {}
    raw: dict[str, str] = orjson.loads(Path(location).read_bytes())
    return {key: body.encode("utf-8") for key, body in raw.items()}


_ANSWERS = _load()


async def answer(request: Request) -> Response:
    key = f"{request.url.path}?{request.url.query}"
    body = _ANSWERS.get(key)
    if body is None:
        return Response(b'{"detail":"not known"}', status_code=404, media_type=MEDIA)
    return Response(body, media_type=MEDIA)


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok", "answers": len(_ANSWERS)})


app = Starlette(routes=[
    Route("/healthz", health),
    Route("/api/{path:path}", answer),
])
