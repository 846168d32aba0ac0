"""A search that matches many reads its page off the sort parameter's index, or walks the
type in pk order (search.walk): the same pages, on both databases, whether walked or
gathered and sorted, with several values per resource, ties, resources without a value,
deleted ones, and walks too short to fill a page (answered the usual way)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fhir_helpers import FHIR_JSON, put_all
from search_client import pages
from starlette.testclient import TestClient

from yilian.fhir.search import query as query_module
from yilian.fhir.search import walk

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
A, B = "8867-4", "2345-7"


def _patient(n: int, *families: str, birth: str | None = None, **more: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"resourceType": "Patient", "id": f"p{n:02}", **more}
    if families:
        found["name"] = [{"family": family} for family in families]
    if birth:
        found["birthDate"] = birth
    return found


def _observation(n: int, code: str, value: float | None = None, **timing: Any
                 ) -> dict[str, Any]:
    found: dict[str, Any] = {"resourceType": "Observation", "id": f"o{n:02}", "status": "final",
                             "code": {"coding": [{"system": LOINC, "code": code}]},
                             "subject": {"reference": f"Patient/p{n % 4:02}"}, **timing}
    if value is not None:
        found["valueQuantity"] = {"value": value, "system": UCUM, "code": "/min"}
    return found


PATIENTS = [
    _patient(0, "Wang", birth="1980-05-01"),
    _patient(1, "li", birth="1975"),
    _patient(2, "Zhao", "An", birth="1990-01"),  # sorts by "an" up, by "zhao" down
    _patient(3, "Li", birth="1980-05-01", gender="female"),
    _patient(4),  # no name, no birth date: last either way
    _patient(5, "Élan", birth="2001-02-03"),
    _patient(6, "Wang", birth="1960"),  # deleted below
    _patient(7, "Chen", birth="1975-06"),
    _patient(8, "Li", gender="female"),
    _patient(9, birth="1962"),
    _patient(10, "Ma", "Ma", birth="1975-06"),
    _patient(11, "Ào", gender="female"),
]
OBSERVATIONS = [
    _observation(0, A, 72, effectiveDateTime="2024-01-05"),
    _observation(1, A, 80, effectivePeriod={"start": "2024-01-01", "end": "2024-01-10"}),
    _observation(2, B, 5.5, effectiveDateTime="2024-01-05"),
    _observation(3, A, 72),
    _observation(4, A, 64, effectiveDateTime="2023-12-31T23:00:00+08:00"),
    _observation(5, B, effectiveDateTime="2024-02"),
    _observation(6, A, 90, effectiveDateTime="2024-01-05"),
    _observation(7, A, 72.0, effectivePeriod={"start": "2024-01-03"}),
    _observation(8, A, 100, effectiveDateTime="2024-01-06"),  # deleted below
    _observation(9, A, effectiveDateTime="2024-01-05T10:00:00Z"),
]

QUERIES = [
    "Patient?_sort=family", "Patient?_sort=-family", "Patient?_sort=birthdate",
    "Patient?_sort=-birthdate", "Patient?_sort=_lastUpdated", "Patient?_sort=-_lastUpdated",
    "Patient?_sort=_id", "Patient?_sort=-_id", "Patient?gender=female&_sort=family",
    "Patient?birthdate=ge1975&_sort=-birthdate", "Observation?_sort=date",
    "Observation?_sort=-date", f"Observation?code={LOINC}|{A}&_sort=date",
    f"Observation?code={A}&_sort=-date", "Observation?_sort=value-quantity",
    "Observation?_sort=-date&_include=Observation:subject&_elements=status",
    "Observation?_sort=-value-quantity", "Observation?status:not=final&_sort=date",
    # In pk order, from a range or a chain (walked in pk order: search.walk).
    "Observation?value-quantity=gt70", "Observation?date=ge2024-01-04",
    "Observation?_lastUpdated=gt2000-01-01", "Patient?birthdate=ge1970", "Patient?family=l",
    "Observation?subject:Patient.family=li", f"Observation?subject.birthdate=lt1990&code={A}",
    "Observation?subject.family=nobody", f"Observation?code={LOINC}|",
    # Not walked: a scan, or a range whose rows are checked for a unit (search.walk).
    "Patient?family:contains=a", f"Observation?value-quantity=gt70|{UCUM}|/min",
]
NOT_WALKED = {  # nothing to fill a page with; a code's rows, already in pk order
    "Observation?status:not=final&_sort=date", "Observation?subject.family=nobody",
    f"Observation?subject.birthdate=lt1990&code={A}", "Patient?family:contains=a",
    f"Observation?value-quantity=gt70|{UCUM}|/min"}


@pytest.fixture
def stored(client: TestClient) -> TestClient:
    put_all(client, PATIENTS + OBSERVATIONS)
    for gone in ("Patient/p06", "Observation/o08"):
        assert client.delete(f"/fhir/{gone}").status_code in (200, 204)
    for again in ("p03", "p00"):  # updated later: last by _lastUpdated, not by pk
        body = {**next(p for p in PATIENTS if p["id"] == again), "active": True}
        assert client.put(f"/fhir/Patient/{again}", json=body,
                          headers=FHIR_JSON).status_code == 200
    return client


@pytest.fixture
def walked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the pages a walk answered (each a list's element)."""
    answered: list[int] = []
    original = query_module._walked_page

    def counting(*args: Any, **kwargs: Any) -> Any:
        rows = original(*args, **kwargs)
        if rows is not None:
            answered.append(len(rows))
        return rows

    monkeypatch.setattr(query_module, "_walked_page", counting)
    monkeypatch.setattr(walk, "DENSE_SORT", 0)  # every search matches "many"
    monkeypatch.setattr(walk, "DENSE_TARGETS", 0)
    yield answered


