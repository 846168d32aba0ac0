"""batch and transaction Bundles: atomicity, order, reference rewriting, conditional entries."""

from __future__ import annotations

import base64
from typing import Any

from fhir_helpers import FHIR_JSON, identifier, patient
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from yilian.fhir.store.tables import resource

MRN = "http://hospital.example/mrn"


def post_bundle(client: TestClient, bundle: dict[str, Any], **headers: str) -> Any:
    return client.post("/fhir", json=bundle, headers={**FHIR_JSON, **headers})


def tx(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_transaction_rewrites_urn_uuid_references(client: TestClient) -> None:
    bundle = tx(
        {
            "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
            "resource": patient(identifier=identifier(MRN, "T-1")),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "心率"},
                "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    response = post_bundle(client, bundle)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    patient_location = result["entry"][0]["response"]["location"]
    observation_location = result["entry"][1]["response"]["location"]
    patient_ref = "/".join(patient_location.split("/")[:2])
    observation = client.get("/fhir/" + "/".join(observation_location.split("/")[:2])).json()
    assert observation["subject"]["reference"] == patient_ref
    assert result["entry"][0]["response"]["etag"] == 'W/"1"'


def test_failed_transaction_writes_nothing_and_names_the_entry(
    client: TestClient, engine: Engine
) -> None:
    bundle = tx(
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(gender="nonsense"), "request": {"method": "POST", "url": "Patient"}},
    )
    response = post_bundle(client, bundle)
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.gender"]
    assert "Bundle.entry[1]" in issue["diagnostics"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(resource)).scalar_one() == 0


def test_transaction_processing_order(client: TestClient) -> None:
    client.put("/fhir/Patient/gone", json=patient(id="gone"), headers=FHIR_JSON)
    client.put("/fhir/Patient/kept", json=patient(id="kept"), headers=FHIR_JSON)
    # Written in reverse order: GET first, then PUT, POST, DELETE; processed DELETE first.
    bundle = tx(
        {"request": {"method": "GET", "url": "Patient/kept"}},
        {"resource": patient(id="kept", gender="female"),
         "request": {"method": "PUT", "url": "Patient/kept"}},
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "DELETE", "url": "Patient/gone"}},
    )
    result = post_bundle(client, bundle).json()
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["200 OK", "200 OK", "201 Created", "204 No Content"]
    # The GET ran last, so it sees the PUT of the same transaction.
    assert result["entry"][0]["resource"]["gender"] == "female"
    assert client.get("/fhir/Patient/gone").status_code == 410


