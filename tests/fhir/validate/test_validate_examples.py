"""Every one of the 719 example instances of the official R4 package is validated
(the corpus and its known-invalid examples: tests/r4_examples.py)."""

from __future__ import annotations

import decimal
import json
from typing import Any

import pytest
from r4_examples import CONFORMANCE, EXAMPLES, KNOWN_INVALID, NAMES, known_invalid_path

from yilian.fhir.validate import Validator


def _load(name: str) -> Any:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    return json.loads(text, parse_float=decimal.Decimal)


def _skip_without_corpus() -> None:
    if not EXAMPLES.is_dir():
        pytest.skip(f"the R4 example corpus is missing at {EXAMPLES}; run `make examples`")


def test_the_corpus_has_the_719_examples() -> None:
    _skip_without_corpus()
    assert len(NAMES) == 719
    assert set(KNOWN_INVALID) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES or ["(corpus missing)"])
def test_example(validator: Validator, name: str) -> None:
    _skip_without_corpus()
    resource = _load(name)
    assert resource["resourceType"] not in CONFORMANCE
    errors = [issue for issue in validator.validate(resource) if issue.severity == "error"]
    if name not in KNOWN_INVALID:
        assert errors == [], "\n".join(f"{e.code} {e.path}: {e.message}" for e in errors)
        return
    path = known_invalid_path(name)
    at_path = [error for error in errors if error.path == path]
    assert at_path, f"expected an error at {path}, got {errors}"
    # and nothing else is wrong with it than the rule quoted
    assert {error.code for error in errors} == {at_path[0].code}, errors
