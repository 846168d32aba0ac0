"""References to this server's resources and to other servers', on SQLite and PostgreSQL.

R4 search §3.1.1.4.10: "A relative reference resolving to the same value as a specified
absolute URL, or vice versa, qualifies as a match": an absolute reference under this
server's base is one of its own resources; under any other base it is another server's,
whose Patient/p1 is not this one's, for searches, chains, includes, `_has`, compartments and
access control alike.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fhir_helpers import FHIR_JSON, put_all
from starlette.testclient import TestClient

BASE = "http://testserver/fhir"  # the tests' server (conftest's settings)
ELSEWHERE = "http://elsewhere.org/fhir"


def _observation(obs_id: str, subject: str) -> dict[str, object]:
    return {"resourceType": "Observation", "id": obs_id, "status": "final",
            "code": {"text": "pulse"}, "subject": {"reference": subject}}


def _ids(client: TestClient, query: str, mode: str = "match") -> list[str]:
    answer = client.get(f"/fhir/{query}")
    assert answer.status_code == 200, answer.text
    return sorted(e["resource"]["id"] for e in answer.json().get("entry", [])
                  if e["search"]["mode"] == mode)


def test_another_servers_patient_is_not_this_ones(client: TestClient) -> None:
    put_all(client, [
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "Alpha"}]},
        _observation("relative", "Patient/p1"),
        _observation("absolute", f"{BASE}/Patient/p1"),
        _observation("remote", f"{ELSEWHERE}/Patient/p1"),
    ])
    ours = ["absolute", "relative"]
    assert _ids(client, "Observation?subject=Patient/p1") == ours
    assert _ids(client, f"Observation?subject={BASE}/Patient/p1") == ours
    assert _ids(client, "Observation?subject=p1") == ours
    assert _ids(client, f"Observation?subject={ELSEWHERE}/Patient/p1") == ["remote"]
    assert _ids(client, "Observation?subject:Patient.name=alpha") == ours
    assert _ids(client, "Observation?patient=p1") == ours
    assert _ids(client, "Patient?_id=p1&_revinclude=Observation:subject", "include") == ours
    assert _ids(client, "Observation?_id=remote&_include=Observation:subject",
                "include") == []
    assert _ids(client, "Observation?_id=absolute&_include=Observation:subject",
                "include") == ["p1"]
    assert _ids(client, "Patient?_has:Observation:subject:_id=remote") == []
    assert _ids(client, "Patient?_has:Observation:subject:_id=absolute") == ["p1"]
    assert _ids(client, "Patient/p1/Observation") == ours


def test_reindexing_keeps_the_distinction(client: TestClient, database_url: str) -> None:
    from typer.testing import CliRunner

    from yilian.cli.main import app

    put_all(client, [_observation("remote", f"{ELSEWHERE}/Patient/p1"),
                     _observation("relative", "Patient/p1")])
    result = CliRunner().invoke(app, ["search", "reindex", "--db", database_url],
                                env={"YILIAN_BASE_URL": BASE})
    assert result.exit_code == 0, result.output
    assert _ids(client, "Observation?subject=Patient/p1") == ["relative"]
    created = client.post("/fhir/Observation", json=_observation("x", f"{ELSEWHERE}/Patient/p1"),
                          headers=FHIR_JSON)
    assert created.status_code == 201
    assert _ids(client, "Observation?subject=Patient/p1") == ["relative"]


def _by_identifier(obs_id: str, element: str, reference: dict[str, object]
                   ) -> dict[str, object]:
    return {"resourceType": "Observation", "id": obs_id, "status": "final",
            "code": {"text": "pulse"}, element: reference}


RESIDENT = "urn:oid:1.2.156.112604.1.2.1"  # resident ID numbers (an illustrative system)


def test_identifier_modifier_searches_the_references_identifier(client: TestClient) -> None:
    """R4 search §3.1.1.4.10 `:identifier`: Reference.identifier, a token, whether or not
    the reference also has a literal reference; not the target resource's identifiers."""
    put_all(client, [
        {"resourceType": "Patient", "id": "p1", "identifier": [{"system": RESIDENT,
                                                                 "value": "330102"}]},
        _by_identifier("logical", "subject", {"identifier": {"system": RESIDENT,
                                                             "value": "330102"},
                                              "type": "Patient"}),
        _by_identifier("both", "subject", {"reference": "Patient/p1", "identifier": {
            "system": RESIDENT, "value": "330102"}}),
        _by_identifier("other", "subject", {"identifier": {"system": "urn:other",
                                                           "value": "330102"}}),
        _by_identifier("literal", "subject", {"reference": "Patient/p1"}),
        _by_identifier("performer", "performer", [{"identifier": {"system": RESIDENT,
                                                                  "value": "330102"}}]),
    ])
    assert _ids(client, f"Observation?subject:identifier={RESIDENT}|330102") == [
        "both", "logical"]
    assert _ids(client, "Observation?subject:identifier=330102") == ["both", "logical", "other"]
    assert _ids(client, "Observation?subject:identifier=|330102") == []
    assert _ids(client, f"Observation?subject:identifier={RESIDENT}|") == ["both", "logical"]
    assert _ids(client, f"Observation?performer:identifier={RESIDENT}|330102") == ["performer"]
    # `patient` is `subject.where(resolve() is Patient)`: the reference's type says so.
    assert _ids(client, f"Observation?patient:identifier={RESIDENT}|330102") == [
        "both", "logical"]
    assert _ids(client, f"Observation?subject:identifier={RESIDENT}|330102"
                        "&subject=Patient/p1") == ["both"]
    # The self link says what was applied, the modifier included.
    answer = client.get(f"/fhir/Observation?subject:identifier={RESIDENT}|330102")
    self_link = next(link["url"] for link in answer.json()["link"] if link["relation"] == "self")
    assert ("subject:identifier", f"{RESIDENT}|330102") in parse_qsl(urlsplit(self_link).query)


