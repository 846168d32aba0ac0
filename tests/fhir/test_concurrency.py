"""Races: parallel updates with If-Match (exactly one wins), parallel conditional creates
(never two resources), parallel update-as-create of one id — on a real server with threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fhir_helpers import FHIR_JSON, identifier, patient

WORKERS = 8


def _parallel(count: int, work: Any) -> list[Any]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(work, range(count)))


def test_parallel_updates_with_if_match_one_wins(
        live_server: str, live_headers: dict[str, str]) -> None:
    with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as client:
        client.put("/Patient/race", json=patient(id="race"), headers=FHIR_JSON)

    def update(number: int) -> int:
        with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as worker:
            body = patient(id="race", birthDate=f"19{10 + number}-01-01")
            return worker.put("/Patient/race", json=body,
                              headers={**FHIR_JSON, "If-Match": 'W/"1"'}).status_code

    statuses = _parallel(WORKERS, update)
    assert sorted(statuses) == [200] + [412] * (WORKERS - 1)
    with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as client:
        history = client.get("/Patient/race/_history").json()
        assert len(history["entry"]) == 2


def test_parallel_conditional_creates_make_one_resource(
        live_server: str, live_headers: dict[str, str]) -> None:
    body = patient(identifier=identifier("urn:oid:2.16.156.10011.1.2", "330106199001011234"))
    criteria = "identifier=urn:oid:2.16.156.10011.1.2|330106199001011234"

    def create(_: int) -> tuple[int, str]:
        with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as worker:
            response = worker.post("/Patient", json=body,
                                   headers={**FHIR_JSON, "If-None-Exist": criteria})
            return response.status_code, response.json()["id"]

    results = _parallel(WORKERS * 2, create)
    assert sorted(s for s, _ in results) == [200] * (WORKERS * 2 - 1) + [201]
    assert len({i for _, i in results}) == 1
    with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as client:
        found = client.get(f"/Patient?{criteria}").json()
        assert len(found["entry"]) == 1


def test_parallel_conditional_updates_make_one_resource(
        live_server: str, live_headers: dict[str, str]) -> None:
    body = patient(identifier=identifier("http://hospital.example/mrn", "RACE-2"))

    def upsert(_: int) -> int:
        with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as worker:
            return worker.put("/Patient?identifier=http://hospital.example/mrn|RACE-2",
                              json=body, headers=FHIR_JSON).status_code

    statuses = _parallel(WORKERS, upsert)
    assert statuses.count(201) == 1
    with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as client:
        found = client.get("/Patient?identifier=http://hospital.example/mrn|RACE-2").json()
        assert len(found["entry"]) == 1


def test_parallel_update_as_create_of_one_id(
        live_server: str, live_headers: dict[str, str]) -> None:
    def put(number: int) -> int:
        with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as worker:
            body = patient(id="same-id", birthDate=f"19{10 + number}-02-03")
            return worker.put("/Patient/same-id", json=body, headers=FHIR_JSON).status_code

    statuses = _parallel(WORKERS, put)
    assert statuses.count(201) == 1
    assert statuses.count(200) == WORKERS - 1
    with httpx.Client(base_url=live_server, timeout=60, headers=live_headers) as client:
        history = client.get("/Patient/same-id/_history?_count=50").json()
        versions = sorted(int(e["response"]["etag"][3:-1]) for e in history["entry"])
        assert versions == list(range(1, WORKERS + 1))
