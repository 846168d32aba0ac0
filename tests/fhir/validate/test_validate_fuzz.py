"""Arbitrary JSON never crashes the validator, nor is it changed by it."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.fhir.validate import Issue, get_validator

KEYS = [
    "id", "_id", "extension", "url", "valueString", "valueCode", "_valueString", "valueBoolean",
    "name", "given", "_given", "family", "gender", "_gender", "birthDate", "_birthDate",
    "active", "telecom", "system", "value", "use", "reference", "type", "identifier",
    "contained", "resourceType", "managingOrganization", "coding", "code", "text", "status",
    "valueQuantity", "component", "subject", "div", "entry", "resource", "meta", "versionId",
    "modifierExtension", "foo", "",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(Decimal),
    st.sampled_from(["", " ", "male", "Patient/1", "#a", "2023-02-30", "2024-01-01", "x y"]),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)
resources = st.builds(
    lambda kind, body: {**body, "resourceType": kind},
    st.sampled_from(["Patient", "Observation", "Bundle", "Organization", "Questionnaire"]),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8),
)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(resources)
def test_arbitrary_json_is_reported_not_raised(resource: dict[str, Any]) -> None:
    before = copy.deepcopy(resource)
    issues = get_validator().validate(resource)
    assert all(isinstance(issue, Issue) for issue in issues)
    assert all(issue.message and issue.path for issue in issues)
    assert resource == before


@settings(max_examples=100, deadline=None, database=None)
@given(json_values)
def test_anything_at_all(value: Any) -> None:
    issues = get_validator().validate(value)
    assert isinstance(issues, list)
