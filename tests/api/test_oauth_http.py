"""The OAuth 2.0 / SMART endpoints over HTTP, on SQLite and PostgreSQL: the authorization code
flow with PKCE through the sign-in page, refresh with rotation, revocation, introspection, and
backend services authenticating with signed JWTs."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient

from yilian.api.app import create_app
from yilian.auth.oauth import register_client
from yilian.auth.roles import Role
from yilian.auth.service import create_user
from yilian.config import Settings

ROOT = "http://localhost"
APP_REDIRECT = "http://localhost:9999/callback"
PASSWORD = "patient-password-1"


@pytest.fixture
def server(database_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url, base_url=f"{ROOT}/fhir"))
    with TestClient(app, base_url=ROOT, follow_redirects=False) as client:
        engine = app.state.engine
        with engine.begin() as conn:
            create_user(conn, "zhang.wei", PASSWORD, [(Role.PATIENT, "Organization/zju1")],
                        fhir_user="Patient/p1")
            create_user(conn, "dr.li", "doctor-password-1", [(Role.DOCTOR, "Organization/zju1")],
                        fhir_user="Practitioner/li")
            register_client(conn, "phone-app", "患者随访 App", redirect_uris=[APP_REDIRECT],
                            scope="openid fhirUser offline_access launch/patient patient/*.rs "
                                  "user/*.rs")
        yield client
    app.state.engine.dispose()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def _authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": "phone-app", "redirect_uri": APP_REDIRECT,
            "scope": "openid offline_access launch/patient patient/*.rs",
            "state": "s-123", "aud": f"{ROOT}/fhir", "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


def _sign_in(client: TestClient, params: dict[str, str], username: str,
             password: str) -> Any:
    page = client.get("/auth/authorize", params=params)
    assert page.status_code == 200, page.text
    form = dict(re.findall(r'name="(csrf|request)" value="([^"]*)"', page.text))
    return client.post("/auth/authorize", data={
        "csrf": form["csrf"], "request": form["request"].replace("&amp;", "&"),
        "username": username, "password": password})


def _code(response: Any) -> str:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == APP_REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["s-123"]
    return query["code"][0]


def test_a_patient_signs_in_and_the_app_reads_their_record(server: TestClient) -> None:
    verifier, challenge = _pkce()
    page = server.get("/auth/authorize", params=_authorize_params(challenge))
    assert "患者随访 App" in page.text and "patient/*.rs" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    code = _code(_sign_in(server, _authorize_params(challenge), "zhang.wei", PASSWORD))
    answer = server.post("/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT,
        "client_id": "phone-app", "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["patient"] == "p1" and token["token_type"] == "Bearer"
    assert "patient/*.rs" in token["scope"] and token["refresh_token"]
    assert answer.headers["cache-control"] == "no-store"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    admin = {"Authorization": f"Bearer {_admin_token(server)}"}
    server.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=admin)
    server.put("/fhir/Patient/p2", json={"resourceType": "Patient", "id": "p2"}, headers=admin)
    assert server.get("/fhir/Patient/p1", headers=bearer).status_code == 200
    assert server.get("/fhir/Patient/p2", headers=bearer).status_code == 404
    # The code is single use.
    again = server.post("/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT,
        "client_id": "phone-app", "code_verifier": verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def _admin_token(server: TestClient) -> str:
    from yilian.auth.tokens import issue

    return issue(server.app.state.keys, subject="admin", scope="system/*.cruds").token  # type: ignore[attr-defined]


def test_pkce_is_required_and_checked(server: TestClient) -> None:
    _, challenge = _pkce()
    # Without a challenge: back to the app with an error.
    params = _authorize_params(challenge)
    del params["code_challenge"], params["code_challenge_method"]
    refused = server.get("/auth/authorize", params=params)
    assert refused.status_code == 302
    assert "error=invalid_request" in refused.headers["location"]
    code = _code(_sign_in(server, _authorize_params(challenge), "zhang.wei", PASSWORD))
    wrong = server.post("/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT,
        "client_id": "phone-app", "code_verifier": _pkce()[0]})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    plain = server.get("/auth/authorize", params=_authorize_params(
        challenge, code_challenge_method="plain"))
    assert "error=invalid_request" in plain.headers["location"]


def test_unknown_apps_and_foreign_redirects_stay_on_our_page(server: TestClient) -> None:
    _, challenge = _pkce()
    for params in (_authorize_params(challenge, client_id="nobody"),
                   _authorize_params(challenge, redirect_uri="https://evil.example/cb")):
        page = server.get("/auth/authorize", params=params)
        assert page.status_code in (400, 401) and "location" not in page.headers
        assert 'name="password"' not in page.text
    wrong_audience = server.get("/auth/authorize", params=_authorize_params(
        challenge, aud="https://other.example/fhir"))
    assert "error=invalid_request" in wrong_audience.headers["location"]


def test_wrong_passwords_lock_the_account_and_forms_need_their_cookie(
        server: TestClient) -> None:
    _, challenge = _pkce()
    params = _authorize_params(challenge)
    failed = _sign_in(server, params, "zhang.wei", "not-the-password-1")
    assert failed.status_code == 401 and 'id="error"' in failed.text
    for _ in range(4):
        _sign_in(server, params, "zhang.wei", "not-the-password-1")
    locked = _sign_in(server, params, "zhang.wei", PASSWORD)
    assert locked.status_code == 401
    server.cookies.clear()
    forged = server.post("/auth/authorize", data={"csrf": "x", "request": "",
                                                  "username": "dr.li",
                                                  "password": "doctor-password-1"})
    assert forged.status_code == 400


def test_refresh_tokens_rotate_and_can_be_revoked(server: TestClient) -> None:
    verifier, challenge = _pkce()
    params = _authorize_params(challenge, scope="openid offline_access user/*.rs")
    code = _code(_sign_in(server, params, "dr.li", "doctor-password-1"))
    first = server.post("/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT,
        "client_id": "phone-app", "code_verifier": verifier}).json()
    assert "patient" not in first and first["scope"].endswith("user/*.rs")
    second = server.post("/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": "phone-app"})
    assert second.status_code == 200, second.text
    reused = server.post("/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": "phone-app"})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    latest = second.json()["refresh_token"]
    revoked = server.post("/auth/revoke", data={"token": latest, "client_id": "phone-app"})
    assert revoked.status_code == 200
    after = server.post("/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": latest, "client_id": "phone-app"})
    assert after.status_code == 400


def _service(server: TestClient) -> RSAKey:
    key = RSAKey.generate_key(2048, parameters={"kid": "lab-1"})
    engine = server.app.state.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        register_client(conn, "lab-system", "检验系统", scope="system/Observation.cruds "
                        "system/Patient.rs", jwks={"keys": [key.as_dict(private=False)]})
    return key


def _assertion(key: RSAKey, *, jti: str | None = None) -> str:
    now = int(time.time())
    claims = {"iss": "lab-system", "sub": "lab-system", "aud": f"{ROOT}/auth/token",
              "exp": now + 300, "jti": jti or secrets.token_hex(8)}
    return jwt.encode({"alg": "RS384", "kid": "lab-1"}, claims, key, algorithms=["RS384"])


def _client_credentials(key: RSAKey, scope: str, jti: str | None = None) -> Any:
    return {"grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": _assertion(key, jti=jti)}


def test_backend_services_sign_in_with_signed_assertions(server: TestClient) -> None:
    key = _service(server)
    answer = server.post("/auth/token", data=_client_credentials(
        key, "system/Observation.cruds system/Patient.rs system/Encounter.rs"))
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["scope"] == "system/Observation.cruds system/Patient.rs"
    assert "refresh_token" not in token
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert server.get("/fhir/Observation", headers=bearer).status_code == 200
    assert server.get("/fhir/Encounter", headers=bearer).status_code == 403
    # An assertion is good once; one signed by another key, never.
    replay = _client_credentials(key, "system/Patient.rs", jti="once")
    assert server.post("/auth/token", data=replay).status_code == 200
    assert server.post("/auth/token", data=replay).json()["error"] == "invalid_client"
    stranger = RSAKey.generate_key(2048, parameters={"kid": "lab-1"})
    forged = server.post("/auth/token", data=_client_credentials(stranger, "system/Patient.rs"))
    assert forged.status_code in (400, 401) and forged.json()["error"] == "invalid_client"
    # Introspection, by a service that signs in.
    seen = server.post("/auth/introspect", data={
        "token": token["access_token"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(key)})
    assert seen.status_code == 200, seen.text
    assert seen.json()["active"] is True and seen.json()["username"] == "client:lab-system"
    unknown = server.post("/auth/introspect", data={
        "token": "not-a-token",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(key)})
    assert unknown.json() == {"active": False}


def test_discovery_names_every_endpoint(server: TestClient) -> None:
    found = server.get("/.well-known/smart-configuration").json()
    assert found["authorization_endpoint"] == f"{ROOT}/auth/authorize"
    assert found["token_endpoint"] == f"{ROOT}/auth/token"
    assert found["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in found["token_endpoint_auth_methods_supported"]


def test_sign_in_needs_https_away_from_loopback(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, base_url="http://yilian.example/fhir"))
    with TestClient(app, base_url="http://yilian.example") as client:
        response = client.post("/auth/token", data={"grant_type": "client_credentials"})
        assert response.status_code == 400
        assert response.json()["error"] == "insecure_transport"
    app.state.engine.dispose()


def test_the_capability_statement_names_the_sign_in(server: TestClient) -> None:
    security = server.get("/fhir/metadata", headers={"Authorization": ""}).json()["rest"][0][
        "security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["token"] == f"{ROOT}/auth/token"
