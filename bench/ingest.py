"""Phase 1, ours: every Bundle POSTed to /fhir as a transaction, one after another."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
import orjson

from bench.synthea import BundleFile

ResourceKey = tuple[str, str]  # (resource type, id)


@dataclass
class Ingestion:
    resources: int = 0
    seconds: float = 0.0
    per_bundle: list[float] = field(default_factory=list)  # seconds, in order
    keys: list[list[ResourceKey]] = field(default_factory=list)  # what each Bundle created

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0

    def rate_after_first(self) -> float:
        """Resources/s without the first Bundle (which pays for first-use compilation)."""
        if len(self.per_bundle) < 2:
            return self.rate
        rest = sum(self.per_bundle[1:])
        return (self.resources - len(self.keys[0])) / rest if rest else 0.0


def _created(bundle: BundleFile, response: httpx.Response) -> list[ResourceKey]:
    if response.status_code != 200:
        raise RuntimeError(
            f"POST /fhir with {bundle.name} answered {response.status_code}: "
            f"{response.text[:500]}"
        )
    keys = []
    for entry in orjson.loads(response.content).get("entry", []):
        answer = entry.get("response", {})
        if not str(answer.get("status", "")).startswith("201"):
            raise RuntimeError(f"{bundle.name}: an entry was answered {answer}")
        res_type, res_id = answer["location"].split("/")[:2]
        keys.append((res_type, res_id))
    if len(keys) != bundle.entries:
        raise RuntimeError(f"{bundle.name}: {bundle.entries} entries sent, {len(keys)} created")
    return keys


def _headers(authorization: str) -> dict[str, str]:
    return {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
            "Authorization": authorization}


def ingest_over_http(base: str, bundles: list[BundleFile], authorization: str) -> Ingestion:
    """Time each POST from sending the request to having the whole answer; `authorization`:
    the Authorization header every POST carries (bench/auth.py)."""
    result = Ingestion()
    headers = _headers(authorization)
    with httpx.Client(base_url=base, timeout=600.0) as client:
        for bundle in bundles:
            started = time.perf_counter()
            response = client.post("/fhir", content=bundle.body, headers=headers)
            elapsed = time.perf_counter() - started
            keys = _created(bundle, response)
            result.per_bundle.append(elapsed)
            result.seconds += elapsed
            result.resources += len(keys)
            result.keys.append(keys)
    return result


def ingest_in_parallel(base: str, bundles: list[BundleFile], clients: int,
                       authorization: str) -> Ingestion:
    """The Bundles shared among `clients` threads posting at once, each on its own keep-alive
    connection; the rate is resources over the wall time of the whole load (per_bundle and
    keys are left empty)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    headers = _headers(authorization)
    local = threading.local()
    opened: list[httpx.Client] = []

    def post(bundle: BundleFile) -> int:
        # One client per thread: making an httpx.Client builds an SSL context, ~50 ms of
        # the CPU the server under test needs, so not one per Bundle.
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base, timeout=600.0)
            opened.append(client)
        return len(_created(bundle, client.post("/fhir", content=bundle.body,
                                                headers=headers)))

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            created = sum(pool.map(post, bundles))
        return Ingestion(resources=created, seconds=time.perf_counter() - started)
    finally:
        for client in opened:
            client.close()
