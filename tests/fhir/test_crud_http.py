"""Create, read, vread, update, patch and delete over HTTP, per the R4 RESTful API."""

from __future__ import annotations

from typing import Any

from fhir_helpers import FHIR_JSON, identifier, issue_expressions, patient
from starlette.testclient import TestClient


def create(client: TestClient, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"/fhir/{body['resourceType']}", json=body,
                       headers={**FHIR_JSON, **headers})


def test_create_assigns_id_version_and_location(client: TestClient) -> None:
    response = create(client, patient(id="client-chosen"))
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "client-chosen"  # POST ignores the body's id
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == (
        f"http://testserver/fhir/Patient/{body['id']}/_history/1"
    )
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["Content-Type"].startswith("application/fhir+json")

    read = client.get(f"/fhir/Patient/{body['id']}")
    assert read.status_code == 200
    assert read.json() == body
    assert read.headers["ETag"] == 'W/"1"'


def test_plain_application_json_is_accepted(client: TestClient) -> None:
    response = client.post("/fhir/Patient", content=b'{"resourceType":"Patient"}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 201


def test_chinese_text_and_decimals_survive_unchanged(client: TestClient) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "血红蛋白"},
        "valueQuantity": {"value": 120.50, "unit": "g/L"},
    }
    raw = (
        b'{"resourceType":"Observation","status":"final","code":{"text":"\xe8\xa1\x80\xe7\xba'
        b'\xa2\xe8\x9b\x8b\xe7\x99\xbd"},"valueQuantity":{"value":120.50,"unit":"g/L"}}'
    )
    response = client.post("/fhir/Observation", content=raw, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    assert b'"value":120.50' in response.content
    read = client.get(f"/fhir/Observation/{response.json()['id']}")
    assert b'"value":120.50' in read.content
    assert read.json()["code"]["text"] == observation["code"]["text"]


def test_read_unknown_is_404_with_outcome(client: TestClient) -> None:
    response = client.get("/fhir/Patient/nobody")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "not-found"


def test_unknown_type_is_404(client: TestClient) -> None:
    assert client.get("/fhir/Patients/1").status_code == 404
    assert client.post("/fhir/Nonsense", json={"resourceType": "Nonsense"},
                       headers=FHIR_JSON).status_code == 404


def test_bad_id_is_400(client: TestClient) -> None:
    response = client.get("/fhir/Patient/bad_id!")
    assert response.status_code == 400
    assert "not a valid FHIR id" in response.json()["issue"][0]["diagnostics"]
    too_long = "a" * 65
    assert client.put(f"/fhir/Patient/{too_long}", json=patient(id=too_long),
                      headers=FHIR_JSON).status_code == 400


def test_update_as_create_then_update(client: TestClient) -> None:
    first = client.put("/fhir/Patient/zs-001", json=patient(id="zs-001"), headers=FHIR_JSON)
    assert first.status_code == 201
    assert first.headers["Location"].endswith("/Patient/zs-001/_history/1")
    changed = patient(id="zs-001", gender="female")
    second = client.put("/fhir/Patient/zs-001", json=changed, headers=FHIR_JSON)
    assert second.status_code == 200
    assert second.json()["meta"]["versionId"] == "2"
    assert second.json()["gender"] == "female"
    assert client.get("/fhir/Patient/zs-001/_history/1").json()["gender"] == "male"
    assert client.get("/fhir/Patient/zs-001/_history/2").json()["gender"] == "female"
    assert client.get("/fhir/Patient/zs-001/_history/3").status_code == 404
    assert client.get("/fhir/Patient/zs-001/_history/x").status_code == 404


def test_unchanged_update_makes_no_new_version(client: TestClient) -> None:
    client.put("/fhir/Patient/same", json=patient(id="same"), headers=FHIR_JSON)
    again = client.put("/fhir/Patient/same", json=patient(id="same"), headers=FHIR_JSON)
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "1"


def test_update_body_id_must_match_url(client: TestClient) -> None:
    response = client.put("/fhir/Patient/a", json=patient(id="b"), headers=FHIR_JSON)
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["Patient.id"]
    missing = client.put("/fhir/Patient/a", json=patient(), headers=FHIR_JSON)
    assert missing.status_code == 400


def test_body_type_must_match_url(client: TestClient) -> None:
    response = client.post("/fhir/Observation", json=patient(), headers=FHIR_JSON)
    assert response.status_code == 400
    assert "does not match" in response.json()["issue"][0]["diagnostics"]


def test_if_match_on_update(client: TestClient) -> None:
    client.put("/fhir/Patient/m1", json=patient(id="m1"), headers=FHIR_JSON)
    stale = client.put("/fhir/Patient/m1", json=patient(id="m1", gender="female"),
                       headers={**FHIR_JSON, "If-Match": 'W/"9"'})
    assert stale.status_code == 412
    fresh = client.put("/fhir/Patient/m1", json=patient(id="m1", gender="female"),
                       headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] == 'W/"2"'
    garbage = client.put("/fhir/Patient/m1", json=patient(id="m1"),
                         headers={**FHIR_JSON, "If-Match": "nonsense"})
    assert garbage.status_code == 400


def test_if_match_takes_a_list_of_tags_and_a_star(client: TestClient) -> None:
    """RFC 9110 §13.1.1: If-Match = "*" / #entity-tag."""
    client.put("/fhir/Patient/m2", json=patient(id="m2"), headers=FHIR_JSON)

    puts = iter(range(1, 99))

    def put(if_match: str, res_id: str = "m2") -> int:  # a change each time: a new version
        body = {**patient(id=res_id), "birthDate": f"19{next(puts):02d}-01-01"}
        return client.put(f"/fhir/Patient/{res_id}", json=body,
                          headers={**FHIR_JSON, "If-Match": if_match}).status_code

    assert put('W/"7", W/"1"') == 200
    assert put('W/"7", W/"1"') == 412  # now at 2
    assert put('W/"2",W/"7"') == 200
    assert put("*") == 200
    assert put("*", "m-new") == 412  # nothing current to match
    assert put('W/"3", nonsense') == 400
    assert client.delete("/fhir/Patient/m2", headers={"If-Match": "*"}).status_code == 204
    assert put("*") == 412  # deleted: nothing current


def test_if_none_match_and_if_modified_since_give_304(client: TestClient) -> None:
    created = client.put("/fhir/Patient/c1", json=patient(id="c1"), headers=FHIR_JSON)
    assert client.get("/fhir/Patient/c1", headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get("/fhir/Patient/c1", headers={"If-None-Match": 'W/"0"'}).status_code == 200
    modified = created.headers["Last-Modified"]
    assert client.get("/fhir/Patient/c1",
                      headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get("/fhir/Patient/c1", headers={
        "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200


def test_delete_then_read_is_gone_and_recreate(client: TestClient) -> None:
    client.put("/fhir/Patient/d1", json=patient(id="d1"), headers=FHIR_JSON)
    deleted = client.delete("/fhir/Patient/d1")
    assert deleted.status_code == 204
    assert deleted.headers["ETag"] == 'W/"2"'
    gone = client.get("/fhir/Patient/d1")
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert client.get("/fhir/Patient/d1/_history/1").status_code == 200
    assert client.get("/fhir/Patient/d1/_history/2").status_code == 410
    assert client.delete("/fhir/Patient/d1").status_code == 204  # idempotent
    assert client.delete("/fhir/Patient/never").status_code == 404
    again = client.put("/fhir/Patient/d1", json=patient(id="d1"), headers=FHIR_JSON)
    assert again.status_code == 201
    assert again.json()["meta"]["versionId"] == "3"


def test_delete_with_if_match(client: TestClient) -> None:
    client.put("/fhir/Patient/d2", json=patient(id="d2"), headers=FHIR_JSON)
    assert client.delete("/fhir/Patient/d2", headers={"If-Match": 'W/"5"'}).status_code == 412
    assert client.delete("/fhir/Patient/d2", headers={"If-Match": 'W/"1"'}).status_code == 204


def test_json_patch(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
    operations = [
        {"op": "test", "path": "/gender", "value": "male"},
        {"op": "replace", "path": "/gender", "value": "female"},
        {"op": "add", "path": "/name/0/given/-", "value": "丰"},
    ]
    response = client.patch("/fhir/Patient/p1", json=operations,
                            headers={"Content-Type": "application/json-patch+json",
                                     "If-Match": 'W/"1"'})
    assert response.status_code == 200, response.text
    assert response.json()["gender"] == "female"
    assert response.json()["name"][0]["given"] == ["三", "丰"]
    assert response.json()["meta"]["versionId"] == "2"


def test_conditional_patch(client: TestClient) -> None:
    """http.html#patch: conditional PATCH, as servers with conditional update SHOULD have:
    one match patched, several 412, none 404."""
    mrn = "http://hospital.example/mrn"
    for res_id, value in (("cp1", "CP-1"), ("cp2", "CP-2"), ("cp3", "CP-2")):
        client.put(f"/fhir/Patient/{res_id}", headers=FHIR_JSON,
                   json=patient(id=res_id, identifier=[{"system": mrn, "value": value}]))
    headers = {"Content-Type": "application/json-patch+json"}
    to_female = [{"op": "replace", "path": "/gender", "value": "female"}]

    def patch(value: str) -> Any:
        return client.patch(f"/fhir/Patient?identifier={mrn}|{value}", json=to_female,
                            headers=headers)

    patched = patch("CP-1")
    assert patched.status_code == 200, patched.text
    assert patched.json()["id"] == "cp1" and patched.json()["gender"] == "female"
    assert patch("CP-2").status_code == 412
    assert patch("nobody").status_code == 404
    assert [client.get(f"/fhir/Patient/{i}").json()["gender"] for i in ("cp2", "cp3")] \
        == ["male", "male"]


def test_json_patch_errors(client: TestClient) -> None:
    client.put("/fhir/Patient/p2", json=patient(id="p2"), headers=FHIR_JSON)
    patch_headers = {"Content-Type": "application/json-patch+json"}
    failed_test = client.patch("/fhir/Patient/p2", headers=patch_headers,
                               json=[{"op": "test", "path": "/gender", "value": "female"}])
    assert failed_test.status_code == 422
    invalid_result = client.patch("/fhir/Patient/p2", headers=patch_headers,
                                  json=[{"op": "replace", "path": "/gender", "value": "xyz"}])
    assert invalid_result.status_code == 422
    assert "Patient.gender" in issue_expressions(invalid_result.json())
    id_change = client.patch("/fhir/Patient/p2", headers=patch_headers,
                             json=[{"op": "replace", "path": "/id", "value": "other"}])
    assert id_change.status_code == 422
    not_a_list = client.patch("/fhir/Patient/p2", headers=patch_headers, json={"op": "x"})
    assert not_a_list.status_code == 400
    stale = client.patch("/fhir/Patient/p2", headers={**patch_headers, "If-Match": 'W/"7"'},
                         json=[{"op": "replace", "path": "/gender", "value": "female"}])
    assert stale.status_code == 412
    assert client.patch("/fhir/Patient/none", headers=patch_headers, json=[]).status_code == 404
    assert client.get("/fhir/Patient/p2").json()["meta"]["versionId"] == "1"


def test_prefer_return(client: TestClient) -> None:
    minimal = create(client, patient(), Prefer="return=minimal")
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert minimal.headers["Location"]
    outcome = create(client, patient(), Prefer="return=OperationOutcome")
    assert outcome.json()["resourceType"] == "OperationOutcome"
    representation = create(client, patient(), Prefer="return=representation")
    assert representation.json()["resourceType"] == "Patient"


def test_conditional_create(client: TestClient) -> None:
    body = patient(identifier=identifier("urn:oid:2.16.156.10011.1.2", "330102198005170011"))
    criteria = "identifier=urn:oid:2.16.156.10011.1.2|330102198005170011"
    first = create(client, body, **{"If-None-Exist": criteria})
    assert first.status_code == 201
    second = create(client, body, **{"If-None-Exist": criteria})
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    create(client, body)  # a second resource with the same identifier
    ambiguous = create(client, body, **{"If-None-Exist": criteria})
    assert ambiguous.status_code == 412
    unknown = create(client, body, **{"If-None-Exist": "nonsense=1"})
    assert unknown.status_code == 400


def test_conditional_update(client: TestClient) -> None:
    body = patient(identifier=identifier("http://hospital.example/mrn", "MRN-1"))
    created = client.put("/fhir/Patient?identifier=http://hospital.example/mrn|MRN-1",
                         json=body, headers=FHIR_JSON)
    assert created.status_code == 201
    new_id = created.json()["id"]
    updated = client.put("/fhir/Patient?identifier=http://hospital.example/mrn|MRN-1",
                         json={**body, "gender": "female"}, headers=FHIR_JSON)
    assert updated.status_code == 200
    assert updated.json()["id"] == new_id
    assert updated.json()["meta"]["versionId"] == "2"
    wrong_id = client.put("/fhir/Patient?identifier=http://hospital.example/mrn|MRN-1",
                          json={**body, "id": "other"}, headers=FHIR_JSON)
    assert wrong_id.status_code == 400


def test_conditional_delete(client: TestClient) -> None:
    body = patient(identifier=identifier("http://hospital.example/mrn", "MRN-9"))
    created = create(client, body).json()
    assert client.delete("/fhir/Patient?identifier=http://hospital.example/mrn|MRN-9"
                         ).status_code == 204
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 410
    assert client.delete("/fhir/Patient?identifier=http://hospital.example/mrn|none"
                         ).status_code == 204
    create(client, patient(identifier=identifier("s", "dup")))
    create(client, patient(identifier=identifier("s", "dup")))
    assert client.delete("/fhir/Patient?identifier=s|dup").status_code == 412


def test_method_not_allowed(client: TestClient) -> None:
    assert client.post("/fhir/Patient/abc", json=patient(), headers=FHIR_JSON
                       ).status_code == 405
    assert client.delete("/fhir/metadata").status_code == 405
    assert client.put("/fhir/Patient/_history", json={}, headers=FHIR_JSON).status_code == 405


def test_if_none_match_overrides_if_modified_since(client: TestClient) -> None:
    client.put("/fhir/Patient/c2", json=patient(id="c2"), headers=FHIR_JSON)
    response = client.get("/fhir/Patient/c2", headers={
        "If-None-Match": 'W/"99"', "If-Modified-Since": "Mon, 01 Jan 2999 00:00:00 GMT"})
    assert response.status_code == 200


def test_conditional_update_does_not_overwrite_an_unmatched_resource(client: TestClient) -> None:
    client.put("/fhir/Patient/other", json=patient(id="other"), headers=FHIR_JSON)
    response = client.put("/fhir/Patient?identifier=s|nobody",
                          json=patient(id="other", gender="female"), headers=FHIR_JSON)
    assert response.status_code == 409
    assert client.get("/fhir/Patient/other").json()["gender"] == "male"


def test_reads_survive_a_database_that_dropped_their_connections(client: TestClient) -> None:
    """On PostgreSQL reads by id run on pooled asynchronous connections: when the server
    ends them (a restart, an idle timeout), the next read opens a new one instead of
    failing. On SQLite there is no such pool and the reads simply work."""
    from sqlalchemy import text

    created = create(client, patient(family="Reconnect"))
    path = f"Patient/{created.json()['id']}"
    assert client.get(f"/fhir/{path}").status_code == 200
    pool = client.app.state.fhir.async_reader
    if pool is not None:
        pids = [c.info.backend_pid for c in pool._idle]  # the pool's own connections
        assert pids
        with client.app.state.engine.begin() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    for _ in range(3):
        answer = client.get(f"/fhir/{path}")
        assert answer.status_code == 200
        assert answer.json()["name"][0]["family"] == "Reconnect"


def test_a_decimal_written_as_a_long_integer_reads_back_as_written(client: TestClient) -> None:
    """A decimal may be written without a point, beyond 64 bits too (it was refused at
    storage, without a location); an integer element refuses such a number with its path."""
    digits = "123456789012345678901234567890"
    body = ('{"resourceType":"Observation","status":"final","code":{"text":"x"},'
            f'"valueQuantity":{{"value":{digits},"unit":"mg"}}}}')
    created = client.post("/fhir/Observation", content=body, headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    read = client.get(f"/fhir/Observation/{created.json()['id']}")
    assert f'"value":{digits}' in read.text
    pretty = client.get(f"/fhir/Observation/{created.json()['id']}?_pretty=true")
    assert pretty.status_code == 200 and f'"value": {digits}' in pretty.text
    twins = ('{"resourceType":"Patient","multipleBirthInteger":'
             f'{digits}}}')
    refused = client.post("/fhir/Patient", content=twins, headers=FHIR_JSON)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["Patient.multipleBirthInteger"]
    assert "outside the range" in refused.json()["issue"][0]["diagnostics"]
