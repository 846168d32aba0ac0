"""`yilian load`: FHIR JSON files, Bundles and NDJSON into the record, through the router.

Resources with an id are PUT (so loading twice changes nothing), those without are POSTed;
batch and transaction Bundles go in as they are; a collection or searchset Bundle's entries
go in as one transaction, so that their references to each other (`urn:uuid:`, fullUrls)
are resolved as a transaction's are (a searchset's `outcome` entries are not data); a history
Bundle is replayed oldest version first, deletions included; document and message Bundles
are stored whole.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator
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

    def record(self, where: str, response: FhirResponse, entries: int = 1, *,
               method: str = "PUT") -> None:
        def reason() -> str:  # only for a failure: a success's body is not parsed
            return _reason(response.body_json(), response.status)

        self.count(where, response.status, method, entries, reason)

    def count(self, where: str, status: int, method: str, entries: int,
              reason: Callable[[], str]) -> None:
        """One answer: created (201), deleted, read (a batch's GET), updated (any other
        2xx of a write), or failed with its reason."""
        if status >= 300 and status != 304:
            self.counts["failed"] += entries
            self.failures.append((where, reason()))
        elif status == 201:
            self.counts["created"] += entries
        elif method == "DELETE":
            self.counts["deleted"] += entries
        elif method in ("GET", "HEAD"):
            self.counts["read"] += entries
        else:
            self.counts["updated"] += entries


def _reason(outcome: Any, status: int | str) -> str:
    issues = (outcome.get("issue") if isinstance(outcome, dict) else None) or [{}]
    first = issues[0]
    where = ", ".join(first.get("expression", []))
    return f"{status} {first.get('diagnostics', '')}" + (f" at {where}" if where else "")


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
_CONTAINERS = ("collection", "searchset")


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
            summary.record(label, response, entries=len(document.get("entry") or []) or 1)
            return
        _record_bundle_response(label, document.get("entry") or [], response, summary)
        return
    if document.get("resourceType") == "Bundle" and document.get("type") == "history":
        _replay_history(router, label, document, summary, base_url)
        return
    if document.get("resourceType") == "Bundle" and document.get("type") in _CONTAINERS:
        _load_as_transaction(router, label, document, summary, base_url)
        return
    if "resourceType" not in document:
        summary.counts["failed"] += 1
        summary.failures.append((label, "not a FHIR resource: it has no resourceType"))
        return
    load_resource(router, label, document, summary, base_url)


def _load_as_transaction(router: FhirRouter, label: str, bundle: dict[str, Any],
                         summary: LoadSummary, base_url: str) -> None:
    """A collection's or searchset's resources in one transaction: PUT at their ids, POSTed
    without one, their fullUrls kept, so references between them resolve (bundle.html
    #references); all in, or none with the entry that failed named."""
    entries: list[dict[str, Any]] = []
    labels: list[str] = []
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        search = entry.get("search") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or (
                isinstance(search, dict) and search.get("mode") == "outcome"):
            continue  # nothing to load, or a note about the search, not a result
        res_type, res_id = str(resource.get("resourceType", "")), resource.get("id")
        request = {"method": "PUT", "url": f"{res_type}/{res_id}"} if isinstance(res_id, str) \
            else {"method": "POST", "url": res_type}
        entries.append({**({"fullUrl": entry["fullUrl"]} if "fullUrl" in entry else {}),
                        "resource": resource, "request": request})
        labels.append(f"{label} entry {index}")
    if not entries:
        return
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = router.handle(FhirRequest("POST", "", resource=transaction), base_url)
    if response.status != 200:
        summary.record(label, response, entries=len(entries))
        return
    _record_bundle_response(labels, entries, response, summary)


def _replay_history(router: FhirRouter, label: str, bundle: dict[str, Any],
                    summary: LoadSummary, base_url: str) -> None:
    """A history Bundle lists the newest version first (http.html#history): replayed oldest
    first, each version PUT at its id and each deletion deleted, the last one current."""
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    for index in reversed(range(len(entries))):
        entry, where = entries[index], f"{label} entry {index}"
        sent = entry.get("request")
        request: dict[str, Any] = sent if isinstance(sent, dict) else {}
        url = request.get("url")
        if request.get("method") == "DELETE" and isinstance(url, str):
            path = url.removeprefix(base_url).strip("/")
            summary.record(where, router.handle(FhirRequest("DELETE", path), base_url),
                           method="DELETE")
        elif isinstance(entry.get("resource"), dict):
            load_resource(router, where, entry["resource"], summary, base_url)


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


def _record_bundle_response(labels: list[str] | str, entries: list[Any],
                            response: FhirResponse, summary: LoadSummary) -> None:
    """Count a batch or transaction's entries from its response Bundle (`labels`: each
    entry's, or the file's for all)."""
    bundle = jsonfmt.loads(response.body_bytes() or b"{}")  # parsed whole: no Fragments
    for index, entry in enumerate(bundle.get("entry", [])):
        answer = entry.get("response", {})
        status = str(answer.get("status", ""))
        sent = entries[index] if index < len(entries) and isinstance(entries[index], dict) \
            else {}
        method = str((sent.get("request") or {}).get("method", "PUT"))
        where = labels[index] if isinstance(labels, list) else f"{labels} entry {index}"
        code = int(status[:3]) if status[:3].isdigit() else 500
        outcome = answer.get("outcome")
        summary.count(where, code, method, 1, functools.partial(_reason, outcome, status))
