"""Fuzzing /fhir over HTTP: whatever a client sends, the answer is never a 500.

The rule: bad input of any kind gets a 4xx FHIR OperationOutcome (JSON, resourceType
OperationOutcome, at least one issue); 204 and 304 carry no body; nothing answers 500.
Property tests throw random methods, paths, query strings, bodies, Bundles and headers at
the app; the explicit tests below pin the nastiest cases found.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from fhir_helpers import FHIR_JSON, patient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from yilian.fhir.store.tables import resource_version
from yilian.kit.db import read_transaction

FUZZ = settings(
    max_examples=int(os.environ.get("YILIAN_FUZZ_EXAMPLES", "50")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SEED_ID = "fuzz-1"

# ---------------------------------------------------------------------------------- checks


def assert_fhir_answer(response: Any, method: str = "GET") -> None:
    """< 500; an error is a JSON OperationOutcome with at least one issue."""
    status = response.status_code
    assert status < 500, f"{method} answered {status}: {response.content[:2000]!r}"
    if status in (204, 304) or method == "HEAD":
        return
    if status >= 400:
        assert "json" in response.headers.get("content-type", ""), (
            f"{status} without a JSON content type: {response.headers!r} {response.content[:500]!r}"
        )
        body = response.json()
        assert isinstance(body, dict), body
        assert body.get("resourceType") == "OperationOutcome", body
        assert isinstance(body.get("issue"), list) and body["issue"], body
        return
    if response.content:
        body = response.json()
        if isinstance(body, dict) and body.get("type") in ("batch-response",
                                                           "transaction-response"):
            _check_entries(body)


def _check_entries(bundle: dict[str, Any]) -> None:
    for entry in bundle.get("entry", []):
        answer = entry["response"]
        code = int(answer["status"].split()[0])
        assert code < 500, entry
        if code >= 400:
            outcome = answer.get("outcome")
            assert isinstance(outcome, dict), entry
            assert outcome.get("resourceType") == "OperationOutcome", entry
            assert outcome.get("issue"), entry


def send(
    client: TestClient,
    method: str,
    url: str,
    *,
    content: bytes | None = None,
    headers: dict[str, Any] | None = None,
) -> Any:
    response = client.request(method, url, content=content, headers=headers or {})
    assert_fhir_answer(response, method)
    return response


def seed(client: TestClient) -> None:
    """One Patient to read, update and patch (PUT is idempotent across examples)."""
    response = client.put(f"/fhir/Patient/{SEED_ID}", headers=FHIR_JSON,
                          content=json.dumps(patient(id=SEED_ID)).encode())
    assert response.status_code in (200, 201), response.text


# ------------------------------------------------------------------------------ strategies

RESOURCE_TYPES = ["Patient", "Observation", "Bundle", "Binary", "Organization", "Encounter"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "FROB"]

garbage_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30
)

segments = st.one_of(
    st.sampled_from([*RESOURCE_TYPES, "Foo", "patient", "metadata", "_history", "_search",
                     "$validate", "$everything", "$", "..", ".", SEED_ID, "1", "0", "-", "a.b",
                     "²", "١٢", "%00", "%", "%zz", "x" * 65, "9" * 40, "", " ", "é", "😀", "a b",
                     "_", "$validate$"]),
    garbage_text,
)

paths = st.lists(segments, min_size=0, max_size=5)


def build_path(parts: list[str]) -> str:
    # Dot segments are escaped: the client would otherwise resolve them away (/fhir/../x
    # leaves /fhir before the request is sent); escaped, they reach the server as typed.
    return "/fhir/" + "/".join(
        quote(p, safe="$") if p.strip(".") else p.replace(".", "%2E") for p in parts
    )


query_names = st.one_of(
    st.sampled_from(["_count", "_cursor", "_format", "_pretty", "_summary", "_elements",
                     "_total", "_sort", "_include", "_revinclude", "_id", "_lastUpdated",
                     "_since", "_at", "_type", "name", "family", "birthdate", "gender",
                     "identifier", "subject", "value-quantity", "code", "date",
                     "general-practitioner", "name:exact", "name:contains", "name:missing",
                     "birthdate:foo", "subject:Patient", "subject.name",
                     "_has:Observation:subject:code",
                     "_text", "_content", "_filter", "unknown", ""]),
    garbage_text,
)
query_values = st.one_of(
    st.sampled_from(["", "1", "0", "-1", "99999999999999999999999", "²", "١", "abc",
                     "true", "json", "xml", "application/fhir+json", "text/html",
                     "ge2020", "lt99999-01-01", "eq1980-05-17", "2020-13-45",
                     "2020-01-01T25:61:61Z", "0000", "ap1e999999", "gt1e-999999",
                     "1e400|http://unitsofmeasure.org|mg", "5||", "|", "||", ",", ",,",
                     "http://x|", "|abc", "Patient/", "Patient/1", "Foo/1", "urn:uuid:x",
                     "\x00", "a\x00b", "%", "%%", "%zz", "%C3%28", "%FF", "*", "Patient:x",
                     "1.5e3", "NaN", "inf", "x" * 3000]),
    garbage_text,
)
# Pairs that once broke the server, mixed in often so a short run still meets them.
trouble_pairs = st.sampled_from([("_count", "²"), ("_cursor", "²"), ("_cursor", "9" * 25),
                                 ("name", "a\x00b"), ("_id", "\x00"), ("_count", "9" * 25),
                                 ("_since", "2020-01-01T00:00:00+99:99"), ("_at", "²")])
query_strings = st.lists(st.one_of(st.tuples(query_names, query_values), trouble_pairs),
                         max_size=5)


def build_query(pairs: list[tuple[str, str]], raw: bool) -> str:
    if not pairs:
        return ""
    if raw:  # percent-garbage kept as typed (only what would break the URL is escaped)
        return "?" + "&".join(f"{quote(k, safe='%:|$,*')}={quote(v, safe='%:|$,*')}"
                              for k, v in pairs)
    return "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


NUMBER_TEXT = ["1e999999", "-1e999999", "1E-400", "123456789012345678901234567890.5",
               "1" * 5000, "-0", "-0.0", "0.000000000000000000000000000001", "1e308",
               "9223372036854775808", "-9223372036854775809", "1.0e+", "01"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63 - 2),
    st.floats(allow_nan=False, allow_infinity=False), garbage_text,
    st.sampled_from(["", "\x00", "1980-05-17", "2020-02-30", "urn:uuid:nowhere",
                     "Patient/" + SEED_ID, "Foo?x=1", "x" * 2000]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(garbage_text, st.sampled_from(
            ["resourceType", "id", "reference", "extension", "url", "value", "valueString",
             "meta", "versionId", "contained", "name", "family", "text", "div"])),
            inner, max_size=4),
    ),
    max_leaves=12,
)

PATIENT_FIELDS = ["resourceType", "id", "meta", "text", "contained", "extension",
                  "identifier", "active", "name", "telecom", "gender", "birthDate",
                  "deceasedBoolean", "deceasedDateTime", "address", "maritalStatus",
                  "multipleBirthInteger", "contact", "generalPractitioner",
                  "managingOrganization", "link", "_birthDate", "unknownField"]


@st.composite
def mutated_resources(draw: st.DrawFn) -> dict[str, Any]:
    """A valid-ish Patient with some fields swapped for values of the wrong kind."""
    resource: dict[str, Any] = patient(id=SEED_ID)
    for _ in range(draw(st.integers(0, 3))):
        resource[draw(st.sampled_from(PATIENT_FIELDS))] = draw(json_values)
    if draw(st.booleans()):
        resource["resourceType"] = draw(st.one_of(
            st.sampled_from(RESOURCE_TYPES), json_values))
    return resource


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    if kind == "extension":
        inner = '{"url":"http://x"}'
        for _ in range(depth):
            inner = '{"url":"http://x","extension":[' + inner + "]}"
        return ('{"resourceType":"Patient","id":"' + SEED_ID + '","extension":[' + inner
                + "]}")
    raise AssertionError(kind)


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes | None:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return None
    if choice == 1:
        return draw(st.binary(max_size=200))
    if choice == 2:  # truncated JSON
        text = json_text(draw(mutated_resources()))
        return text[: draw(st.integers(0, max(0, len(text) - 1)))].encode()
    if choice == 3:  # non-UTF-8 inside otherwise fine JSON
        return b'{"resourceType":"Patient","name":[{"family":"\xff\xfe\xc3\x28"}]}'
    if choice == 4:
        number = draw(st.sampled_from(NUMBER_TEXT))
        field = draw(st.sampled_from(["multipleBirthInteger", "birthDate", "id", "active"]))
        return ('{"resourceType":"Patient","id":"' + SEED_ID + '","' + field + '":'
                + number + "}").encode()
    if choice == 5:
        return nested(draw(st.sampled_from([10, 300, 2000, 50_000])),
                      draw(st.sampled_from(["list", "object", "extension"]))).encode()
    if choice == 6:
        return json_text(draw(json_values)).encode()
    if choice == 7:
        return draw(st.sampled_from([b"\xef\xbb\xbf{}", b"null", b"[]", b'""', b"0",
                                     b"NaN", b"Infinity", b"{", b"}", b" ", b"\x00",
                                     b'{"resourceType":5}', b'{"resourceType":null}',
                                     b'{"resourceType":"Patient","id":null}']))
    return json_text(draw(mutated_resources())).encode("utf-8", "surrogatepass")


content_types = st.sampled_from([
    "application/fhir+json", "application/json", "application/json-patch+json",
    "application/fhir+json; charset=utf-8", "APPLICATION/FHIR+JSON;charset=latin-1",
    "application/x-www-form-urlencoded", "text/plain", "application/xml", "", ";", "json",
    "application/fhir+json; fhirVersion=9.9", None,
])

header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                      max_size=40)
etags = st.one_of(
    st.sampled_from(['W/"1"', 'W/"0"', '"1"', "1", "*", 'W/"-1"', 'W/""', 'W/"abc"', "W/",
                     'W/"99999999999999999999999"', 'W/"1", W/"2"', ",", 'W/"1.0"', "",
                     " "]),
    header_text,
)


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["If-Match"] = draw(etags)
    if draw(st.booleans()):
        headers["If-None-Match"] = draw(etags)
    if draw(st.booleans()):
        headers["If-None-Exist"] = draw(st.one_of(
            st.sampled_from(["", "?", "Patient?", "Patient?name=x", "name=x", "_id=" + SEED_ID,
                             "Patient?unknown=1", "?&&=", "Patient?birthdate=ge2020-13",
                             "Foo?x=1", "_count=%C2%B2", "identifier=%00"]),
            header_text))
    if draw(st.booleans()):
        headers["Prefer"] = draw(st.one_of(
            st.sampled_from(["return=minimal", "return=representation",
                             'return="OperationOutcome"', "handling=strict",
                             "handling=lenient", "return=", "=;,", "respond-async",
                             "return=minimal; handling=strict"]),
            header_text))
    if draw(st.booleans()):
        headers["If-Modified-Since"] = draw(st.one_of(
            st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00",
                             "Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 +2359",
                             "0 0 0 0 0", "Tue, 30 Feb 2020 25:61:61 GMT", "", "garbage"]),
            header_text))
    if draw(st.booleans()):
        headers["Accept"] = draw(st.sampled_from(
            ["application/fhir+json", "application/fhir+xml", "*/*", "text/html", "",
             "application/xml, text/xml"]))
    content_type = draw(content_types)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


# --------------------------------------------------------------------------- bundle pieces

BUNDLE_URLS = ["Patient", "Patient/" + SEED_ID, "Patient/new-1", "Patient?name=x",
               "Patient?_id=" + SEED_ID, "Patient?unknown=1", "Patient/$validate",
               "$validate", "Patient/" + SEED_ID + "/_history/1", "Patient/_history",
               "_history", "metadata", "", "?", "/", "Foo/1", "Foo", "Patient/bad id",
               "Patient//1", "http://[", "http://other.org/fhir/Patient/1",
               "http://testserver/fhir/Patient/" + SEED_ID, "urn:uuid:0000",
               "Patient/" + "x" * 70, "Patient?_count=%C2%B2", "Patient/1/_history/²",
               "Patient?identifier=%00", "Bundle", "Binary/1"]


@st.composite
def binary_patches(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(st.one_of(
        st.sampled_from(["not base64!", "@@@", "", "éé", "AAA", "e30=", "W10="]),
        st.builds(lambda v: base64.b64encode(json_text(v).encode()).decode(), json_values),
        st.builds(lambda v: base64.b64encode(json_text(v).encode()).decode(),
                  st.lists(patch_operations(), max_size=3)),
        scalars,
    ))
    return {"resourceType": "Binary", "contentType": "application/json-patch+json",
            "data": data}


@st.composite
def patch_operations(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    op: dict[str, Any] = {}
    op["op"] = draw(st.one_of(st.sampled_from(["add", "remove", "replace", "move", "copy",
                                               "test", "frob"]), scalars))
    if draw(st.integers(0, 4)):
        op["path"] = draw(st.one_of(
            st.sampled_from(["/active", "/name/0/family", "/name/-", "/id", "/resourceType",
                             "/", "", "name", "/name/99", "/name/x", "/meta/versionId",
                             "/~2", "/a~", "/extension/0/url"]),
            scalars))
    if draw(st.booleans()):
        op["value"] = draw(json_values)
    if draw(st.booleans()):
        op["from"] = draw(st.one_of(st.sampled_from(["/name", "/id", "/x", "", "/name/0"]),
                                    scalars))
    return op


@st.composite
def bundle_entries(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 12)) == 0:
        return draw(json_values)
    entry: dict[str, Any] = {}
    if draw(st.integers(0, 3)):
        entry["fullUrl"] = draw(st.one_of(
            st.sampled_from(["urn:uuid:a", "urn:uuid:b", "http://testserver/fhir/Patient/1",
                             "Patient/1", ""]),
            scalars))
    choice = draw(st.integers(0, 9))  # 0: an entry with no resource
    if choice == 9:  # a PATCH whose Binary data is not a string
        entry["resource"] = {"resourceType": "Binary", "data": draw(scalars)}
        entry["request"] = {"method": "PATCH", "url": draw(st.sampled_from(BUNDLE_URLS))}
        return entry
    elif choice == 1:
        entry["resource"] = draw(json_values)
    elif choice == 2:
        entry["resource"] = draw(binary_patches())
    elif choice == 3:
        resource = patient()
        resource["managingOrganization"] = {"reference": draw(st.one_of(
            st.sampled_from(["urn:uuid:a", "urn:uuid:nowhere", "urn:oid:1.2", "Foo?x=1",
                             "Organization?name=x", "Organization?unknown=1", "?x=1",
                             "Organization?", "Organization/1?x", "Patient?identifier=%00",
                             "http://testserver/fhir/Organization?name=x", ""]),
            garbage_text))}
        if draw(st.booleans()):
            resource["id"] = draw(st.one_of(st.just(SEED_ID), scalars))
        entry["resource"] = resource
    else:
        entry["resource"] = draw(mutated_resources())
    if draw(st.integers(0, 8)):
        request: Any = {}
        if draw(st.integers(0, 8)):
            request["method"] = draw(st.one_of(
                st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
                st.sampled_from(["get", "TRACE", ""]), scalars))
        if draw(st.integers(0, 8)):
            request["url"] = draw(st.one_of(st.sampled_from(BUNDLE_URLS),
                                            st.sampled_from(BUNDLE_URLS), garbage_text,
                                            scalars))
        for key in ("ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince"):
            if draw(st.integers(0, 5)) == 0:
                request[key] = draw(st.one_of(etags, st.sampled_from(
                    ["name=x", "Patient?_id=" + SEED_ID, "unknown=1", "?"]), scalars))
        if draw(st.integers(0, 15)) == 0:
            request = draw(json_values)
        entry["request"] = request
    return entry


@st.composite
def bundles(draw: st.DrawFn) -> Any:
    bundle: dict[str, Any] = {
        "resourceType": draw(st.sampled_from(["Bundle"] * 8 + ["Patient", "bundle"])),
        "type": draw(st.sampled_from(["batch", "transaction"] * 4
                                     + ["searchset", "collection", "", "Batch"])),
    }
    if draw(st.integers(0, 10)) == 0:
        bundle["entry"] = draw(json_values)
    else:
        bundle["entry"] = draw(st.lists(bundle_entries(), max_size=4))
    return bundle


# -------------------------------------------------------------------------- property tests


@FUZZ
@given(method=st.sampled_from(METHODS), parts=paths, query=query_strings, raw=st.booleans(),
       body=st.one_of(st.none(), raw_bodies()))
def test_random_requests_never_fail(
    client: TestClient, method: str, parts: list[str], query: list[tuple[str, str]],
    raw: bool, body: bytes | None,
) -> None:
    seed(client)
    headers = {"Content-Type": "application/fhir+json"} if body is not None else {}
    send(client, method, build_path(parts) + build_query(query, raw), content=body,
         headers=headers)


@FUZZ
@given(method=st.sampled_from(METHODS), parts=paths, query=query_strings, raw=st.booleans(),
       body=st.one_of(st.none(), raw_bodies()))
def test_random_requests_without_a_token_reach_nothing(
    client: TestClient, method: str, parts: list[str], query: list[tuple[str, str]],
    raw: bool, body: bytes | None,
) -> None:
    """Only the CapabilityStatement is public: anything else without a token is refused
    (401), or refused earlier for its form (a format or size nobody is served), and changes
    nothing."""
    seed(client)
    before = _versions(client)
    headers = {"Authorization": "", **({"Content-Type": "application/fhir+json"}
                                       if body is not None else {})}
    url = build_path(parts) + build_query(query, raw)
    response = client.request(method, url, content=body, headers=headers)
    assert response.status_code < 500, response.text
    path = "/".join(p for p in urlsplit(str(response.url)).path.split("/") if p)
    public = path == "fhir/metadata" and method in ("GET", "HEAD")
    if not public:  # 400, 406, 413: refused for its form before the token was looked at;
        # 404 only from the routing (a path Starlette matches to no endpoint at all).
        text = response.text if method != "HEAD" else client.request(
            "GET", url, headers={"Authorization": ""}).text
        routed_nowhere = response.status_code == 404 and "[YL-1117] No endpoint answers" in text
        assert response.status_code in (400, 401, 406, 413) or routed_nowhere, (
            url, response.text)
    assert _versions(client) == before


def _versions(client: TestClient) -> int:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with read_transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(resource_version))
                   .scalar_one())


@FUZZ
@given(res_type=st.sampled_from([*RESOURCE_TYPES, "Foo"]), query=query_strings,
       raw=st.booleans(), history=st.booleans(),
       method=st.sampled_from(["GET", "GET", "HEAD", "POST", "DELETE", "PUT"]))
def test_random_search_parameters_never_fail(
    client: TestClient, res_type: str, query: list[tuple[str, str]], raw: bool,
    history: bool, method: str,
) -> None:
    seed(client)
    path = f"/fhir/{res_type}" + ("/_history" if history else "")
    body = json_text(patient()).encode() if method in ("POST", "PUT") else None
    send(client, method, path + build_query(query, raw), content=body,
         headers=FHIR_JSON if body else {})


@FUZZ
@given(method=st.sampled_from(["POST", "PUT", "PATCH", "POST"]), body=raw_bodies(),
       target=st.sampled_from(["Patient", f"Patient/{SEED_ID}", "Patient/other",
                               "Patient/$validate", f"Patient/{SEED_ID}/$validate",
                               "Patient?_id=" + SEED_ID, "Patient?name=x", "", "Bundle"]),
       headers=header_sets())
def test_random_bodies_never_fail(
    client: TestClient, method: str, body: bytes | None, target: str, headers: dict[str, str]
) -> None:
    seed(client)
    send(client, method, f"/fhir/{target}", content=body, headers=headers)


@FUZZ
@given(resource=mutated_resources(),
       method=st.sampled_from(["POST", "PUT", "PUT"]))
def test_wrongly_typed_resources_never_fail(
    client: TestClient, resource: dict[str, Any], method: str
) -> None:
    url = "/fhir/Patient" if method == "POST" else f"/fhir/Patient/{SEED_ID}"
    send(client, method, url, content=json_text(resource).encode(), headers=FHIR_JSON)


@FUZZ
@given(operations=st.one_of(st.lists(patch_operations(), max_size=4), json_values),
       content_type=st.sampled_from(["application/json-patch+json", "application/json",
                                     "application/fhir+json"]),
       if_match=st.one_of(st.none(), etags))
def test_random_json_patches_never_fail(
    client: TestClient, operations: Any, content_type: str, if_match: str | None
) -> None:
    seed(client)
    headers = {"Content-Type": content_type}
    if if_match is not None:
        headers["If-Match"] = if_match
    send(client, "PATCH", f"/fhir/Patient/{SEED_ID}", content=json_text(operations).encode(),
         headers=headers)


@FUZZ
@given(bundle=bundles(), prefer=st.one_of(st.none(), st.sampled_from(
    ["return=representation", "return=OperationOutcome", "return=minimal", "garbage"])))
def test_random_bundles_never_fail(client: TestClient, bundle: Any, prefer: str | None) -> None:
    seed(client)
    headers = dict(FHIR_JSON)
    if prefer is not None:
        headers["Prefer"] = prefer
    send(client, "POST", "/fhir", content=json_text(bundle).encode(), headers=headers)


@FUZZ
@given(headers=header_sets(),
       method=st.sampled_from(["GET", "HEAD", "PUT", "DELETE", "POST", "PATCH"]),
       target=st.sampled_from([f"Patient/{SEED_ID}", "Patient/missing", "Patient",
                               f"Patient/{SEED_ID}/_history/1", "Patient?_id=" + SEED_ID]))
def test_random_conditional_headers_never_fail(
    client: TestClient, headers: dict[str, str], method: str, target: str
) -> None:
    seed(client)
    body = None
    if method in ("PUT", "POST"):
        body = json_text(patient(id=SEED_ID)).encode()
    elif method == "PATCH":
        body = b'[{"op":"replace","path":"/active","value":true}]'
    send(client, method, f"/fhir/{target}", content=body, headers=headers)


# ------------------------------------------------------------------------ explicit cases


def _post(client: TestClient, url: str, body: bytes, method: str = "POST",
          content_type: str = "application/fhir+json") -> Any:
    return send(client, method, url, content=body, headers={"Content-Type": content_type})


def _transaction(*entries: Any, kind: str = "transaction") -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": list(entries)}).encode()


def assert_outcome(response: Any, status: int | tuple[int, ...]) -> None:
    wanted = status if isinstance(status, tuple) else (status,)
    assert response.status_code in wanted, (response.status_code, response.text[:500])
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"], body


@pytest.mark.parametrize("kind", ["list", "object"])
def test_json_nested_100000_levels_is_a_400(client: TestClient, kind: str) -> None:
    response = _post(client, "/fhir/Patient", nested(100_000, kind).encode())
    assert_outcome(response, 400)


def test_extension_nested_300_levels_is_not_a_500(client: TestClient) -> None:
    """Parses (under json's limit) and may validate, but orjson writes 255 levels at most."""
    response = _post(client, f"/fhir/Patient/{SEED_ID}", nested(300, "extension").encode(),
                     method="PUT")
    assert response.status_code in (200, 201) or response.status_code in range(400, 500)


def test_deeply_nested_bundle_entry_is_not_a_500(client: TestClient) -> None:
    value: Any = {"reference": "urn:uuid:nowhere"}
    for _ in range(900):
        value = {"a": value}
    body = _transaction({"request": {"method": "POST", "url": "Patient"},
                         "resource": {"resourceType": "Patient", "x": value}})
    response = _post(client, "/fhir", body)
    assert response.status_code in range(400, 500)


def test_a_two_megabyte_string_body_is_a_4xx(client: TestClient) -> None:
    response = _post(client, "/fhir/Patient", json.dumps("x" * 2_000_000).encode())
    assert_outcome(response, (400, 413))


def test_numeric_resource_type_is_a_400(client: TestClient) -> None:
    for url in ("/fhir/Patient", "/fhir"):
        assert_outcome(_post(client, url, b'{"resourceType": 5}'), (400, 422))
    # $validate answers 200 with the problems it found (or 4xx): an outcome either way.
    response = _post(client, "/fhir/Patient/$validate", b'{"resourceType": 5}')
    assert_outcome(response, (200, 400, 422))
    assert any(i["severity"] in ("error", "fatal") for i in response.json()["issue"])


def test_put_with_null_id_is_a_4xx(client: TestClient) -> None:
    response = _post(client, "/fhir/Patient/abc", b'{"resourceType": "Patient", "id": null}',
                     method="PUT")
    assert_outcome(response, (400, 422))


def test_transaction_entry_resource_as_a_list_is_a_400(client: TestClient) -> None:
    body = _transaction({"request": {"method": "POST", "url": "Patient"},
                         "resource": [patient()]})
    assert_outcome(_post(client, "/fhir", body), 400)


def test_transaction_patch_whose_binary_data_is_not_base64_is_a_400(client: TestClient) -> None:
    seed(client)
    body = _transaction({"request": {"method": "PATCH", "url": f"Patient/{SEED_ID}"},
                         "resource": {"resourceType": "Binary", "data": "!!not base64!!"}})
    assert_outcome(_post(client, "/fhir", body), 400)


@pytest.mark.parametrize("data", [5, None, ["W10="], {"a": 1}])
def test_transaction_patch_whose_binary_data_is_not_a_string_is_a_400(
    client: TestClient, data: Any
) -> None:
    seed(client)
    body = _transaction({"request": {"method": "PATCH", "url": f"Patient/{SEED_ID}"},
                         "resource": {"resourceType": "Binary", "data": data}})
    assert_outcome(_post(client, "/fhir", body), 400)


def test_transaction_patch_with_a_non_binary_resource_is_a_400(client: TestClient) -> None:
    seed(client)
    body = _transaction({"request": {"method": "PATCH", "url": f"Patient/{SEED_ID}"},
                         "resource": patient()})
    assert_outcome(_post(client, "/fhir", body), 400)


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_bundle_entry_url_that_urlsplit_refuses_is_a_4xx(client: TestClient, kind: str) -> None:
    body = _transaction({"request": {"method": "GET", "url": "http://[/Patient"}}, kind=kind)
    response = _post(client, "/fhir", body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_outcome(response, response.status_code)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_transaction_type_level_write_without_criteria_is_a_400(
    client: TestClient, method: str
) -> None:
    entry: dict[str, Any] = {"request": {"method": method, "url": "Patient"}}
    if method == "PUT":
        entry["resource"] = patient()
    elif method == "PATCH":
        entry["resource"] = {"resourceType": "Binary",
                             "data": base64.b64encode(b"[]").decode()}
    assert_outcome(_post(client, "/fhir", _transaction(entry)), (400, 412))


@pytest.mark.parametrize("body_id", [5, {"a": 1}, ["x"], True])
def test_transaction_conditional_put_with_a_non_string_id_is_a_400(
    client: TestClient, body_id: Any
) -> None:
    body = _transaction({"request": {"method": "PUT", "url": "Patient?_id=nobody"},
                         "resource": patient(id=body_id)})
    assert_outcome(_post(client, "/fhir", body), (400, 422))


def test_transaction_conditional_reference_to_an_unknown_type_is_a_4xx(
    client: TestClient,
) -> None:
    body = _transaction({"request": {"method": "POST", "url": "Patient"},
                         "resource": patient(managingOrganization={"reference": "Foo?x=1"})})
    response = _post(client, "/fhir", body)
    assert_outcome(response, (400, 404, 412, 422))


def test_unresolved_urn_uuid_reference_is_a_400(client: TestClient) -> None:
    body = _transaction({"request": {"method": "POST", "url": "Patient"},
                         "resource": patient(managingOrganization={
                             "reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"})})
    assert_outcome(_post(client, "/fhir", body), 400)


@pytest.mark.parametrize("version", ["%C2%B2", "99999999999999999999999", "9223372036854775808"])
def test_vread_with_odd_version_numbers_is_a_404(client: TestClient, version: str) -> None:
    seed(client)
    assert_outcome(send(client, "GET", f"/fhir/Patient/{SEED_ID}/_history/{version}"), 404)


@pytest.mark.parametrize("param", ["_count", "_cursor"])
@pytest.mark.parametrize("value", ["%C2%B2", "99999999999999999999999"])
def test_odd_paging_numbers_are_not_a_500(client: TestClient, param: str, value: str) -> None:
    seed(client)
    response = send(client, "GET", f"/fhir/Patient?{param}={value}")
    if response.status_code >= 400:
        assert_outcome(response, 400)


def test_history_count_superscript_is_a_400(client: TestClient) -> None:
    seed(client)
    assert_outcome(send(client, "GET", "/fhir/Patient/_history?_count=%C2%B2"), 400)


@pytest.mark.parametrize("query", ["name=a%00b", "identifier=%00", "_id=%00", "family:exact=%00"])
def test_nul_characters_in_search_values_are_not_a_500(client: TestClient, query: str) -> None:
    seed(client)
    response = send(client, "GET", f"/fhir/Patient?{query}")
    if response.status_code >= 400:
        assert_outcome(response, 400)


def test_nul_character_in_a_resource_is_not_a_500(client: TestClient) -> None:
    body = json.dumps(patient(family="a\u0000b")).encode()
    response = _post(client, "/fhir/Patient", body)
    if response.status_code >= 400:
        assert_outcome(response, (400, 422))


@pytest.mark.parametrize("number", ["1e999999", "123456789012345678901234567890.5", "1E-400"])
def test_extreme_decimals_are_not_a_500(client: TestClient, number: str) -> None:
    body = ('{"resourceType":"Observation","status":"final","code":{"text":"x"},'
            '"valueQuantity":{"value":' + number + ',"unit":"mg"}}').encode()
    response = _post(client, "/fhir/Observation", body)
    if response.status_code >= 400:
        assert_outcome(response, (400, 422))
    response = send(client, "GET", f"/fhir/Observation?value-quantity={number}")
    if response.status_code >= 400:
        assert_outcome(response, 400)


def test_a_huge_integer_is_a_4xx(client: TestClient) -> None:
    body = ('{"resourceType":"Patient","multipleBirthInteger":' + "1" * 5000 + "}").encode()
    assert_outcome(_post(client, "/fhir/Patient", body), (400, 422))


@pytest.mark.parametrize("path", ["/array", "/name/0/family/x"])
def test_json_patch_with_a_non_string_path_or_bad_pointer_is_a_4xx(
    client: TestClient, path: Any
) -> None:
    seed(client)
    for operation in ({"op": "add", "path": 5, "value": 1},
                      {"op": "move", "from": 5, "path": "/active"},
                      {"op": "add", "path": path, "value": 1}):
        response = _post(client, f"/fhir/Patient/{SEED_ID}", json.dumps([operation]).encode(),
                         method="PATCH", content_type="application/json-patch+json")
        assert_outcome(response, (400, 422))


# The If-Match / If-None-Match header of a real HTTP client may hold any latin-1 byte; the
# test client re-encodes header values as UTF-8, so these go straight to the ASGI app.


def _raw_asgi(client: TestClient, method: str, path: str, headers: list[tuple[bytes, bytes]],
              body: bytes = b"") -> tuple[int, bytes]:
    app = client.app
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "server": ("testserver", 80),
             "client": ("127.0.0.1", 1), "headers": [(b"host", b"testserver"), *headers]}
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send_message(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send_message))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("header", [b"if-match", b"if-none-match"])
def test_superscript_digit_etag_is_not_a_500(client: TestClient, header: bytes) -> None:
    seed(client)
    method = "PUT" if header == b"if-match" else "GET"
    body = json.dumps(patient(id=SEED_ID)).encode() if method == "PUT" else b""
    status, content = _raw_asgi(
        client, method, f"/fhir/Patient/{SEED_ID}",
        [(header, b'W/"\xb2"'), (b"content-type", b"application/fhir+json")], body)
    assert status < 500, content
    if status >= 400:
        outcome = json.loads(content)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"]
