"""One error root for the whole application.

    YilianError(code, http_status, message)      every failure a user can cause
    ├── BadRequest                 400  malformed JSON, bad parameters, wrong content type
    ├── Unauthorized / Forbidden   401 / 403
    ├── NotFound                   404  unknown type, id or version
    ├── MethodNotAllowed           405
    ├── Conflict                   409  a write lost a race, or breaks a uniqueness rule
    ├── Gone                       410  the resource was deleted
    ├── PreconditionFailed         412  If-Match did not match; conditional match was ambiguous
    ├── PayloadTooLarge            413
    ├── UnsupportedMediaType       415
    └── Unprocessable              422  the resource breaks the specification or a business rule

Each carries a stable code (like HAPI's numbered messages), the OperationOutcome issue-type, and
optionally the FHIRPath locations of the fault. The HTTP layer turns any of them into an
OperationOutcome; anything else is a bug and answers 500 without leaking details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True, slots=True)
class OutcomeIssue:
    severity: Severity
    code: str  # OperationOutcome.issue.code (issue-type value set)
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


def operation_outcome(issues: Sequence[OutcomeIssue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


class YilianError(Exception):
    http_status: ClassVar[int] = 400
    issue_type: ClassVar[str] = "processing"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        expression: Sequence[str] = (),
        issues: Sequence[OutcomeIssue] = (),
        issue_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.expression = tuple(expression)
        self.extra_issues = tuple(issues)
        self._issue_type = issue_type or self.issue_type

    @property
    def issues(self) -> tuple[OutcomeIssue, ...]:
        if self.extra_issues:
            return self.extra_issues
        return (
            OutcomeIssue("error", self._issue_type, f"[{self.code}] {self.message}",
                         self.expression),
        )

    def to_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)

    def relocated(self, message: str, issues: Sequence[OutcomeIssue]) -> YilianError:
        """The same error (class, code, status) told from somewhere else, e.g. as the
        failing entry of a transaction Bundle."""
        moved = self.__class__.__new__(self.__class__)
        moved.__dict__.update(self.__dict__)
        Exception.__init__(moved, message)
        moved.message = message
        moved.extra_issues = tuple(issues)
        return moved


class BadRequest(YilianError):
    http_status = 400
    issue_type = "invalid"


class Unauthorized(YilianError):
    http_status = 401
    issue_type = "login"


class Forbidden(YilianError):
    http_status = 403
    issue_type = "forbidden"


class NotFound(YilianError):
    http_status = 404
    issue_type = "not-found"


class MethodNotAllowed(YilianError):
    http_status = 405
    issue_type = "not-supported"


class Conflict(YilianError):
    http_status = 409
    issue_type = "conflict"


class Gone(YilianError):
    http_status = 410
    issue_type = "deleted"


class PreconditionFailed(YilianError):
    http_status = 412
    issue_type = "conflict"


class PayloadTooLarge(YilianError):
    http_status = 413
    issue_type = "too-costly"


class UnsupportedMediaType(YilianError):
    http_status = 415
    issue_type = "not-supported"


class Unprocessable(YilianError):
    http_status = 422
    issue_type = "processing"


class ServiceUnavailable(YilianError):
    """Not the caller's fault: something the answer needs is away for now (try again)."""

    http_status = 503
    issue_type = "transient"
