"""Bad input of every kind gets a 4xx OperationOutcome with the fault's location, never 500,
and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import FHIR_JSON, authorized, issue_expressions, patient
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from yilian.fhir.store.tables import resource


def count_resources(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(resource)).scalar_one())


def test_malformed_json(client: TestClient, engine: Engine) -> None:
    response = client.post("/fhir/Patient", content=b'{"resourceType": "Patient",',
                           headers=FHIR_JSON)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["issue"][0]["diagnostics"]
    assert count_resources(engine) == 0


def test_json_that_is_not_an_object(client: TestClient) -> None:
    assert client.post("/fhir/Patient", content=b"[1, 2]", headers=FHIR_JSON).status_code == 400
    assert client.post("/fhir/Patient", content=b'"x"', headers=FHIR_JSON).status_code == 400
    assert client.post("/fhir/Patient", content=b"NaN", headers=FHIR_JSON).status_code == 400


def test_wrong_content_type(client: TestClient) -> None:
    response = client.post("/fhir/Patient", content=b"<Patient/>",
                           headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 415
    assert client.post("/fhir/Patient", content=b"{}").status_code == 415


def test_xml_is_not_acceptable(client: TestClient) -> None:
    assert client.get("/fhir/metadata?_format=xml").status_code == 406
    assert client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}
                      ).status_code == 406


@pytest.mark.parametrize(("accept", "status"), [
    ("application/fhir+turtle", 406), ("text/turtle", 406), ("image/png", 406),
    ("application/fhir+json;q=0, application/fhir+xml", 406),
    ("application/fhir+xml;q=0.9, application/json;q=0.5", 200),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200),  # a browser
    ("application/*", 200), ("application/json+fhir", 200),
    ("application/fhir+json; fhirVersion=4.0", 200),
    ("application/fhir+json; fhirVersion=3.0", 406),  # http.html#version-parameter
])
def test_accept_must_admit_json(client: TestClient, accept: str, status: int) -> None:
    """http.html#mime-type: 406 when Accept asks only for formats the server lacks."""
    answer = client.get("/fhir/metadata", headers={"Accept": accept})
    assert answer.status_code == status
    if status == 406:
        assert answer.json()["resourceType"] == "OperationOutcome"


def test_format_with_an_unescaped_plus_is_json(client: TestClient) -> None:
    """The specification writes _format=application/fhir+json; unescaped, the "+" is a
    space in a query string."""
    for value, status in (("application/fhir+json", 200), ("application/json+fhir", 200),
                          ("application/fhir+xml", 406)):
        assert client.get(f"/fhir/metadata?_format={value}").status_code == status


def test_empty_body(client: TestClient) -> None:
    assert client.post("/fhir/Patient", content=b"", headers=FHIR_JSON).status_code == 400


def test_oversized_body(database_url: str) -> None:
    from yilian.api.app import create_app
    from yilian.config import Settings

    app = create_app(Settings(database_url=database_url, max_body_bytes=1000))
    with TestClient(app) as small:
        authorized(small)
        big = patient(text={"status": "generated",
                            "div": '<div xmlns="http://www.w3.org/1999/xhtml">'
                                   + "x" * 2000 + "</div>"})
        response = small.post("/fhir/Patient", json=big, headers=FHIR_JSON)
        assert response.status_code == 413
        assert response.json()["issue"][0]["code"] == "too-costly"
    app.state.engine.dispose()


def test_invalid_resource_is_422_with_paths(client: TestClient, engine: Engine) -> None:
    body = patient(gender="xyz", birthDate="2023-02-30", active="yes")
    body["foo"] = 1
    response = client.post("/fhir/Patient", json=body, headers=FHIR_JSON)
    assert response.status_code == 422
    paths = issue_expressions(response.json())
    assert "Patient.gender" in paths
    assert "Patient.birthDate" in paths
    assert "Patient.active" in paths
    assert "Patient.foo" in paths
    assert count_resources(engine) == 0


