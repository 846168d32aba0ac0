"""One finding of the validator, shaped like an OperationOutcome.issue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Issue:
    severity: Severity
    code: str  # an OperationOutcome issue-type code: "structure", "required", "value"...
    path: str  # FHIRPath location of the fault, e.g. "Patient.name[0].given[1]"
    message: str  # clear English, naming the element and the offending value or expectation
