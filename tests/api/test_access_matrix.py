"""The access matrix, on SQLite and PostgreSQL: for each role (tokens minted for real users,
as `yilian.auth.service` gives them) and each kind of relationship between the user's
hospital and a patient, which reads, searches, `_include`s, chained searches, histories and
writes (alone or in a transaction) are allowed, and that every refusal is a 401, 403 or 404
with an OperationOutcome that leaks nothing (searches and totals hold only what may be seen).

The rules are those of README "## Access" and `yilian.fhir.guard`. Each test collects every
mismatch and asserts once, listing them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from fhir_helpers import FHIR_JSON, put_all
from sqlalchemy import Engine
from starlette.testclient import TestClient

from yilian.auth.roles import Role
from yilian.auth.service import create_user, token_for
from yilian.auth.tokens import Keys
from yilian.errors import Forbidden

HOSPITAL = "Organization/zju1"
PASSWORD = "matrix-password-1"

# The patients, by their relationship to the users' hospital (zju1), and their family names
# (none a prefix of another, so a chained search by name finds exactly one).
PATIENTS: dict[str, str] = {
    "own": "Zhang",  # managed by zju1
    "elsewhere": "Wang",  # managed by another hospital
    "referred": "Zhao",  # managed by another hospital, referred to zju1
    "self": "Chen",  # the patient user's own record, managed by another hospital
    "nobody": "Liu",  # no links at all
}
STAFF = frozenset({Role.DOCTOR, Role.NURSE, Role.PHARMACIST, Role.LAB, Role.BIOBANK,
                   Role.TRAINEE, Role.RESEARCHER, Role.MANAGER})
READ_ONLY = frozenset({Role.RESEARCHER, Role.MANAGER})
ANONYMOUS = {"Authorization": ""}


class Response(Protocol):
    """What these tests read of an answer (the test client's response class comes from
    httpx or httpx2, whichever is installed)."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def json(self) -> Any: ...


def _observation(patient: str, obs_id: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"}}
    if obs_id is not None:
        resource["id"] = obs_id
    return resource


def _patient(patient: str, organization: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": patient,
                                "name": [{"family": PATIENTS[patient]}]}
    if organization is not None:
        resource["managingOrganization"] = {"reference": organization}
    return resource


RESOURCES: list[dict[str, Any]] = [
    {"resourceType": "Organization", "id": "zju1", "name": "浙大一院"},
    {"resourceType": "Organization", "id": "other", "name": "Another hospital"},
    _patient("own", HOSPITAL),
    _patient("elsewhere", "Organization/other"),
    _patient("referred", "Organization/other"),
    _patient("self", "Organization/other"),
    _patient("nobody", None),
    {"resourceType": "ServiceRequest", "id": "referral", "status": "active", "intent": "order",
     "code": {"text": "cardiology consultation"},
     "subject": {"reference": "Patient/referred"},
     "performer": [{"reference": HOSPITAL}]},
    *(_observation(patient, f"obs-{patient}") for patient in PATIENTS),
]


# What each role may do to each patient's records.

def reaches(role: Role, patient: str) -> bool:
    """Whether the role's token reads and searches this patient's records."""
    if role is Role.ADMIN:
        return True
    if role is Role.PATIENT:
        return patient == "self"
    if role in STAFF:
        return patient in ("own", "referred")
    return False  # privacy: no Patient or Observation scope at all


def writes(role: Role, patient: str) -> bool:
    return role not in READ_ONLY and reaches(role, patient)


def scope_of(role: Role) -> str:
    if role is Role.PATIENT:
        return "patient/*.cruds"
    if role is Role.PRIVACY:
        return "user/AuditEvent.rs"
    return "user/*.cruds"


@dataclass
class Caller:
    role: Role
    headers: dict[str, str]  # the Authorization header; empty value when it got no token
    has_token: bool

    def refused_read(self) -> int:
        """The status of a read it may not make: as if absent (404) when its scopes cover
        the type; 403 when they do not; 401 without a token."""
        if not self.has_token:
            return 401
        return 403 if self.role is Role.PRIVACY else 404

    def refused_search(self) -> int | None:
        """None: the search answers 200, leaving out what it may not see."""
        if not self.has_token:
            return 401
        return 403 if self.role is Role.PRIVACY else None

    def refused_write(self) -> int:
        return 403 if self.has_token else 401


@pytest.fixture
def loaded(client: TestClient) -> TestClient:
    return put_all(client, RESOURCES)


@pytest.fixture
def callers(loaded: TestClient) -> list[Caller]:
    """One user per role, held at zju1, and its token (if its roles allow any of the
    requested scopes)."""
    engine: Engine = loaded.app.state.engine  # type: ignore[attr-defined]
    keys: Keys = loaded.app.state.keys  # type: ignore[attr-defined]
    found = []
    with engine.begin() as conn:
        for role in Role:
            user = create_user(conn, f"u-{role}", PASSWORD, [(role, HOSPITAL)],
                               fhir_user="Patient/self" if role is Role.PATIENT
                               else "Practitioner/x")
            try:
                token = token_for(keys, user, scope_of(role)).token
            except Forbidden:
                found.append(Caller(role, dict(ANONYMOUS), has_token=False))
            else:
                found.append(Caller(role, {"Authorization": f"Bearer {token}"},
                                    has_token=True))
    return found


def _refs(body: dict[str, Any]) -> set[str]:
    """The resources of a Bundle, as Type/id (search outcomes left out)."""
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in body.get("entry", []) if e.get("search", {}).get("mode") != "outcome"}


