"""Custom and standard FHIR operations ($name), each declared by an OperationDefinition.

An operation registers its definition and a handler; the router finds it by name and level
(system, type, instance), the CapabilityStatement lists it. Domains add theirs (an inpatient
$admit, say) through `OperationRegistry.register`, so the substrate never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from yilian.errors import BadRequest, MethodNotAllowed, NotFound

if TYPE_CHECKING:
    from yilian.fhir.interactions import Context
    from yilian.fhir.messages import FhirRequest, FhirResponse

JsonObject = dict[str, Any]
Level = Literal["system", "type", "instance"]


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call of an operation: where it was invoked and with what input."""

    level: Level
    res_type: str | None
    res_id: str | None
    parameters: JsonObject  # a Parameters resource (query parameters are turned into one)
    body: Any  # the body as sent (a Parameters resource, or a resource for $validate)
    request: FhirRequest


Handler = Callable[["Context", Invocation], "FhirResponse"]


@dataclass(frozen=True, slots=True)
class Operation:
    definition: JsonObject  # the OperationDefinition
    handler: Handler

    @property
    def code(self) -> str:
        return str(self.definition["code"])

    @property
    def affects_state(self) -> bool:
        return bool(self.definition.get("affectsState", False))

    def applies(self, level: Level, res_type: str | None) -> bool:
        if not self.definition.get(level, False):
            return False
        if level == "system":
            return True
        types = self.definition.get("resource", [])
        return "Resource" in types or res_type in types


class OperationRegistry:
    def __init__(self) -> None:
        self._by_code: dict[str, list[Operation]] = {}

    def register(self, operation: Operation) -> None:
        self._by_code.setdefault(operation.code, []).append(operation)

    def __iter__(self) -> Iterator[Operation]:
        for operations in self._by_code.values():
            yield from operations

    def find(self, code: str, level: Level, res_type: str | None) -> Operation:
        candidates = self._by_code.get(code, [])
        for operation in candidates:
            if operation.applies(level, res_type):
                return operation
        where = {"system": "the server", "type": f"{res_type}", "instance": f"a {res_type}"}[level]
        raise NotFound(
            "YL-1130",
            f"There is no operation ${code} on {where}; the operations this server runs are "
            "listed in its CapabilityStatement",
            issue_type="not-supported",
        )


def invocation_parameters(operation: Operation, request: FhirRequest, body: Any) -> JsonObject:
    """The input as a Parameters resource: the body, or GET query parameters."""
    if request.method == "GET":
        if operation.affects_state:
            raise MethodNotAllowed(
                "YL-1131", f"${operation.code} changes data, so it must be invoked with POST"
            )
        return {
            "resourceType": "Parameters",
            "parameter": [{"name": k, "valueString": v} for k, v in request.query],
        }
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        return body
    if isinstance(body, dict) and "resourceType" in body:
        # A single resource sent as the body stands for the operation's one resource input.
        return {"resourceType": "Parameters", "parameter": [{"name": "resource",
                                                             "resource": body}]}
    raise BadRequest("YL-1132", f"${operation.code} takes a Parameters resource as its body")


def parameter(parameters: JsonObject, name: str) -> JsonObject | None:
    for item in parameters.get("parameter", []):
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def publish(registry: OperationRegistry, write: Callable[[FhirRequest], FhirResponse]) -> int:
    """Store the server's own OperationDefinitions (those not in the official package), so
    that [base]/OperationDefinition/[id] and searches by url find what the
    CapabilityStatement names; an unchanged definition makes no new version. Returns how
    many were written or confirmed."""
    from yilian.fhir import definitions
    from yilian.fhir.messages import FhirRequest
    from yilian.kit import jsonfmt

    official = {d["url"] for d in definitions.operation_definitions().values()}
    published = 0
    for operation in registry:
        definition = operation.definition
        if definition["url"] in official:
            continue
        answer = write(FhirRequest(
            "PUT", f"OperationDefinition/{definition['id']}", body=jsonfmt.dumps(definition),
            content_type="application/fhir+json",
            headers={"content-type": "application/fhir+json"}))
        if answer.status >= 400:
            raise RuntimeError(f"OperationDefinition/{definition['id']} was refused: "
                               f"{answer.body_bytes()!r}")
        published += 1
    return published
