"""The ceiling for searches over HTTP: each kind's hand-written SQL (bench/search_bench.py)
served by the same stack Yilian runs on (uvicorn, one worker, Starlette, the database's own
driver in a thread), answering a searchset Bundle of the stored JSON it selected. What
HTTP, the database and the Bundle cost, without Yilian's parsing, planning and paging.

    GET /search/{kind}/{n}   the n-th query of the kind, its parameters from the file the
                             bench wrote (BENCH_SEARCH_CEILING)

Run by the bench through `bench.serve_app`, as `yilian serve` serves Yilian.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench import search_bench

FHIR_MEDIA = "application/fhir+json; charset=utf-8"
DATA_ENV = "BENCH_SEARCH_CEILING"
BASE = "http://127.0.0.1/fhir"


def write_data(path: Path, kind: str, url: str,
               queries: list[tuple[str, bool, list[dict[str, Any]]]]) -> None:
    """Save the database and, per kind, its ceiling function's name, whether it runs
    prepared (search_bench.Driver) and its bound parameters."""
    def encode(value: Any) -> Any:
        return {"t": value.isoformat()} if isinstance(value, datetime) else value

    path.write_bytes(orjson.dumps({
        "kind": kind, "url": url,
        "kinds": [[name, prepared, [{k: encode(v) for k, v in params.items()}
                                    for params in listed]]
                  for name, prepared, listed in queries],
    }))


def _load() -> tuple[str, str,
                     list[tuple[search_bench.Ceiling, bool, list[dict[str, Any]]]]]:
    location = os.environ.get(DATA_ENV)
    if not location:
        return "", "", []
    data = orjson.loads(Path(location).read_bytes())

    def decode(value: Any) -> Any:
        return datetime.fromisoformat(value["t"]) if isinstance(value, dict) else value

    kinds = [(getattr(search_bench, name), prepared,
              [{k: decode(v) for k, v in params.items()} for params in listed])
             for name, prepared, listed in data["kinds"]]
    return data["kind"], data["url"], kinds


_DB_KIND, _URL, _KINDS = _load()
_local = threading.local()


def _driver(prepared: bool) -> search_bench.Driver:
    """This thread's connection of the kind's mode (prepared or planned per values)."""
    drivers: dict[bool, search_bench.Driver] | None = getattr(_local, "drivers", None)
    if drivers is None:
        drivers = _local.drivers = {}
    driver = drivers.get(prepared)
    if driver is None:
        driver = drivers[prepared] = search_bench.Driver(_DB_KIND, _URL, prepared=prepared)
    return driver


def _bundle(answer: search_bench.Answer) -> bytes:
    entries = [
        b'{"fullUrl":"' + f"{BASE}/{key}".encode() + b'","resource":' + content
        + b',"search":{"mode":"' + mode + b'"}}'
        for mode, group in ((b"match", answer.page), (b"include", answer.included))
        for key, content in group
    ]
    return (b'{"resourceType":"Bundle","type":"searchset","link":[{"relation":"self","url":"'
            + BASE.encode() + b'"}],"entry":[' + b",".join(entries) + b"]}")


def search(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
    kind, n = int(request.path_params["kind"]), int(request.path_params["n"])
    ceiling, prepared, queries = _KINDS[kind]
    return Response(_bundle(ceiling(_driver(prepared), queries[n])), media_type=FHIR_MEDIA)


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok", "kinds": len(_KINDS)})


app = Starlette(routes=[
    Route("/healthz", health),
    Route("/search/{kind:int}/{n:int}", search),
])
