"""A `_has` with many sources walks the searched type in pk order (plan.DENSE_HAS) instead
of gathering its targets: the same pages, on both databases, whichever way it goes, and
next links that keep the way the first page went."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import put_all
from search_client import pages
from starlette.testclient import TestClient

from yilian.fhir.search import plan

LOINC = "http://loinc.org"
HEART_RATE, GLUCOSE = "8867-4", "2345-7"


def _resources() -> list[dict[str, Any]]:
    """Patients p0..p9; the even ones have two heart rates each, p3 one glucose result."""
    found: list[dict[str, Any]] = [{"resourceType": "Patient", "id": f"p{n}"} for n in range(10)]
    for n in range(0, 10, 2):
        found += [{"resourceType": "Observation", "id": f"hr{n}-{k}", "status": "final",
                   "code": {"coding": [{"system": LOINC, "code": HEART_RATE}]},
                   "subject": {"reference": f"Patient/p{n}"}} for k in range(2)]
    found.append({"resourceType": "Observation", "id": "glu3", "status": "final",
                  "code": {"coding": [{"system": LOINC, "code": GLUCOSE}]},
                  "subject": {"reference": "Patient/p3"}})
    return found


@pytest.mark.parametrize("dense", [1, 10_000])  # walked (every _has is dense) or gathered
def test_has_pages_are_the_same_walked_or_gathered(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, dense: int) -> None:
    put_all(client, _resources())
    monkeypatch.setattr(plan, "DENSE_HAS", dense)
    heart = f"Patient?_has:Observation:subject:code={LOINC}|{HEART_RATE}"
    assert pages(client, f"{heart}&_count=2") == [["p0", "p2"], ["p4", "p6"], ["p8"]]
    assert pages(client, f"{heart}&_sort=-_id&_count=3") == [["p8", "p6", "p4"], ["p2", "p0"]]
    assert pages(client, f"{heart}&_id=p2,p3,p4") == [["p2", "p4"]]
    glucose = f"Patient?_has:Observation:subject:code={GLUCOSE}"
    assert pages(client, glucose) == [["p3"]]
    assert pages(client, f"{glucose}&_has:Observation:subject:code={HEART_RATE}") == [[]]