def test_transaction_if_none_exist_and_conditional_references(client: TestClient) -> None:
    existing = client.post("/fhir/Patient", headers=FHIR_JSON,
                           json=patient(identifier=identifier(MRN, "C-1"))).json()
    bundle = tx(
        {
            "fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
            "resource": patient(identifier=identifier(MRN, "C-1")),
            "request": {"method": "POST", "url": "Patient",
                        "ifNoneExist": f"identifier={MRN}|C-1"},
        },
        {
            "resource": {
                "resourceType": "Encounter", "status": "in-progress",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                          "code": "IMP"},
                "subject": {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
        {
            "resource": {
                "resourceType": "Observation", "status": "final", "code": {"text": "体重"},
                "subject": {"reference": f"Patient?identifier={MRN}|C-1"},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    result = post_bundle(client, bundle, Prefer="return=representation").json()
    assert result["entry"][0]["response"]["status"] == "200 OK"
    assert result["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert result["entry"][2]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    patients = client.get(f"/fhir/Patient?identifier={MRN}|C-1").json()
    assert len(patients["entry"]) == 1


def test_conditional_reference_must_match_exactly_one(client: TestClient) -> None:
    bundle = tx({
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "subject": {"reference": f"Patient?identifier={MRN}|nobody"}},
        "request": {"method": "POST", "url": "Observation"},
    })
    response = post_bundle(client, bundle)
    assert response.status_code == 412
    assert response.json()["issue"][0]["expression"] == [
        "Bundle.entry[0].resource.subject.reference"
    ]


def test_unresolved_urn_uuid_is_an_error(client: TestClient) -> None:
    bundle = tx({
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                     "subject": {"reference": "urn:uuid:a5ad3b3e-5d1a-4c2e-9b6b-8e4d3b1e1d11"}},
        "request": {"method": "POST", "url": "Observation"},
    })
    assert post_bundle(client, bundle).status_code == 400


def test_same_resource_twice_is_refused(client: TestClient) -> None:
    bundle = tx(
        {"resource": patient(id="x1"), "request": {"method": "PUT", "url": "Patient/x1"}},
        {"request": {"method": "DELETE", "url": "Patient/x1"}},
    )
    assert post_bundle(client, bundle).status_code == 400


def test_a_full_url_twice_is_refused(client: TestClient) -> None:
    """bdl-7: which of the two would a reference to it mean?"""
    twice, once = ("urn:uuid:0c5e3f1a-52b3-4b7e-8d8e-5f0f1c2d3e4f",
                   "urn:uuid:1c5e3f1a-52b3-4b7e-8d8e-5f0f1c2d3e4f")
    post = {"method": "POST", "url": "Patient"}
    for kind in ("transaction", "batch"):
        bundle = tx(*({"fullUrl": url, "resource": patient(), "request": post}
                      for url in (twice, once, twice)), kind=kind)
        response = post_bundle(client, bundle)
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["Bundle.entry[2].fullUrl"]
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 0


def test_transaction_conditional_update_and_patch(client: TestClient) -> None:
    client.put("/fhir/Patient/pp", json=patient(id="pp"), headers=FHIR_JSON)
    patch = base64.b64encode(b'[{"op":"replace","path":"/gender","value":"female"}]').decode()
    bundle = tx(
        {"resource": patient(identifier=identifier(MRN, "U-1")),
         "request": {"method": "PUT", "url": f"Patient?identifier={MRN}|U-1"}},
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                      "data": patch},
         "request": {"method": "PATCH", "url": "Patient/pp"}},
    )
    result = post_bundle(client, bundle).json()
    assert [e["response"]["status"] for e in result["entry"]] == ["201 Created", "200 OK"]
    assert client.get("/fhir/Patient/pp").json()["gender"] == "female"


def test_a_conditional_update_in_a_transaction_does_as_it_does_alone(
        client: TestClient) -> None:
    """Matching nothing, it does not overwrite the resource its body names (409), and
    matching one, its body must not name another (400): as a PUT to Type?criteria."""
    client.put("/fhir/Patient/cu", json=patient(id="cu", identifier=identifier(MRN, "CU")),
               headers=FHIR_JSON)
    for criteria, body_id, status in ((f"{MRN}|nobody", "cu", 409), (f"{MRN}|CU", "other", 400)):
        body = patient(id=body_id, gender="female")
        alone = client.put(f"/fhir/Patient?identifier={criteria}", json=body, headers=FHIR_JSON)
        inside = post_bundle(client, tx(
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": body, "request": {"method": "PUT",
                                           "url": f"Patient?identifier={criteria}"}}))
        assert (alone.status_code, inside.status_code) == (status, status), inside.text
        assert inside.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.id"]
    assert client.get("/fhir/Patient/cu").json()["meta"]["versionId"] == "1"
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 1


def test_transaction_if_match_failure_rolls_back(client: TestClient) -> None:
    client.put("/fhir/Patient/im", json=patient(id="im"), headers=FHIR_JSON)
    bundle = tx(
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(id="im", gender="female"),
         "request": {"method": "PUT", "url": "Patient/im", "ifMatch": 'W/"4"'}},
    )
    response = post_bundle(client, bundle)
    assert response.status_code == 412
    assert client.get("/fhir/Patient/im").json()["gender"] == "male"
    assert len(client.get("/fhir/Patient/_history").json()["entry"]) == 1


def test_batch_entries_are_independent(client: TestClient) -> None:
    bundle = tx(
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": patient(gender="bad"), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/none"}},
        kind="batch",
    )
    result = post_bundle(client, bundle).json()
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity", "404 Not Found"]
    assert result["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_bundle_shape_errors(client: TestClient) -> None:
    assert post_bundle(client, {"resourceType": "Bundle", "type": "collection"}
                       ).status_code == 400
    assert post_bundle(client, patient()).status_code == 400
    missing_request = tx({"resource": patient()})
    response = post_bundle(client, missing_request)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]
    bad_method = tx({"resource": patient(), "request": {"method": "FETCH", "url": "Patient"}})
    assert post_bundle(client, bad_method).status_code == 400
    empty = post_bundle(client, tx())
    assert empty.status_code == 200
    assert "entry" not in empty.json()