def _gathered(client: TestClient, monkeypatch: pytest.MonkeyPatch, query: str
              ) -> list[list[str]]:
    with monkeypatch.context() as patch:
        patch.setattr(query_module, "walkable", lambda sort: False)
        patch.setattr(query_module, "walks_in_pk_order", lambda parts, chosen: False)
        return pages(client, query)


def test_a_walk_gives_the_pages_a_sort_gives(
        stored: TestClient, walked: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    for count in (1, 2, 5, 50):
        for query in QUERIES:
            url = f"{query}&_count={count}"
            expected = _gathered(stored, monkeypatch, url)
            # Walks long enough for any page (after a first one as long as the page, often
            # too short), then only as long as the page.
            for rows, per_result, first in ((1000, 100, 10), (1000, 100, 1), (1, 1, 1)):
                monkeypatch.setattr(walk, "WALK_ROWS", rows)
                monkeypatch.setattr(walk, "WALK_ROWS_PER_RESULT", per_result)
                monkeypatch.setattr(walk, "FIRST_WALK_ROWS_PER_RESULT", first)
                before = len(walked)
                assert pages(stored, url) == expected, (url, rows)
                if query in NOT_WALKED:
                    assert len(walked) == before, url
                elif rows == 1000 and count <= 2:
                    assert len(walked) > before, url  # the walk filled a page
    assert any(walked)


def test_sorted_pages_written_out(stored: TestClient, walked: list[int]) -> None:
    """By the specification's rules, whichever way the pages are read: the lowest value up,
    the highest down, accents and case folded, ties by pk, no value last."""
    def ids(query: str) -> list[str]:
        return [i for page in pages(stored, f"{query}&_count=4") for i in page]

    assert ids("Patient?_sort=family") == [
        "p02", "p11", "p07", "p05", "p01", "p03", "p08", "p10", "p00", "p04", "p09"]
    assert ids("Patient?_sort=-family") == [
        "p02", "p00", "p10", "p01", "p03", "p08", "p05", "p07", "p11", "p04", "p09"]
    # Down by each date's last moment: 1975 ends after June 1975 does.
    assert ids("Patient?_sort=-birthdate") == [
        "p05", "p02", "p00", "p03", "p01", "p07", "p10", "p09", "p04", "p08", "p11"]
    assert ids("Patient?_sort=_lastUpdated")[-2:] == ["p03", "p00"]
    # o04 is 15:00 UTC on 31 December; o07's period has no end: highest of all down.
    assert ids("Observation?_sort=date") == [
        "o04", "o01", "o07", "o00", "o02", "o06", "o09", "o05", "o03"]
    assert ids("Observation?_sort=-date") == [
        "o07", "o05", "o01", "o00", "o02", "o06", "o09", "o04", "o03"]
    assert ids(f"Observation?code={A}&_sort=value-quantity") == [
        "o04", "o00", "o03", "o07", "o01", "o06", "o09"]
    assert walked