def test_a_reference_by_identifier_alone_is_not_missing(client: TestClient) -> None:
    put_all(client, [
        _by_identifier("logical", "subject", {"identifier": {"system": RESIDENT,
                                                             "value": "330102"}}),
        _by_identifier("literal", "subject", {"reference": "Patient/p1"}),
        _by_identifier("display", "subject", {"display": "Zhang San"}),
        {"resourceType": "Observation", "id": "none", "status": "final",
         "code": {"text": "pulse"}},
    ])
    assert _ids(client, "Observation?subject:missing=false") == ["literal", "logical"]
    # A display alone is no value any search can match (as in HAPI, whose rows are the same).
    assert _ids(client, "Observation?subject:missing=true") == ["display", "none"]


def test_identifier_modifier_is_refused_where_it_does_not_apply(client: TestClient) -> None:
    strict = {"Prefer": "handling=strict"}
    for query in ("Observation?code:identifier=x", "Observation?subject:identifier:not=x",
                  # Bundle.entry[0].resource and a canonical: no Reference to have one
                  "Bundle?composition:identifier=x", "PlanDefinition?definition:identifier=x"):
        answer = client.get(f"/fhir/{query}", headers=strict)
        assert answer.status_code == 400, (query, answer.text)


def _refusal(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    issue: dict[str, Any] = answer.json()["issue"][0]
    return issue


def test_a_bare_id_that_names_several_types_is_refused(client: TestClient) -> None:
    """`subject=x23` when the Observations found point at Patient/x23 and at Group/x23: two
    resources, which the search would mix; refused, saying how to name one (R4 search,
    reference parameters: SHOULD)."""
    put_all(client, [
        {"resourceType": "Patient", "id": "x23", "name": [{"family": "Alpha"}]},
        {"resourceType": "Group", "id": "x23", "type": "person", "actual": True},
        _observation("of-patient", "Patient/x23"),
    ])
    # Group/x23 exists, but no Observation points at it: nothing would be mixed.
    assert _ids(client, "Observation?subject=x23") == ["of-patient"]
    put_all(client, [_observation("of-group", "Group/x23"),
                     _observation("of-other", "Patient/p9")])
    for query in ("Observation?subject=x23", "Observation?subject=p9,x23",
                  "Observation?subject=x23&status=final"):
        issue = _refusal(client.get(f"/fhir/{query}"))
        assert issue["expression"] == ["subject"], query
        assert issue["diagnostics"] == (
            "[YL-2063] 'x23' in subject names resources of several types (Group, Patient): "
            "say which, as subject=Group/x23 or subject:Group=x23")
    # Named by type, or through a parameter with one target type, or where the other
    # criteria leave one type: answered.
    assert _ids(client, "Observation?subject=Patient/x23") == ["of-patient"]
    assert _ids(client, "Observation?subject:Group=x23") == ["of-group"]
    assert _ids(client, "Observation?patient=x23") == ["of-patient"]
    assert _ids(client, "Observation?subject=x23&_id=of-group,of-other") == ["of-group"]
    assert _ids(client, "Observation?subject=p9") == ["of-other"]
    assert _ids(client, "Patient/x23/Observation?subject=x23") == ["of-patient"]
    # Conditional criteria are searches too: nothing is written.
    answer = client.post("/fhir/Observation", json=_observation("new", "Patient/x23"),
                         headers={**FHIR_JSON, "If-None-Exist": "subject=x23"})
    assert _refusal(answer)["expression"] == ["subject"]
    assert _ids(client, "Observation?_id=new") == []