def test_transaction_rewrites_uri_elements_and_narrative_links(client: TestClient) -> None:
    patient_url = "urn:uuid:4f6c4d0e-6a6b-4d4c-9a57-3a0e2f3b9c11"
    bundle = tx(
        {"fullUrl": patient_url, "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {
                "resourceType": "Observation", "status": "final", "code": {"text": "血压"},
                "text": {"status": "generated",
                         "div": f'<div xmlns="http://www.w3.org/1999/xhtml">'
                                f'<a href="{patient_url}">患者</a></div>'},
                "subject": {"reference": patient_url},
                "extension": [{"url": "http://example.org/source", "valueUri": patient_url}],
            },
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    result = post_bundle(client, bundle, Prefer="return=representation").json()
    local = "/".join(result["entry"][0]["response"]["location"].split("/")[:2])
    observation = result["entry"][1]["resource"]
    assert observation["subject"]["reference"] == local
    assert observation["extension"][0]["valueUri"] == local
    assert f'href="{local}"' in observation["text"]["div"]


def test_transaction_leaves_canonicals_and_other_strings_that_equal_a_full_url(
        client: TestClient) -> None:
    """http.html#trules: "Elements of type canonical are not replaced"; nor strings of
    other types (an identifier's value); uri-typed elements are, in contained resources too."""
    questionnaire = "urn:uuid:33333333-3333-4333-8333-333333333333"
    person = "urn:uuid:44444444-4444-4444-8444-444444444444"
    bundle = tx(
        {"fullUrl": questionnaire, "request": {"method": "POST", "url": "Questionnaire"},
         "resource": {"resourceType": "Questionnaire", "status": "active"}},
        {"fullUrl": person, "request": {"method": "POST", "url": "Patient"},
         "resource": patient()},
        {"request": {"method": "POST", "url": "QuestionnaireResponse"}, "resource": {
            "resourceType": "QuestionnaireResponse", "status": "completed",
            "meta": {"profile": [questionnaire]},
            "extension": [{"url": "http://example.org/provenance",
                           "valueReference": {"reference": "#p"}}],
            "questionnaire": questionnaire,
            "identifier": {"system": "urn:ietf:rfc:3986", "value": person},
            "contained": [{"resourceType": "Provenance", "id": "p",
                           "recorded": "2026-11-25T08:00:00+08:00", "policy": [person],
                           "target": [{"reference": person}],
                           "agent": [{"who": {"reference": person}}]}],
            "subject": {"reference": person}}},
    )
    result = post_bundle(client, bundle, Prefer="return=representation")
    assert result.status_code == 200, result.text
    local = "/".join(result.json()["entry"][1]["response"]["location"].split("/")[:2])
    answer = result.json()["entry"][2]["resource"]
    assert answer["meta"]["profile"] == [questionnaire]
    assert answer["questionnaire"] == questionnaire
    assert answer["identifier"]["value"] == person
    assert answer["subject"]["reference"] == local
    assert answer["contained"][0]["policy"] == [local]  # uri: rewritten
    assert answer["contained"][0]["target"] == [{"reference": local}]


def test_relative_and_versioned_references_to_entries_with_restful_full_urls(
        client: TestClient) -> None:
    """bundle.html#references: a relative reference is read against the referring entry's
    RESTful base; a version-specific one matches by its versionless URL and stays
    version-specific (http.html#trules)."""
    other = "http://other.example/fhir"
    bundle = tx(
        {"fullUrl": f"{other}/Patient/p1", "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": f"{other}/Observation/o1", "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "Patient/p1"},
                      "focus": [{"reference": f"{other}/Patient/p1/_history/4"},
                                {"reference": "Patient/p1/_history/4"}]}},
        {"fullUrl": "urn:uuid:5d0c8c7e-1b7a-4f0e-9d43-0a3c2b1d4e5f",
         "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "y"},
                      "subject": {"reference": "Patient/p1"}}},
    )
    result = post_bundle(client, bundle, Prefer="return=representation")
    assert result.status_code == 200, result.text
    local = "/".join(result.json()["entry"][0]["response"]["location"].split("/")[:2])
    observation = result.json()["entry"][1]["resource"]
    assert observation["subject"] == {"reference": local}
    assert observation["focus"] == [{"reference": f"{local}/_history/1"}] * 2
    # An entry with a urn fullUrl reads Patient/p1 as this server's: left as written.
    assert result.json()["entry"][2]["resource"]["subject"] == {"reference": "Patient/p1"}