def _body(response: Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class Mismatches:
    found: list[str] = field(default_factory=list)

    def add(self, who: str, what: str, problem: str) -> None:
        self.found.append(f"{who} / {what}: {problem}")

    def status(self, who: str, what: str, response: Response, expected: int) -> bool:
        """Whether the response has the expected status (recorded if not); a refusal must
        also be an OperationOutcome."""
        if response.status_code != expected:
            self.add(who, what, f"expected {expected}, got {response.status_code} "
                     f"{response.text[:200]}")
            return False
        if expected >= 400 and _body(response).get("resourceType") != "OperationOutcome":
            self.add(who, what, f"the {expected} is not an OperationOutcome: "
                     f"{response.text[:200]}")
        return True

    def same(self, who: str, what: str, got: object, expected: object) -> None:
        if got != expected:
            self.add(who, what, f"expected {expected!r}, got {got!r}")

    def check(self) -> None:
        assert not self.found, (f"{len(self.found)} mismatches:\n  "
                                + "\n  ".join(self.found))


def _searched(mismatches: Mismatches, who: str, what: str, response: Response,
              refused: int | None, expected: set[str]) -> None:
    """A search: refused with `refused`, or 200 holding exactly `expected` and counting
    just those when it was asked for an accurate total."""
    if not mismatches.status(who, what, response, refused or 200) or refused is not None:
        return
    body = _body(response)
    mismatches.same(who, f"{what} (resources)", _refs(body), expected)
    if "_total=accurate" in what:
        mismatches.same(who, f"{what} (total)", body.get("total"), len(expected))


def test_reads_and_searches_reach_only_the_permitted_patients(
        loaded: TestClient, callers: list[Caller]) -> None:
    mismatches = Mismatches()
    for caller in callers:
        role = caller.role
        seen = [patient for patient in PATIENTS if reaches(role, patient) and caller.has_token]

        def get(url: str, caller: Caller = caller) -> Response:
            return loaded.get(f"/fhir/{url}", headers=caller.headers)

        # Across all patients: only the permitted ones, in the resources and the totals.
        for url, expected in (
                ("Observation?_total=accurate&_count=100", {f"Observation/obs-{p}" for p in seen}),
                ("Patient?_total=accurate&_count=100", {f"Patient/{p}" for p in seen})):
            _searched(mismatches, str(role), f"search {url}", get(url), caller.refused_search(),
                      expected)

        for patient, family in PATIENTS.items():
            who = f"{role} / {patient}"
            allowed = caller.has_token and reaches(role, patient)
            observation, person = f"Observation/obs-{patient}", f"Patient/{patient}"

            # Reads: the resource, or as if absent (a refusal when the type is not granted).
            for url in (person, observation):
                response = get(url)
                if mismatches.status(who, f"read {url}", response,
                                     200 if allowed else caller.refused_read()) and allowed:
                    body = _body(response)
                    mismatches.same(who, f"read {url} (resource)",
                                    f"{body.get('resourceType')}/{body.get('id')}", url)

            # Searches: by subject, _include/_revinclude, a chain through the patient's name.
            for url, expected in (
                    (f"Observation?subject={person}&_total=accurate", {observation}),
                    (f"Observation?_id=obs-{patient}&_include=Observation:subject",
                     {observation, person}),
                    (f"Patient?_id={patient}&_revinclude=Observation:subject",
                     {observation, person}),
                    (f"Observation?subject:Patient.family={family}&_total=accurate",
                     {observation})):
                _searched(mismatches, who, f"search {url}", get(url), caller.refused_search(),
                          expected if allowed else set())

            # The instance's history: its versions, or as if absent.
            url = f"{person}/_history"
            response = get(url)
            if mismatches.status(who, f"history {url}", response,
                                 200 if allowed else caller.refused_read()) and allowed:
                body = _body(response)
                mismatches.same(who, f"history {url} (type)", body.get("type"), "history")
                mismatches.same(who, f"history {url} (resources)", _refs(body), {person})
    mismatches.check()


def test_writes_stay_within_the_permitted_patients(
        loaded: TestClient, callers: list[Caller]) -> None:
    mismatches = Mismatches()

    def count(patient: str) -> int:
        """The patient's Observations, as the administrator sees them."""
        response = loaded.get(f"/fhir/Observation?subject=Patient/{patient}&_count=200")
        assert response.status_code == 200, response.text
        return len(_refs(response.json()))

    counts = {patient: count(patient) for patient in PATIENTS}
    for caller in callers:
        headers = {**FHIR_JSON, **caller.headers}
        for patient in PATIENTS:
            who = f"{caller.role} / {patient}"
            allowed = caller.has_token and writes(caller.role, patient)
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": "urn:uuid:6f1e3c1a-5a7b-4c1e-9a7e-0b1c2d3e4f50",
                 "resource": _observation(patient),
                 "request": {"method": "POST", "url": "Observation"}}]}
            for what, url, body, created in (
                    ("create Observation", "/fhir/Observation", _observation(patient), 201),
                    ("transaction creating an Observation", "/fhir", bundle, 200)):
                response = loaded.post(url, json=body, headers=headers)
                if mismatches.status(who, what, response,
                                     created if allowed else caller.refused_write()) \
                        and allowed and created == 200:
                    statuses = [e["response"]["status"][:3]
                                for e in _body(response).get("entry", [])]
                    mismatches.same(who, f"{what} (entry statuses)", statuses, ["201"])
                # One more Observation when allowed; when refused, nothing was written.
                expected = counts[patient] + (1 if allowed else 0)
                counts[patient] = count(patient)  # the next write's baseline, whatever happened
                mismatches.same(who, f"{what} (Observations of {patient} afterwards)",
                                counts[patient], expected)
    mismatches.check()


