"""`python -m bench --profile`: where ingestion's time goes, under cProfile, in process.

The Bundles go through FhirRouter.handle exactly as POST /fhir hands them over (HTTP and
uvicorn left out: they are a small share of a multi-megabyte transaction). The full pstats
listing is written to bench/results/profile-<database>.txt; a summary is printed.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections import defaultdict
from pathlib import Path

from bench.databases import drop_database, fresh_database
from bench.indexing import in_process_router, post_transaction
from bench.report import RESULTS
from bench.synthea import BundleFile
from yilian.fhir.router import FhirRouter
from yilian.kit.db import make_engine

Key = tuple[str, int, str]


def _area(key: Key) -> str:
    """A coarse place for a function: yilian's module, a library, or a C builtin."""
    filename, _line, name = key
    if filename == "~":
        if "sqlite3" in name or "psycopg" in name:
            return "database driver (C)"
        return f"builtin {name}"
    path = filename.replace("\\", "/")
    if "/yilian/" in path:
        module = path.split("/yilian/", 1)[1].removesuffix(".py")
        return "yilian/" + module
    for library in ("sqlalchemy", "psycopg", "fhirpathpy", "antlr4", "orjson", "starlette",
                    "alembic", "json", "decimal", "re", "datetime", "uuid"):
        if f"/{library}/" in path or path.endswith(f"/{library}.py"):
            return library
    return Path(path).name


def summarise(profiler: cProfile.Profile, top: int = 15) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    raw: dict[Key, tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    by_area: dict[str, float] = defaultdict(float)
    total = 0.0
    for key, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        by_area[_area(key)] += tottime
        total += tottime
    lines = [f"own time by area (of {total:.2f} s profiled):"]
    for area, seconds in sorted(by_area.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {seconds:7.2f} s  {seconds / total:6.1%}  {area}")
    stats.sort_stats("tottime").print_stats(20)
    lines.append("top own time:")
    lines.append(buffer.getvalue())
    return "\n".join(lines)


def _ingest(router: FhirRouter, bundles: list[BundleFile], profiler: cProfile.Profile | None
            ) -> float:
    started = time.perf_counter()
    for bundle in bundles:
        if profiler is not None:
            profiler.enable()
        post_transaction(router, bundle)
        if profiler is not None:
            profiler.disable()
    return time.perf_counter() - started


def profile_ingestion(kind: str, bundles: list[BundleFile], workdir: Path) -> str:
    url = fresh_database(kind, "profile", workdir)
    engine = make_engine(url)
    try:
        router = in_process_router(engine)
        # The first Bundle pays for one-time work (search registry, per-type plans, SQL
        # compilation); it is ingested first, unprofiled, so the profile shows steady state.
        warm, measured = (bundles[:1], bundles[1:]) if len(bundles) > 1 else ([], bundles)
        warm_seconds = _ingest(router, warm, None)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        _ingest(router, measured, profiler)
        elapsed = time.perf_counter() - started
        resources = sum(bundle.entries for bundle in measured)
    finally:
        engine.dispose()
        drop_database(kind, "profile", workdir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    full = RESULTS / f"profile-{kind}.txt"
    with full.open("w") as out:
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(80)
        stats.sort_stats("cumulative").print_stats(120)
    warm_note = (f"after a first bundle of {warm[0].entries} resources in {warm_seconds:.2f} s "
                 "(unprofiled, one-time setup included); " if warm else "")
    header = (f"{kind}: {warm_note}{resources:,} resources in {elapsed:.1f} s under cProfile "
              f"({resources / elapsed:,.0f}/s, profiler overhead included); "
              f"full listing: {full}")
    return header + "\n" + summarise(profiler)
