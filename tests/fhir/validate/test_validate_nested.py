"""Resources inside resources: Bundle entries, Parameters, and the public interface."""

from __future__ import annotations

import dataclasses
import timeit
from typing import Any

import pytest

from yilian.fhir.validate import Issue, get_validator

OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}}


def test_bundle_entries_are_validated_by_their_own_type(check: Any) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", "resource": OBSERVATION},
            {"resource": {"resourceType": "Patient", "gender": "male"}},
            {"resource": {**OBSERVATION, "status": "done"}},
        ],
    }
    check.only(bundle, "Bundle.entry[2].resource.status", "code-invalid")


def test_bundle_entry_without_resource_type(check: Any) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"id": "1"}}]}
    check.only(bundle, "Bundle.entry[0].resource.resourceType", "required")


def test_bundle_entry_resource_is_single(check: Any) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": [OBSERVATION]}],
    }
    check.only(bundle, "Bundle.entry[0].resource", "structure")


def test_transaction_response_outcome(check: Any) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal"}]}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": {"status": "400", "outcome": outcome}}],
    }
    check.only(bundle, "Bundle.entry[0].response.outcome.issue[0].code", "required")


def test_local_references_resolve_within_each_entry(check: Any) -> None:
    organization = {"resourceType": "Organization", "id": "org", "name": "ACME"}
    patient = {"resourceType": "Patient", "managingOrganization": {"reference": "#org"}}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {**patient, "contained": [organization]}},
            {"resource": patient},
        ],
    }
    check.only(bundle, "Bundle.entry[1].resource.managingOrganization.reference", "invariant")


def test_parameters_resource_and_parts(check: Any) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "resource": {"resourceType": "Patient", "active": 1}},
            {"name": "outer", "part": [{"name": "inner", "valueBoolean": "false"}]},
        ],
    }
    errors = check.errors(parameters)
    assert {(e.code, e.path) for e in errors} == {
        ("structure", "Parameters.parameter[0].resource.active"),
        ("structure", "Parameters.parameter[1].part[0].valueBoolean"),
    }


def test_issue_is_a_frozen_value() -> None:
    issue = Issue("error", "value", "Patient.id", "bad")
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.path = "x"  # type: ignore[misc]
    assert issue == Issue("error", "value", "Patient.id", "bad")


def test_the_validator_is_built_once() -> None:
    assert get_validator() is get_validator()


def test_validation_is_fast() -> None:
    resource = {
        "resourceType": "Patient",
        "id": "example",
        "identifier": [
            {
                "use": "usual",
                "system": "urn:oid:1.2.36.146.595.217.0.1",
                "value": "12345",
                "period": {"start": "2001-05-06"},
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
        "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work", "rank": 1}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "address": [
            {
                "use": "home",
                "line": ["534 Erewhon St"],
                "city": "PleasantVille",
                "postalCode": "3999",
                "period": {"start": "1974-12-25"},
            }
        ],
        "managingOrganization": {"reference": "Organization/1"},
    }
    validate = get_validator().validate
    assert validate(resource) == []
    seconds = min(timeit.repeat(lambda: validate(resource), number=200, repeat=5)) / 200
    assert seconds < 0.002  # ~20 µs on a laptop; generous for loaded CI machines