def test_a_head_entry_answers_as_a_get_without_the_resource(client: TestClient) -> None:
    """http.html#head: the same response as a GET, but with no body."""
    client.put("/fhir/Patient/hd", json=patient(id="hd"), headers=FHIR_JSON)
    for kind in ("batch", "transaction"):
        result = post_bundle(client, tx(
            {"request": {"method": "HEAD", "url": "Patient/hd"}},
            {"request": {"method": "GET", "url": "Patient/hd"}}, kind=kind)).json()
        head, get = result["entry"]
        assert head["response"] == get["response"]
        assert head["response"]["etag"] == 'W/"1"' and "resource" not in head
        assert get["resource"]["id"] == "hd"


def test_a_conditional_reference_means_the_conditional_create_or_update_of_its_criteria(
        client: TestClient) -> None:
    """A conditional reference with the criteria of the transaction's own conditional
    create or update is to that resource, also when the transaction creates it."""
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    bundle = tx(
        {"resource": patient(identifier=identifier(MRN, "NEW-1")),
         "request": {"method": "POST", "url": "Patient",
                     "ifNoneExist": f"identifier={MRN}|NEW-1&gender=male"}},
        {"resource": patient(identifier=identifier(MRN, "NEW-2")),
         "request": {"method": "PUT", "url": f"Patient?identifier={MRN}|NEW-2"}},
        {"resource": {**observation, "subject": {
            "reference": f"Patient?gender=male&identifier={MRN}|NEW-1"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": {**observation, "subject": {"reference": f"Patient?identifier={MRN}|NEW-2"}},
         "request": {"method": "POST", "url": "Observation"}},
    )
    result = post_bundle(client, bundle, Prefer="return=representation")
    assert result.status_code == 200, result.text
    entries = result.json()["entry"]
    created = ["/".join(e["response"]["location"].split("/")[:2]) for e in entries[:2]]
    assert [e["resource"]["subject"]["reference"] for e in entries[2:]] == created
    # Once they exist, the same Bundle finds them: nothing new, the same references.
    again = post_bundle(client, bundle, Prefer="return=representation").json()["entry"]
    assert [e["resource"]["subject"]["reference"] for e in again[2:]] == created
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 2


def test_the_bundle_itself_is_validated(client: TestClient) -> None:
    """The batch or transaction Bundle is an R4 Bundle too, not only its entries' resources."""
    def entry(**extra: Any) -> dict[str, Any]:
        return {"resource": patient(), "request": {"method": "POST", "url": "Patient"}, **extra}

    for kind in ("transaction", "batch"):
        for bundle, where in (
            ({**tx(entry(), kind=kind), "foo": 1}, "Bundle.foo"),
            (tx(entry(bogus=1), kind=kind), "Bundle.entry[0].bogus"),
            ({**tx(entry(), kind=kind), "timestamp": "2020-02-30T00:00:00Z"},
             "Bundle.timestamp"),
            (tx(entry(fullUrl="has space"), kind=kind), "Bundle.entry[0].fullUrl"),
            (tx(entry(search={"mode": "bogus"}), kind=kind), "Bundle.entry[0].search.mode"),
        ):
            response = post_bundle(client, bundle)
            assert response.status_code == 422, (kind, where, response.text)
            assert where in [e for i in response.json()["issue"] for e in i["expression"]]
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 0


def test_prefer_operation_outcome_answers_in_each_entrys_response(client: TestClient) -> None:
    """Bundle.entry.response.outcome: "hints and warnings produced as part of processing this
    entry"; entry.resource stays for resources."""
    for kind in ("transaction", "batch"):
        result = post_bundle(client, tx(
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            kind=kind), Prefer="return=OperationOutcome").json()
        entry = result["entry"][0]
        assert "resource" not in entry, kind
        assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert entry["response"]["status"] == "201 Created"


def test_a_batch_entry_referring_to_another_entry_fails_alone(client: TestClient) -> None:
    """http.html#brules: batch entries referring to each other are non-conformant, and
    servers SHOULD say so: stored, the reference would point at nothing."""
    person = "urn:uuid:7c1f3a2b-9d4e-4f5a-8b6c-0d1e2f3a4b5c"
    result = post_bundle(client, tx(
        {"fullUrl": person, "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": person}},
         "request": {"method": "POST", "url": "Observation"}}, kind="batch")).json()
    first, second = result["entry"]
    assert first["response"]["status"] == "201 Created"
    assert second["response"]["status"].startswith("400")
    assert second["response"]["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[1].resource.subject.reference"]
    assert client.get("/fhir/Observation?_summary=count").json()["total"] == 0
