"""$validate (Resource-validate): would this resource be accepted? Always answers 200 with an
OperationOutcome, as the specification asks; 4xx only when validation itself cannot run."""

from __future__ import annotations

from typing import Any

from yilian.errors import BadRequest, NotFound
from yilian.fhir import definitions
from yilian.fhir.interactions import Context
from yilian.fhir.messages import FhirResponse
from yilian.fhir.operations import Invocation, Operation, parameter
from yilian.fhir.store import sql as store

_MODES = ("create", "update", "delete")


def validate(ctx: Context, call: Invocation) -> FhirResponse:
    from yilian.fhir.validate import get_validator

    mode_param = parameter(call.parameters, "mode")
    mode = _value(mode_param) if mode_param else None
    if mode is not None and mode not in _MODES:
        raise BadRequest("YL-1140", f"mode must be one of {', '.join(_MODES)}, not '{mode}'",
                         expression=("Parameters.parameter.where(name='mode')",))
    if mode in ("update", "delete") and call.res_id is None:
        raise BadRequest("YL-1141", f"mode {mode} needs an instance: POST /{call.res_type}/"
                         "[id]/$validate")
    issues: list[dict[str, Any]] = []
    if mode == "delete":
        assert call.res_type is not None and call.res_id is not None
        current = store.read_current(ctx.conn, call.res_type, call.res_id)
        if current is None or current.deleted:
            raise NotFound("YL-1010", f"{call.res_type}/{call.res_id} is not known")
    else:
        supplied = parameter(call.parameters, "resource")
        resource = supplied.get("resource") if supplied else None
        if not isinstance(resource, dict):
            raise BadRequest("YL-1142", "$validate needs a resource: send it as the body or "
                             "in a parameter named 'resource'")
        if call.res_type is not None and resource.get("resourceType") != call.res_type:
            issues.append(_issue("error", "invalid",
                                 f"The resource is a {resource.get('resourceType')}, not a "
                                 f"{call.res_type}", "resourceType"))
        elif resource.get("resourceType") not in definitions.resource_types():
            issues.append(_issue("error", "invalid", "Unknown or missing resourceType",
                                 "resourceType"))
        else:
            for problem in get_validator().validate(resource):
                issues.append(_issue(problem.severity, problem.code, problem.message,
                                     problem.path))
        if mode == "update" and resource.get("id") != call.res_id:
            issues.append(_issue("error", "invalid",
                                 f"The resource's id must be '{call.res_id}' for an update",
                                 f"{call.res_type}.id"))
    if not any(i["severity"] == "error" for i in issues):
        issues.insert(0, {"severity": "information", "code": "informational",
                          "diagnostics": "Validation passed: no errors"})
    return FhirResponse(200, resource={"resourceType": "OperationOutcome", "issue": issues})


def _value(item: dict[str, Any]) -> Any:
    for key, value in item.items():
        if key.startswith("value"):
            return value
    return None


def _issue(severity: str, code: str, message: str, path: str) -> dict[str, Any]:
    return {"severity": severity, "code": code, "diagnostics": message, "expression": [path]}


def operation() -> Operation:
    return Operation(definitions.operation_definitions()["Resource-validate"], validate)
