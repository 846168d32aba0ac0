"""Shared fixtures of the validator tests."""

from __future__ import annotations

from typing import Any

import pytest

from yilian.fhir.validate import Issue, Validator, get_validator


@pytest.fixture(scope="session")
def validator() -> Validator:
    return get_validator()


class Checker:
    """Validates hand-made resources and looks up the issues they raise."""

    def __init__(self, validator: Validator) -> None:
        self.validator = validator

    def errors(self, resource: Any) -> list[Issue]:
        return [issue for issue in self.validator.validate(resource) if issue.severity == "error"]

    def valid(self, resource: Any) -> None:
        issues = self.validator.validate(resource)
        assert issues == [], "\n".join(f"{i.path}: {i.message}" for i in issues)

    def only(self, resource: Any, path: str, code: str) -> Issue:
        """The resource has exactly one issue, an error of `code` at `path`."""
        issues = self.validator.validate(resource)
        assert [(i.severity, i.code, i.path) for i in issues] == [("error", code, path)], issues
        return issues[0]

    def has(self, resource: Any, path: str, code: str) -> Issue:
        """Among the issues there is an error of `code` at `path`."""
        issues = self.validator.validate(resource)
        for issue in issues:
            if issue.path == path and issue.code == code and issue.severity == "error":
                return issue
        raise AssertionError(f"no {code} error at {path}: {issues}")


@pytest.fixture(scope="session")
def check(validator: Validator) -> Checker:
    return Checker(validator)
