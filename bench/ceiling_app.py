"""The ceiling for reads and creates: the same stack (uvicorn, one worker, Starlette, one
catch-all /fhir route) answering from memory with no FHIR work and no database.

    GET  /fhir/Type/id   the very bytes, ETag and Last-Modified Yilian answered for that URL,
                         from a file written by the bench (BENCH_CEILING_DATA)
    POST /fhir/Type      201 with the request's body, a Location and an ETag; nothing stored

Run by the bench through `bench.serve_app`, as `yilian serve` serves Yilian.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FHIR_MEDIA = "application/fhir+json; charset=utf-8"
DATA_ENV = "BENCH_CEILING_DATA"

Answer = tuple[bytes, dict[str, str]]


def write_data(path: Path, reads: dict[str, tuple[bytes, str, str]]) -> None:
    """Save "Type/id" → (body, ETag, Last-Modified) for the app to load when it starts."""
    serialisable = {
        key: [body.decode("utf-8"), etag, modified] for key, (body, etag, modified) in reads.items()
    }
    path.write_bytes(orjson.dumps(serialisable))


def _load() -> dict[str, Answer]:
    location = os.environ.get(DATA_ENV)
    if not location:
        return {}
    raw: dict[str, list[str]] = orjson.loads(Path(location).read_bytes())
    return {
        key: (body.encode("utf-8"), {"ETag": etag, "Last-Modified": modified})
        for key, (body, etag, modified) in raw.items()
    }


_READS = _load()
_NEW_IDS = itertools.count(1)


async def fhir(request: Request) -> Response:
    path: str = request.path_params["path"]
    if request.method == "POST":
        body = await request.body()
        headers = {
            "Location": f"{request.base_url}fhir/{path}/bench-{next(_NEW_IDS)}/_history/1",
            "ETag": 'W/"1"',
        }
        return Response(body, status_code=201, headers=headers, media_type=FHIR_MEDIA)
    found = _READS.get(path)
    if found is None:
        return Response(b"", status_code=404, media_type=FHIR_MEDIA)
    body, headers = found
    return Response(body, headers=headers, media_type=FHIR_MEDIA)


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok", "resources": len(_READS)})


app = Starlette(
    routes=[
        Route("/healthz", health),
        Route("/fhir/{path:path}", fhir, methods=["GET", "POST"]),
    ]
)
