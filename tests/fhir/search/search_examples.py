"""The official R4 examples for the search tests, parsed as the server parses them."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

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

_TYPE = re.compile(rb'"resourceType"\s*:\s*"(\w+)"')


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
    """Every instance of the package (719 files): all but package.json and conformance."""
    found = []
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.name == "package.json":
            continue
        with path.open("rb") as handle:
            match = _TYPE.search(handle.read(400))
        assert match, f"{path.name} does not start with its resourceType"
        if match.group(1).decode() not in CONFORMANCE_TYPES:
            found.append(path)
    return tuple(found)


def instances() -> list[dict[str, Any]]:
    require_examples()
    return [jsonfmt.loads(path.read_bytes()) for path in instance_files()]
