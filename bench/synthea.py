"""The Synthea sample: 40 transaction Bundles (8,598 resources) read once into memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.procs import REPO

DEFAULT_DIR = Path(
    os.environ.get("BENCH_SYNTHEA_DIR", str(REPO.parent / "shared" / "data" / "synthea-r4"))
)


@dataclass(frozen=True, slots=True)
class BundleFile:
    name: str
    body: bytes
    entries: int


def _is_bundle_file(path: Path) -> bool:
    # Some names end with a stray '"' (name.json"); LICENSE is not a bundle.
    return path.is_file() and path.name.rstrip('"').endswith(".json")


def load_bundles(directory: Path = DEFAULT_DIR, limit: int | None = None) -> list[BundleFile]:
    if not directory.is_dir():
        raise FileNotFoundError(f"the Synthea bundles are missing: {directory} is not a folder")
    paths = sorted(p for p in directory.iterdir() if _is_bundle_file(p))
    if limit is not None:
        paths = paths[:limit]
    bundles = []
    for path in paths:
        body = path.read_bytes()
        parsed = orjson.loads(body)
        if parsed.get("resourceType") != "Bundle" or parsed.get("type") != "transaction":
            continue
        bundles.append(BundleFile(path.name.rstrip('"'), body, len(parsed.get("entry", []))))
    if not bundles:
        raise FileNotFoundError(f"no transaction Bundles in {directory}")
    return bundles
