"""The official R4 examples for the search tests, parsed as the server parses them."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from yilian.kit import jsonfmt

EXAMPLES = Path(__file__).resolve().parents[3] / ".cache" / "fhir-r4-examples" / "package"

# Definitional resources of the package: not instances (tests/fhir/test_examples.py keeps the
# same list).
CONFORMANCE_TYPES = frozenset(
    {
        "StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter",
        "OperationDefinition", "CapabilityStatement", "CompartmentDefinition", "ConceptMap",
        "NamingSystem", "ImplementationGuide", "StructureMap", "GraphDefinition",
        "MessageDefinition", "TerminologyCapabilities", "ExampleScenario",
    }
)  # fmt: skip


_LEADING_TYPE = re.compile(rb'\s*\{\s*"resourceType"\s*:\s*"(\w+)"')


def require_examples() -> None:
    if not EXAMPLES.exists():
        pytest.skip(f"the official examples are missing at {EXAMPLES}: run `make examples`")


def example(name: str) -> dict[str, Any]:
    """One example by file name, e.g. "Patient-example.json" (decimals kept as written)."""
    require_examples()
    resource: dict[str, Any] = jsonfmt.loads((EXAMPLES / name).read_bytes())
    return resource


@cache
def instance_files() -> tuple[Path, ...]:
    """Every instance of the package (719 files): all but package.json and conformance.

    A file's first "resourceType" is not always its own (Bundle-terminologies.json lists its
    entries first): unless it is the object's first key, the file is parsed."""
    found = []
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.name == "package.json":
            continue
        with path.open("rb") as handle:
            match = _LEADING_TYPE.match(handle.read(200))
        if match:
            res_type = match.group(1).decode()
        else:
            res_type = orjson.loads(path.read_bytes())["resourceType"]
        if res_type not in CONFORMANCE_TYPES:
            found.append(path)
    return tuple(found)


def instances() -> tuple[dict[str, Any], ...]:
    """The 719 instances, parsed with yilian.kit.jsonfmt (decimals as written); parsed once
    per session, so tests must not modify them."""
    require_examples()
    return _parsed_instances()


@cache
def _parsed_instances() -> tuple[dict[str, Any], ...]:
    return tuple(jsonfmt.loads(path.read_bytes()) for path in instance_files())