def test_without_a_token_everything_but_discovery_is_401(loaded: TestClient) -> None:
    mismatches = Mismatches()
    for url in ("Patient/own", "Observation/obs-own", "Observation?subject=Patient/own",
                "Observation?_total=accurate",
                "Observation?_id=obs-own&_include=Observation:subject",
                "Observation?subject:Patient.family=Zhang", "Patient/own/_history"):
        response = loaded.get(f"/fhir/{url}", headers=ANONYMOUS)
        if mismatches.status("anonymous", f"GET {url}", response, 401):
            mismatches.same("anonymous", f"GET {url} (challenge)",
                            response.headers.get("www-authenticate", "").startswith("Bearer"),
                            True)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _observation("own"), "request": {"method": "POST", "url": "Observation"}}]}
    for what, url, body in (("create Observation", "/fhir/Observation", _observation("own")),
                            ("transaction", "/fhir", bundle)):
        response = loaded.post(url, json=body, headers={**FHIR_JSON, **ANONYMOUS})
        mismatches.status("anonymous", what, response, 401)
    # Nothing was written by the refused writes.
    written = loaded.get("/fhir/Observation?subject=Patient/own")
    mismatches.same("admin", "Observations of own afterwards", _refs(written.json()),
                    {"Observation/obs-own"})
    mismatches.status("anonymous", "GET metadata",
                      loaded.get("/fhir/metadata", headers=ANONYMOUS), 200)
    mismatches.check()
