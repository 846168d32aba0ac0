"""Users, sign-in with lockout, scopes narrowed to roles, tokens: on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from yilian.auth.roles import Role, within
from yilian.auth.service import (
    LOCKOUT,
    MAX_FAILURES,
    authenticate,
    create_user,
    find_user,
    token_for,
)
from yilian.auth.tokens import Keys, Verifier
from yilian.errors import BadRequest, Conflict, Forbidden, Unauthorized
from yilian.fhir.access import Interaction, parse_scopes
from yilian.kit.clock import utcnow

PASSWORD = "correct-horse-9"
ZJU = "Organization/zju1"


def test_scopes_in_both_spellings() -> None:
    [v2] = parse_scopes("user/Observation.rs")
    assert (v2.context, v2.res_type, v2.interactions) == (
        "user", "Observation", {Interaction.READ, Interaction.SEARCH})
    assert parse_scopes("patient/*.read")[0].interactions == {Interaction.READ,
                                                              Interaction.SEARCH}
    assert parse_scopes("user/*.write")[0].interactions == {
        Interaction.CREATE, Interaction.UPDATE, Interaction.DELETE}
    assert parse_scopes("system/*.*")[0].interactions == set(Interaction)
    # Not resource scopes, out of order, or narrowed by a query: they grant nothing.
    assert parse_scopes("openid fhirUser launch/patient offline_access user/Patient.sr "
                        "user/Observation.rs?category=laboratory patient/x.rs") == ()


def test_a_token_never_carries_more_than_the_roles_allow() -> None:
    asked = parse_scopes("user/*.cruds system/*.rs patient/*.rs")
    assert within(asked, {Role.RESEARCHER}) == parse_scopes("user/*.rs")
    assert within(asked, {Role.PATIENT}) == parse_scopes("patient/*.rs")
    assert within(asked, {Role.ADMIN}) == parse_scopes("user/*.cruds system/*.rs")


def test_create_and_find_users(engine: Engine) -> None:
    with engine.begin() as conn:
        user = create_user(conn, " Dr.Li ", PASSWORD, [(Role.DOCTOR, ZJU), (Role.TRAINEE, ZJU)],
                           fhir_user="Practitioner/li")
        assert user.username == "dr.li"
        assert find_user(conn, "DR.LI") == user
        for bad in [("x y", PASSWORD, [(Role.DOCTOR, ZJU)], None),
                    ("short", "abc123", [(Role.DOCTOR, ZJU)], None),
                    ("letters", "onlyletters", [(Role.DOCTOR, ZJU)], None),
                    ("noroles", PASSWORD, [], None),
                    ("badorg", PASSWORD, [(Role.NURSE, "zju1")], None),
                    ("patient", PASSWORD, [(Role.PATIENT, ZJU)], "Practitioner/x")]:
            with pytest.raises(BadRequest):
                create_user(conn, *bad[:3], fhir_user=bad[3])  # type: ignore[arg-type]
        with pytest.raises(Conflict):
            create_user(conn, "dr.li", PASSWORD, [(Role.NURSE, ZJU)])


def test_sign_in_locks_the_account_after_repeated_failures(engine: Engine) -> None:
    with engine.begin() as conn:
        create_user(conn, "nurse.wang", PASSWORD, [(Role.NURSE, ZJU)])
    now = utcnow()
    with engine.begin() as conn:
        assert authenticate(conn, "nurse.wang", PASSWORD, now).username == "nurse.wang"
    for _ in range(MAX_FAILURES):
        with engine.begin() as conn, pytest.raises(Unauthorized):
            authenticate(conn, "nurse.wang", "wrong-password-1", now)
    # Locked: even the right password is refused, with the same words as a wrong one.
    with engine.begin() as conn, pytest.raises(Unauthorized) as refused:
        authenticate(conn, "nurse.wang", PASSWORD, now + timedelta(minutes=1))
    with engine.begin() as conn, pytest.raises(Unauthorized) as unknown:
        authenticate(conn, "nobody", PASSWORD, now)
    assert refused.value.message == unknown.value.message
    with engine.begin() as conn:
        later = now + LOCKOUT + timedelta(seconds=1)
        assert authenticate(conn, "nurse.wang", PASSWORD, later).username == "nurse.wang"


def test_tokens_for_users(engine: Engine) -> None:
    with engine.begin() as conn:
        manager = create_user(conn, "manager", PASSWORD, [(Role.MANAGER, ZJU)])
        patient = create_user(conn, "zhang.wei", PASSWORD, [(Role.PATIENT, ZJU)],
                              fhir_user="Patient/p1")
    keys = Keys(engine)
    verify = Verifier(Keys(engine))  # another process's view: keys from the database
    access = verify(f"Bearer {token_for(keys, manager, 'user/*.cruds').token}")
    assert access.allows(Interaction.SEARCH, "Encounter")
    assert not access.allows(Interaction.UPDATE, "Encounter")
    # A manager works with counts, not identities: bound to the hospital, numbers masked.
    assert access.organizations == ("zju1",) and access.masked
    mine = verify(f"Bearer {token_for(keys, patient, 'patient/*.rs user/*.rs').token}")
    assert mine.patient == "p1" and mine.confined(Interaction.READ, "Observation")
    with pytest.raises(Forbidden):
        token_for(keys, patient, "system/*.rs")
    expired = token_for(keys, manager, "user/*.rs", minutes=1)
    with pytest.raises(BadRequest):
        token_for(keys, manager, "user/*.rs", minutes=0)
    assert verify(f"Bearer {expired.token}").subject == "user manager"


def test_checked_tokens_are_remembered_until_they_expire(engine: Engine) -> None:
    from yilian.auth.tokens import issue

    keys = Keys(engine)
    verify = Verifier(keys)
    token = f"Bearer {issue(keys, subject='a', scope='user/*.rs').token}"
    assert verify(token) is verify(token)
    stale = issue(keys, subject="a", scope="user/*.rs", minutes=1,
                  now=utcnow() - timedelta(minutes=2))
    with pytest.raises(Unauthorized):
        verify(f"Bearer {stale.token}")
    with pytest.raises(Unauthorized):  # refused again: a refusal is never remembered
        verify(f"Bearer {stale.token}")


def test_a_relative_reads_what_the_patient_allows(client: Any) -> None:
    from fhir_helpers import FHIR_JSON

    from yilian.auth.service import patient_context

    client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"},
               headers=FHIR_JSON)
    client.put("/fhir/RelatedPerson/mother", headers=FHIR_JSON, json={
        "resourceType": "RelatedPerson", "id": "mother", "patient": {"reference": "Patient/p1"}})
    engine: Engine = client.app.state.engine
    with engine.begin() as conn:
        relative = create_user(conn, "li.mother", PASSWORD, [(Role.PATIENT, ZJU)],
                               fhir_user="RelatedPerson/mother")
        assert patient_context(conn, relative) is None  # nothing allowed yet
    consent = {"resourceType": "Consent", "id": "share", "status": "active",
               "scope": {"coding": [{"code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": {"reference": "Patient/p1"},
               "policyRule": {"coding": [{"code": "OPTIN"}]},
               "provision": {"type": "permit", "actor": [{
                   "role": {"coding": [{"code": "PRCP"}]},
                   "reference": {"reference": "RelatedPerson/mother"}}]}}
    assert client.put("/fhir/Consent/share", json=consent, headers=FHIR_JSON).status_code == 201
    with engine.begin() as conn:
        patient = patient_context(conn, relative)
    assert patient == "p1"
    issued = token_for(client.app.state.keys, relative, "patient/*.cruds", patient=patient)
    bearer = {"Authorization": f"Bearer {issued.token}"}
    assert client.get("/fhir/Patient/p1", headers=bearer).status_code == 200
    assert client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"},
                      headers={**FHIR_JSON, **bearer}).status_code == 403  # reading only
