"""Plain reads by id take the endpoint's quick path (api.fhir_http `_read_quickly`): the same
answers, byte for byte, and the same audit entries as the general path, on SQLite and
PostgreSQL; every other read (conditional, refused, unknown, deleted, masked, confined) is
left to the general path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fhir_helpers import FHIR_JSON, put_all
from sqlalchemy import select
from starlette.testclient import TestClient

from yilian.auth.tokens import Keys, issue
from yilian.fhir.router import FhirRouter
from yilian.fhir.store.tables import audit_log
from yilian.kit.db import read_transaction

RESOURCES = [
    {"resourceType": "Organization", "id": "zju1", "name": "浙大一院"},
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "张", "given": ["三"]}],
     "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "11010519491231002X"}],
     "managingOrganization": {"reference": "Organization/zju1"}},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "王"}]},
    {"resourceType": "Observation", "id": "o1", "status": "final",
     "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
     "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": 72.50, "unit": "/min"}},
]

ACCEPTS: list[dict[str, str]] = [
    {},
    {"Accept": "application/fhir+json"},
    {"Accept": "application/json"},
    {"Accept": "*/*"},
    {"Accept": "application/fhir+json; fhirVersion=4.0"},
    {"Accept": "text/html, application/json;q=0.9"},
    {"Accept": "application/xml"},  # refused (406) by the general path
]


@pytest.fixture
def loaded(client: TestClient) -> TestClient:
    put_all(client, RESOURCES)
    assert client.delete("/fhir/Patient/p2").status_code in (200, 204)
    return client


def _token(client: TestClient, scope: str, **claims: Any) -> dict[str, str]:
    keys: Keys = client.app.state.keys  # type: ignore[attr-defined]
    return {"Authorization": "Bearer " + issue(keys, subject="reader", scope=scope,
                                               **claims).token}


def _answer(client: TestClient, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    response = client.get(path, headers=headers)
    kept = {name: response.headers.get(name) for name in
            ("etag", "last-modified", "content-type", "content-length", "www-authenticate")}
    return response.status_code, kept, response.content


def _entries_since(client: TestClient, seq: int) -> list[dict[str, Any]]:
    """The audit entries after `seq`, less their time."""
    client.app.state.audit.flush()  # type: ignore[attr-defined]
    with read_transaction(client.app.state.engine) as conn:  # type: ignore[attr-defined]
        rows = conn.execute(select(audit_log.c.entry).where(audit_log.c.seq > seq)
                            .order_by(audit_log.c.seq)).scalars().all()
    entries = [orjson.loads(row) for row in rows]
    for entry in entries:
        entry.pop("recorded")
    return entries


def _last_seq(client: TestClient) -> int:
    client.app.state.audit.flush()  # type: ignore[attr-defined]
    with read_transaction(client.app.state.engine) as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq.desc())
                                .limit(1)).scalar_one_or_none() or 0)


def _both_paths(client: TestClient, requests: list[tuple[str, dict[str, str]]]
                ) -> tuple[list[Any], list[Any]]:
    """The answers and audit entries of `requests`, with the quick path on, then off."""
    endpoint = client.app.fhir  # type: ignore[attr-defined]
    results = []
    for quick in (True, False):
        endpoint.quick_reads = quick
        seq = _last_seq(client)
        answers = [_answer(client, path, headers) for path, headers in requests]
        results.append((answers, _entries_since(client, seq)))
    endpoint.quick_reads = True
    (quick_answers, quick_entries), (general_answers, general_entries) = results
    assert quick_answers == general_answers
    assert quick_entries == general_entries
    return quick_answers, quick_entries


def test_plain_reads_answer_and_audit_as_the_general_path(loaded: TestClient) -> None:
    admin = {"Authorization": loaded.headers["authorization"]}
    requests = [(f"/fhir/{path}", {**admin, **accept})
                for path in ("Patient/p1", "Observation/o1", "Organization/zju1")
                for accept in ACCEPTS]
    answers, entries = _both_paths(loaded, requests)
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200, 200, 200, 200, 200, 406] * 3
    _, headers, body = answers[0]
    assert headers["etag"] == 'W/"1"' and headers["content-type"] == \
        "application/fhir+json; charset=utf-8"
    assert orjson.loads(body)["identifier"][0]["value"] == "11010519491231002X"
    assert answers[2][1]["content-type"] == "application/json; charset=utf-8"
    assert orjson.loads(answers[7][2])["valueQuantity"]["value"] == 72.5
    # One entry per answered read (a 406 is refused before the request is one).
    assert [entry["subtype"] for entry in entries] == ["read"] * 18
    assert entries[0]["path"] == "GET Patient/p1" and entries[0]["entities"] == ["Patient/p1"]
    assert entries[0]["outcome"] == 0 and entries[0]["actor"].startswith("user ")


def test_other_reads_are_left_to_the_general_path(loaded: TestClient) -> None:
    admin = {"Authorization": loaded.headers["authorization"]}
    etag = loaded.get("/fhir/Patient/p1").headers["etag"]
    requests = [
        ("/fhir/Patient/nobody", admin),  # 404
        ("/fhir/Patient/p2", admin),  # 410, deleted
        ("/fhir/Patient/bad_id!", admin),  # 400
        ("/fhir/Nonsense/p1", admin),  # 404, unknown type
        ("/fhir/Patient/p1", {**admin, "If-None-Match": etag}),  # 304
        ("/fhir/Patient/p1", {**admin, "If-Modified-Since": "Sun, 01 Jan 2090 00:00:00 GMT"}),
        ("/fhir/Patient/p1", {"Authorization": ""}),  # 401
        ("/fhir/Patient/p1", {"Authorization": "Bearer forged"}),  # 401, invalid token
        ("/fhir/Patient/p1", _token(loaded, "user/Observation.rs")),  # 403
        ("/fhir/Patient/p1", _token(loaded, "user/*.rs", masked=True)),
        ("/fhir/Patient/p1", _token(loaded, "patient/*.rs", patient="p1")),
        ("/fhir/Observation/o1", _token(loaded, "patient/*.rs", patient="p2")),  # not its own
        ("/fhir/Patient/p1/", admin),
        ("/fhir/Patient/p1?_pretty=true", admin),
    ]
    answers, entries = _both_paths(loaded, requests)
    assert [status for status, _, _ in answers] == [
        404, 410, 400, 404, 304, 304, 401, 401, 403, 200, 200, 404, 200, 200]
    masked = orjson.loads(answers[9][2])
    assert masked["identifier"][0]["value"] != "11010519491231002X"
    assert [entry["outcome"] for entry in entries] == [4] * 4 + [0] * 2 + [4] * 3 + \
        [0, 0, 4, 0, 0]


def test_a_plain_read_takes_the_quick_path(loaded: TestClient,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the point of the quick path: a plain read never reaches the router's reads."""

    def unexpected(*_: Any, **__: Any) -> None:
        raise AssertionError("the general path answered a plain read")

    monkeypatch.setattr(FhirRouter, "read_now", unexpected)
    monkeypatch.setattr(FhirRouter, "read_by_id", unexpected)
    assert loaded.get("/fhir/Patient/p1").status_code == 200
    # A conditional read is the general path's (whose failure here is logged, a 500).
    etag = loaded.get("/fhir/Patient/p1").headers["etag"]
    assert loaded.get("/fhir/Patient/p1", headers={"If-None-Match": etag}).status_code == 500


def test_a_read_after_an_update_or_delete_sees_it(loaded: TestClient) -> None:
    updated = {**RESOURCES[1], "name": [{"family": "李"}]}
    assert loaded.put("/fhir/Patient/p1", json=updated, headers=FHIR_JSON).status_code == 200
    read = loaded.get("/fhir/Patient/p1")
    assert read.headers["etag"] == 'W/"2"' and read.json()["name"][0]["family"] == "李"
    assert loaded.delete("/fhir/Patient/p1").status_code in (200, 204)
    assert loaded.get("/fhir/Patient/p1").status_code == 410
