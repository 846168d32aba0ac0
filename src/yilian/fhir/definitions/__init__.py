"""The official FHIR R4 (4.0.1) definitions, shipped as data.

The gzipped JSON files beside this module are copied unchanged from the npm package
hl7.fhir.r4.examples@4.0.1 (CC0). Everything that knows the shape of FHIR (validation, search
indexing, the CapabilityStatement) is derived from them at start-up, never written by hand.
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources
from typing import Any

import orjson

FHIR_VERSION = "4.0.1"

JsonObject = dict[str, Any]


@cache
def load_bundle(name: str) -> tuple[JsonObject, ...]:
    """The resources of one shipped definition file (a Bundle, or a single resource)."""
    raw = resources.files(__package__).joinpath(f"{name}.json.gz").read_bytes()
    document: JsonObject = orjson.loads(gzip.decompress(raw))
    if document.get("resourceType") == "Bundle":
        return tuple(entry["resource"] for entry in document.get("entry", ()))
    return (document,)


@cache
def structure_definitions() -> dict[str, JsonObject]:
    """Base StructureDefinitions of every resource and data type, by type name."""
    found: dict[str, JsonObject] = {}
    for name in ("Bundle-types", "Bundle-resources"):
        for resource in load_bundle(name):
            if resource.get("resourceType") != "StructureDefinition":
                continue
            if resource.get("derivation") == "constraint":
                continue  # profiles (e.g. vitalsigns) are not base definitions
            found[resource["type"]] = resource
    return found


@cache
def resource_types() -> frozenset[str]:
    """Names of the 146 concrete R4 resource types."""
    return frozenset(
        name
        for name, sd in structure_definitions().items()
        if sd.get("kind") == "resource" and not sd.get("abstract", False)
    )


@cache
def search_parameters() -> tuple[JsonObject, ...]:
    """The 1,375 official SearchParameters (Bundle-searchParams.json)."""
    return tuple(
        resource
        for resource in load_bundle("Bundle-searchParams")
        if resource.get("resourceType") == "SearchParameter"
    )


@cache
def terminology() -> dict[str, JsonObject]:
    """ValueSets and CodeSystems by canonical URL (FHIR and v3 bundles)."""
    found: dict[str, JsonObject] = {}
    for name in ("Bundle-valuesets", "Bundle-v3-valuesets"):
        for resource in load_bundle(name):
            url = resource.get("url")
            if url:
                found.setdefault(f"{resource['resourceType']}|{url}", resource)
    return found


def value_set(url: str) -> JsonObject | None:
    return terminology().get(f"ValueSet|{url.split('|')[0]}")


def code_system(url: str) -> JsonObject | None:
    return terminology().get(f"CodeSystem|{url.split('|')[0]}")


@cache
def operation_definitions() -> dict[str, JsonObject]:
    """Official OperationDefinitions by id."""
    return {
        resource["id"]: resource
        for resource in load_bundle("Bundle-resources")
        if resource.get("resourceType") == "OperationDefinition"
    }


@cache
def patient_compartment() -> JsonObject:
    return load_bundle("CompartmentDefinition-patient")[0]
