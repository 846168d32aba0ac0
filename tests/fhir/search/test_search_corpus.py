"""Extraction over every official example, and the walker checked against fhirpathpy."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
from search_examples import example, instance_files, instances

from yilian.fhir.search.extract import (
    TABLES,
    Route,
    compile_param,
    extract_index_rows,
    routing_summary,
)
from yilian.fhir.search.registry import ParamType, SearchParam, get_registry
from yilian.fhir.search.rows import ReferenceRow, StringRow
from yilian.kit import jsonfmt


def test_every_example_is_indexed_without_error(capsys: pytest.CaptureFixture[str]) -> None:
    resources = instances()
    assert len(resources) == len(instance_files()) == 719
    totals: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    for resource in resources:
        before = jsonfmt.dumps(resource)
        tables = extract_index_rows(resource)
        assert jsonfmt.dumps(resource) == before  # extraction never alters the resource
        assert tuple(tables) == TABLES
        for table, found in tables.items():
            totals[table] += len(found)
            by_type[resource["resourceType"]] += len(found)
    assert sum(totals.values()) > 6000
    assert all(totals[table] for table in TABLES)  # every table gets rows from the corpus
    with capsys.disabled():
        print(f"\n719 examples → {sum(totals.values())} index rows: {dict(totals)}")


def test_routing_of_the_official_definitions() -> None:
    """All 1,369 indexed definitions go through the path walker; the 6 left are _text and
    _content (no expression), _query and Location's `near` (special), and _id and
    _lastUpdated (columns of the resource table)."""
    summary = routing_summary()
    yilians = 2  # Consent?provision-type and Location?physical-type (registry.YILIAN_PARAMETERS)
    assert summary["definitions"] == Counter({"walker": 1369 + yilians, "skipped": 6})
    assert summary["per_type"][Route.FHIRPATH.value] == 0


def _values(rows: list[Any]) -> list[str]:
    return sorted(repr(sorted(row._asdict().items())) for row in rows)


# Where the two legitimately differ:
#  - fhirpathpy refuses `as` on a collection ("Expected singleton"), while servers (and the
#    walker) cast each item: (Library.useContext.value as CodeableConcept) with several
#    contexts. Such evaluations are skipped below.
#  - CarePlan.activity.detail.scheduled includes scheduledString; the fallback guesses a date
#    from a string, the walker indexes only date types.
#  - Bundle.entry[0].resource: the walker keeps it only when it is of the parameter's target
#    type (a Composition for `composition`), the expression itself takes any first entry.
_KNOWN = {("CarePlan", "activity-date"), ("Bundle", "composition"), ("Bundle", "message")}


def test_the_walker_agrees_with_fhirpathpy_on_the_examples() -> None:
    registry = get_registry()
    compiled: dict[tuple[str, str], tuple[Any, Any]] = {}
    compared = 0
    per_type: Counter[str] = Counter()
    for resource in instances():
        res_type = resource["resourceType"]
        per_type[res_type] += 1
        if per_type[res_type] > 2:  # two examples of each type keep this test quick
            continue
        for code, param in registry.params_for(res_type).items():
            if param.type is ParamType.COMPOSITE or (res_type, code) in _KNOWN:
                continue
            key = (res_type, code)
            if key not in compiled:
                walker = compile_param(param, registry)[1]
                fhirpath = compile_param(param, registry, force_fhirpath=True)[1]
                compiled[key] = (walker, fhirpath)
            walker, fhirpath = compiled[key]
            if walker is None:
                continue
            try:
                expected = fhirpath.evaluate(resource)
            except ValueError as error:
                assert "singleton" in str(error)
                continue
            del expected
            assert _values(walker.rows(resource, res_type)) == _values(
                fhirpath.rows(resource, res_type)
            ), (res_type, resource.get("id"), code, param.expression)
            compared += 1
    assert compared > 2500


def test_expressions_outside_the_walker_go_to_fhirpathpy() -> None:
    custom = SearchParam(
        code="official-family",
        type=ParamType.STRING,
        resource_type="Patient",
        expression="Patient.name.where(use = 'official').family.first()",
        targets=(),
        components=(),
        url="urn:yilian:SearchParameter/official-family",
    )
    route, indexer = compile_param(custom)
    assert route is Route.FHIRPATH
    assert indexer is not None
    patient = example("Patient-example.json")
    assert indexer.rows(patient, "Patient") == [
        StringRow("official-family", value_norm="chalmers", value_exact="Chalmers")
    ]


def test_fhirpathpy_resolves_reference_types() -> None:
    param = get_registry().get("Encounter", "patient")
    assert param is not None
    route, indexer = compile_param(param, force_fhirpath=True)
    assert route is Route.FHIRPATH and indexer is not None
    encounter = {"resourceType": "Encounter", "id": "e", "subject": {"reference": "Patient/p"}}
    assert indexer.rows(encounter, "Encounter") == [
        ReferenceRow("patient", target_type="Patient", target_id="p", target_version=None,
                     url=None)
    ]
    group = {"resourceType": "Encounter", "id": "e", "subject": {"reference": "Group/g"}}
    assert indexer.rows(group, "Encounter") == []


def test_a_failing_fhirpath_evaluation_skips_the_parameter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    param = get_registry().get("Substance", "code")
    assert param is not None
    _, indexer = compile_param(param, force_fhirpath=True)
    assert indexer is not None
    substance = {
        "resourceType": "Substance",
        "id": "s",
        "code": {"coding": [{"system": "s", "code": "c"}]},
        "ingredient": [
            {"substanceCodeableConcept": {"coding": [{"system": "s", "code": "i1"}]}},
            {"substanceCodeableConcept": {"coding": [{"system": "s", "code": "i2"}]}},
        ],
    }
    with caplog.at_level(logging.WARNING, logger="yilian.fhir.search.extract"):
        assert indexer.rows(substance, "Substance") == []
    assert "Substance.code not indexed" in caplog.text
    # The walker casts each ingredient.
    assert {row.code for row in extract_index_rows(substance)["token"]
            if row.param == "code"} == {"c", "i1", "i2"}  # fmt: skip
