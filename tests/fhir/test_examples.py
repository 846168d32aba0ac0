"""Every official R4 example instance (hl7.fhir.r4.examples@4.0.1): PUT with its own id,
read back with the same content (less meta; decimals keep their written precision).

The examples that break the specification's own rules are listed with the reason and must be
refused with a precise OperationOutcome.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES
from starlette.testclient import TestClient

from yilian.api.app import create_app
from yilian.config import Settings
from yilian.kit import jsonfmt

CONFORMANCE_TYPES = frozenset({
    "StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter", "OperationDefinition",
    "CapabilityStatement", "CompartmentDefinition", "ConceptMap", "NamingSystem",
    "ImplementationGuide", "StructureMap", "GraphDefinition", "MessageDefinition",
    "TerminologyCapabilities", "ExampleScenario",
})


_TYPE = re.compile(rb'"resourceType"\s*:\s*"(\w+)"')


def example_files() -> list[Path]:
    """The 719 instances: every file of the package that is not a conformance resource."""
    if not EXAMPLES.exists():
        return []
    found = []
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.name == "package.json":
            continue
        with path.open("rb") as handle:
            match = _TYPE.search(handle.read(400))
        assert match, f"{path.name} does not start with its resourceType"
        if match.group(1).decode() not in CONFORMANCE_TYPES:
            found.append(path)
    return found


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    copy = dict(resource)
    meta = dict(copy.pop("meta", {}) or {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        copy["meta"] = meta
    return copy


def test_the_corpus_has_719_instances() -> None:
    if not EXAMPLES.exists():
        pytest.skip(f"the official examples are missing at {EXAMPLES}: run `make examples`")
    assert len(example_files()) == 719


@pytest.mark.slow
def test_every_official_example_round_trips(database_url: str) -> None:
    from fhir.validate_known import KNOWN_INVALID  # the validator's list, with reasons

    files = example_files()
    if not files:
        pytest.skip(f"the official examples are missing at {EXAMPLES}: run `make examples`")
    settings = Settings(database_url=database_url, max_body_bytes=256 * 1024 * 1024)
    app = create_app(settings)
    failures: list[str] = []
    with TestClient(app) as client:
        for path in files:
            raw = path.read_bytes()
            example = jsonfmt.loads(raw)
            url = f"/fhir/{example['resourceType']}/{example['id']}"
            response = client.put(url, content=raw,
                                  headers={"Content-Type": "application/fhir+json"})
            if path.name in KNOWN_INVALID:
                expected_path = KNOWN_INVALID[path.name][1]
                expressions = [e for i in response.json().get("issue", [])
                               for e in i.get("expression", [])]
                if response.status_code != 422 or expected_path not in expressions:
                    failures.append(f"{path.name}: expected 422 at {expected_path}, got "
                                    f"{response.status_code} {expressions[:3]}")
                continue
            if response.status_code not in (200, 201):
                failures.append(f"{path.name}: {response.status_code} {response.text[:300]}")
                continue
            read = client.get(url)
            if read.status_code != 200:
                failures.append(f"{path.name}: read gave {read.status_code}")
                continue
            if without_meta(jsonfmt.loads(read.content)) != without_meta(example):
                failures.append(f"{path.name}: content differs after the round trip")
    app.state.engine.dispose()
    assert not failures, "\n".join(failures[:40])
