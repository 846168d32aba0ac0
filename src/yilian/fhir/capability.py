"""The CapabilityStatement: exactly what this server supports, derived from what it runs."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from yilian import __version__
from yilian.fhir import definitions
from yilian.fhir.search.query import SUPPORTED_TYPES, UNSUPPORTED_CODES
from yilian.fhir.search.registry import get_registry
from yilian.kit.clock import utcnow

if TYPE_CHECKING:
    from yilian.fhir.router import RouterOptions

JsonObject = dict[str, Any]

_TYPE_INTERACTIONS = (
    "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
    "create", "search-type",
)


def capability_statement(base_url: str, options: RouterOptions) -> JsonObject:
    statement = dict(_statement_body())
    rest = dict(statement["rest"][0])
    operations = list(options.operations)
    rest["operation"] = [
        {"name": op.code, "definition": op.definition["url"]}
        for op in operations
        if op.definition.get("system") or op.definition.get("type")
        or op.definition.get("instance")
    ]
    rest["resource"] = [
        {**entry, "operation": [{"name": op.code, "definition": op.definition["url"]}
                                for op in operations
                                if op.applies("type", entry["type"])
                                or op.applies("instance", entry["type"])]}
        for entry in rest["resource"]
    ]
    if options.smart:
        rest["security"] = _security(base_url.removesuffix("/").removesuffix("/fhir"))
    statement["rest"] = [rest]
    statement["implementation"] = {
        "description": "Yilian (医联) FHIR R4 server",
        "url": base_url,
    }
    return statement


def _security(root: str) -> JsonObject:
    """SMART on FHIR, and where to sign in (SMART's oauth-uris extension)."""
    uris = {"authorize": "authorize", "token": "token", "revoke": "revoke",
            "introspect": "introspect"}
    return {
        "cors": False,
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"}]}],
        "description": "Bearer access tokens (SMART App Launch 2.0 scopes); discovery at "
                       "/.well-known/smart-configuration",
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [{"url": name, "valueUri": f"{root}/auth/{path}"}
                          for name, path in uris.items()],
        }],
    }


@cache
def _statement_body() -> JsonObject:
    registry = get_registry()
    includes: dict[str, list[str]] = {}
    rev_includes: dict[str, list[str]] = {}
    for source in sorted(definitions.resource_types()):
        for code, param in sorted(registry.params_for(source).items()):
            if param.type.value != "reference":
                continue
            includes.setdefault(source, []).append(f"{source}:{code}")
            for target in param.targets:
                rev_includes.setdefault(target, []).append(f"{source}:{code}")
    resources = []
    for res_type in sorted(definitions.resource_types()):
        search_params = [
            {"name": "_id", "type": "token",
             "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"},
        ]
        for code, param in sorted(registry.params_for(res_type).items()):
            if (param.type.value in SUPPORTED_TYPES and code != "_id"
                    and code not in UNSUPPORTED_CODES):
                search_params.append(
                    {"name": code, "type": param.type.value, "definition": param.url}
                )
        resources.append(
            {
                "type": res_type,
                "profile": f"http://hl7.org/fhir/StructureDefinition/{res_type}",
                "interaction": [{"code": code} for code in _TYPE_INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "full-support",
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                "referencePolicy": ["literal", "local"],
                "searchInclude": ["*", *includes.get(res_type, [])],
                "searchParam": search_params,
            }
        )
        if res_type in rev_includes:
            resources[-1]["searchRevInclude"] = rev_includes[res_type]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": utcnow().date().isoformat(),  # when this server started
        "publisher": "Yilian",
        "kind": "instance",
        "software": {"name": "Yilian", "version": __version__},
        "fhirVersion": definitions.FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
                "compartment": ["http://hl7.org/fhir/CompartmentDefinition/patient"],
            }
        ],
    }
