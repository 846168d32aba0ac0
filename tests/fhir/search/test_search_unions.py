"""Which parameters are stored as the rows of others (yilian.fhir.search.unions)."""

from __future__ import annotations

from yilian.fhir.search.extract import extract_index_rows
from yilian.fhir.search.registry import get_registry
from yilian.fhir.search.unions import stored_codes


def _stored(res_type: str, code: str) -> tuple[str, ...]:
    param = get_registry().get(res_type, code)
    assert param is not None
    return stored_codes(param)


def test_a_union_of_paths_is_stored_as_its_parts() -> None:
    assert _stored("Observation", "combo-code") == ("code", "component-code")
    assert _stored("Observation", "combo-value-quantity") == (
        "component-value-quantity", "value-quantity")
    # The same paths under two names: stored under the code that sorts first.
    assert _stored("Patient", "phonetic") == ("name",)
    assert _stored("Patient", "name") == ("name",)


def test_parameters_that_only_overlap_are_stored_themselves() -> None:
    # `code` is part of combo-code, not the other way round.
    assert _stored("Observation", "code") == ("code",)
    # value-string also reads valueCodeableConcept.text: nothing else reads exactly that.
    assert _stored("Observation", "value-string") == ("value-string",)
    # References are never merged: `patient` is `subject` narrowed to Patients.
    assert _stored("Observation", "patient") == ("patient",)


def test_united_parameters_write_no_rows() -> None:
    observation = {"resourceType": "Observation", "id": "o", "status": "final",
                   "code": {"coding": [{"code": "x"}]}, "valueQuantity": {"value": 3},
                   "component": [{"code": {"coding": [{"code": "y"}]}}]}
    written = {row.param for rows in extract_index_rows(observation).values()
               for row in rows}
    assert {"code", "component-code", "value-quantity"} <= written
    assert not {code for code in written if code.startswith("combo-")}
    patient = {"resourceType": "Patient", "id": "p", "name": [{"family": "Zhang"}]}
    written = {row.param for rows in extract_index_rows(patient).values() for row in rows}
    assert "name" in written and "phonetic" not in written
