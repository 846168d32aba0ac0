"""`yilian load`: FHIR JSON files, Bundles and NDJSON into the record, through the router.

Resources with an id are PUT (so loading twice changes nothing), those without are POSTed;
batch and transaction Bundles go in as they are; collection, searchset and history Bundles
have their entries loaded one by one; document and message Bundles are stored whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yilian.fhir.messages import FhirRequest, FhirResponse
from yilian.fhir.router import FhirRouter
from yilian.kit import jsonfmt


@dataclass
class LoadSummary:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    def record(self, where: str, response: FhirResponse, entries: int = 1) -> None:
        if response.status == 201:
            self.counts["created"] += entries
        elif response.status == 200:
            self.counts["updated"] += entries
        else:
            self.counts["failed"] += entries
            self.failures.append((where, _reason(response)))


def _reason(response: FhirResponse) -> str:
    body = response.body_json() or {}
    issues = body.get("issue") or [{}]
    first = issues[0]
    where = ", ".join(first.get("expression", []))
    return f"{response.status} {first.get('diagnostics', '')}" + (f" at {where}" if where else "")


def iter_documents(path: Path) -> Iterator[tuple[str, Any]]:
    """(label, parsed JSON) for every document in a file; NDJSON gives one per line."""
    if path.suffix == ".ndjson":
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield f"{path.name}:{number}", _parse(line, f"{path.name}:{number}")
        return
    yield path.name, _parse(path.read_bytes(), path.name)


def _parse(raw: bytes, label: str) -> Any:
    try:
        return jsonfmt.loads(raw)
    except jsonfmt.JsonDecodeError as error:
        return _Unparseable(f"{label} is not valid JSON: {error}")


@dataclass(frozen=True)
class _Unparseable:
    reason: str


def expand_paths(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and _looks_like_fhir(p))
            )
        else:
            files.append(path)
    return files


def _looks_like_fhir(path: Path) -> bool:
    return path.suffix in (".json", ".ndjson") or path.name.endswith('.json"')


# Bundles that only carry resources; a document or message Bundle is a resource of its own.
_CONTAINERS = ("collection", "searchset", "history")


def load_document(router: FhirRouter, label: str, document: Any, summary: LoadSummary,
                  base_url: str) -> None:
    if isinstance(document, _Unparseable):
        summary.counts["failed"] += 1
        summary.failures.append((label, document.reason))
        return
    if not isinstance(document, dict):
        summary.counts["failed"] += 1
        summary.failures.append((label, "not a FHIR resource (a JSON object)"))
        return
    if document.get("resourceType") == "Bundle" and document.get("type") in (
        "batch", "transaction"
    ):
        response = router.handle(FhirRequest("POST", "", resource=document), base_url)
        if response.status != 200:
            summary.record(label, response, entries=len(document.get("entry", [])) or 1)
            return
        _record_bundle_response(label, response, summary)
        return
    if document.get("resourceType") == "Bundle" and document.get("type") in _CONTAINERS:
        for index, entry in enumerate(document.get("entry", [])):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                load_resource(router, f"{label} entry {index}", entry["resource"], summary,
                              base_url)
        return
    load_resource(router, label, document, summary, base_url)


def load_resource(router: FhirRouter, label: str, resource: dict[str, Any],
                  summary: LoadSummary, base_url: str) -> None:
    res_type = str(resource.get("resourceType", ""))
    res_id = resource.get("id")
    if isinstance(res_id, str):
        request = FhirRequest("PUT", f"{res_type}/{res_id}", resource=resource,
                              headers={"prefer": "return=minimal"})
    else:
        request = FhirRequest("POST", res_type, resource=resource,
                              headers={"prefer": "return=minimal"})
    summary.record(label, router.handle(request, base_url))


def _record_bundle_response(label: str, response: FhirResponse, summary: LoadSummary) -> None:
    bundle = response.body_json() or {}
    for index, entry in enumerate(bundle.get("entry", [])):
        status = str(entry.get("response", {}).get("status", ""))
        if status.startswith("201"):
            summary.counts["created"] += 1
        elif status.startswith("2"):
            summary.counts["updated"] += 1
        else:
            summary.counts["failed"] += 1
            outcome = entry.get("response", {}).get("outcome", {})
            issue = (outcome.get("issue") or [{}])[0]
            summary.failures.append((f"{label} entry {index}",
                                     f"{status} {issue.get('diagnostics', '')}"))