def test_invalid_update_writes_nothing(client: TestClient) -> None:
    client.put("/fhir/Patient/v1", json=patient(id="v1"), headers=FHIR_JSON)
    bad = client.put("/fhir/Patient/v1", json=patient(id="v1", gender="bogus"),
                     headers=FHIR_JSON)
    assert bad.status_code == 422
    assert client.get("/fhir/Patient/v1").json()["meta"]["versionId"] == "1"


def test_missing_resource_type(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json={"name": [{"family": "王"}]},
                           headers=FHIR_JSON)
    assert response.status_code == 400


def test_unknown_path(client: TestClient) -> None:
    assert client.get("/fhir/Patient/1/_history/1/extra").status_code == 404
    assert client.get("/fhir/Patient/1/nothing").status_code == 404


def test_bad_history_parameters(client: TestClient) -> None:
    assert client.get("/fhir/_history?_since=yesterday").status_code == 400
    assert client.get("/fhir/_history?_count=many").status_code == 400
    assert client.get("/fhir/_history?_cursor=@@@").status_code == 400
    assert client.get("/fhir/_history?color=red").status_code == 400


def test_conditional_criteria_must_filter(client: TestClient) -> None:
    client.put("/fhir/Patient/keep", json=patient(id="keep"), headers=FHIR_JSON)
    assert client.delete("/fhir/Patient?_count=5").status_code == 400
    assert client.put("/fhir/Patient?_sort=x", json=patient(), headers=FHIR_JSON
                      ).status_code == 400
    created = client.post("/fhir/Patient", json=patient(),
                          headers={**FHIR_JSON, "If-None-Exist": "_count=1"})
    assert created.status_code == 400
    assert client.get("/fhir/Patient/keep").status_code == 200


def test_numbers_that_are_not_plain_digits(client: TestClient) -> None:
    client.put("/fhir/Patient/n1", json=patient(id="n1"), headers=FHIR_JSON)
    assert client.get("/fhir/Patient/n1/_history/99999999999999999999999").status_code == 404
    assert client.get("/fhir/Patient/n1/_history/²").status_code == 404
    assert client.get("/fhir/_history?_count=²").status_code == 400
    assert client.get("/fhir/Patient?_cursor=99999999999999999999999").status_code == 400
    empty = client.get("/fhir/_history?_count=0")
    assert empty.status_code == 200
    assert "entry" not in empty.json()


def test_text_that_cannot_be_stored(client: TestClient) -> None:
    surrogate = b'{"resourceType":"Patient","name":[{"family":"\\ud800"}]}'
    assert client.post("/fhir/Patient", content=surrogate, headers=FHIR_JSON
                       ).status_code == 400
    nul = b'{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}'
    assert client.post("/fhir/Patient", content=nul, headers=FHIR_JSON).status_code == 400


def test_deeply_nested_json(client: TestClient) -> None:
    deep = b'{"resourceType":"Patient","extension":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post("/fhir/Patient", content=deep, headers=FHIR_JSON)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(("asked", "answered"), [
    ({}, "application/fhir+json"),
    ({"headers": {"Accept": "application/json"}}, "application/json"),
    ({"headers": {"Accept": "application/fhir+json, application/json;q=0.9"}},
     "application/fhir+json"),
    ({"params": {"_format": "application/json"}}, "application/json"),
    ({"params": {"_format": "json"}}, "application/fhir+json"),
])
def test_a_generic_json_request_gets_generic_json(client: TestClient, asked: dict[str, Any],
                                                  answered: str) -> None:
    """http.html#mime-type: for a generic mime type asked for, "the server SHOULD respond
    with the requested mime type"."""
    client.put("/fhir/Patient/mt", json=patient(id="mt"), headers=FHIR_JSON)
    for path in ("/fhir/Patient/mt", "/fhir/Patient?_id=mt"):
        answer = client.get(path, **asked)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == f"{answered}; charset=utf-8"


def test_a_narrative_with_a_script_is_refused(client: TestClient) -> None:
    """txt-1: a narrative of basic formatting only; other systems show it to people."""
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script>张三</div>'
    answer = client.post("/fhir/Patient", headers=FHIR_JSON,
                         json={**patient(), "text": {"status": "generated", "div": div}})
    assert answer.status_code == 422
    assert issue_expressions(answer.json()) == ["Patient.text.div"]
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 0
