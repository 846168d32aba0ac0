"""The pages over HTTP: signing in, the bed board and its actions, the census; CSRF, open
redirects and languages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fhir_helpers import admin_token, put_all
from inpatient_network import CARDIOLOGY, DOCTOR, network
from starlette.testclient import TestClient

from yilian.auth.roles import Role
from yilian.auth.service import create_user

PASSWORD = "nurse-password-2026"


@pytest.fixture
def pages(client: TestClient) -> TestClient:
    """The hand-written network, a nurse of its hospital, and a browser-like client."""
    put_all(client, network())
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        create_user(conn, "nurse.li", PASSWORD, [(Role.NURSE, "Organization/hosp")])
    del client.headers["Authorization"]  # the pages sign in with a password, not a token
    return client


def sign_in(client: TestClient, password: str = PASSWORD, target: str = "/ui/inpatient/board"
            ) -> object:
    form = client.get(f"/ui/login?next={target}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    return client.post(f"/ui/login?next={target}", data={
        "csrf": csrf.group(1), "username": "nurse.li", "password": password},
        follow_redirects=False)


def csrf_of(client: TestClient) -> str:
    return str(client.cookies.get("yl_csrf"))


def test_pages_ask_to_sign_in_first(pages: TestClient) -> None:
    response = pages.get("/ui/inpatient/board?campus=c1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/inpatient/board%3Fcampus%3Dc1"
    login = pages.get("/ui/login")
    assert '<html lang="zh-CN">' in login.text and "登录" in login.text
    assert login.headers["x-frame-options"] == "DENY"
    english = pages.get("/ui/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Sign in" in english.text


def test_a_wrong_password_is_refused_and_a_right_one_opens_the_board(
        pages: TestClient) -> None:
    refused = sign_in(pages, "wrong-password-0")
    assert refused.status_code == 401  # type: ignore[attr-defined]
    assert "用户名或密码错误" in refused.text  # type: ignore[attr-defined]
    assert "yl_session" not in pages.cookies
    signed_in = sign_in(pages)
    assert signed_in.status_code == 303  # type: ignore[attr-defined]
    cookie = signed_in.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "yl_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    board = pages.get("/ui/inpatient/board")
    assert board.status_code == 200
    assert 'id="bed-b1"' in board.text and "心内一病区" in board.text
    assert 'id="bed-b-other"' not in board.text  # another hospital's bed
    assert ">nurse.li<" in board.text


def test_the_sign_in_form_needs_its_csrf_token(pages: TestClient) -> None:
    pages.get("/ui/login")
    response = pages.post("/ui/login", data={"csrf": "forged", "username": "nurse.li",
                                             "password": PASSWORD})
    assert response.status_code == 400
    assert "yl_session" not in pages.cookies


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x",
                                    "/fhir/Patient", "/ui\\..\\x"])
def test_sign_in_never_sends_the_user_elsewhere(pages: TestClient, target: str) -> None:
    response = sign_in(pages, target=target)
    assert response.headers["location"] == "/ui/"  # type: ignore[attr-defined]


def test_admitting_from_the_board_changes_it(pages: TestClient) -> None:
    sign_in(pages)
    form = pages.get("/ui/inpatient/beds/b1/admit", params={"campus": "c1", "name": "01床"})
    assert form.status_code == 200 and "李医生" in form.text and "心血管内科" in form.text
    found = pages.get("/ui/inpatient/patients", params={"q": "王"})
    assert 'value="man"' in found.text and "王建国" in found.text
    data = {"campus": "c1", "ward": "", "status": "", "department": CARDIOLOGY,
            "patient": "man", "practitioner": DOCTOR, "diagnosis": "I21.9 急性心肌梗死",
            "admitSource": "emergency"}
    forged = pages.post("/ui/inpatient/beds/b1/admit", data=data,
                        headers={"HX-Request": "true", "X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    assert 'data-status="U"' in pages.get("/ui/inpatient/board?campus=c1&ward=w-card").text
    answer = pages.post("/ui/inpatient/beds/b1/admit", data=data,
                        headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(pages)})
    assert answer.status_code == 200
    assert 'class="message good"' in answer.text and "已入院" in answer.text
    bed = re.search(r'<article class="bed s-O" id="bed-b1".*?</article>', answer.text, re.S)
    assert bed is not None and "王建国" in bed.group(0)
    again = pages.post("/ui/inpatient/beds/b2/admit", data=data,
                       headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(pages)})
    assert 'class="message bad"' in again.text and "in hospital already" in again.text
    assert "患者已在院" in again.text  # the clerk reads why in Chinese first


def test_the_census_page_counts_and_draws(pages: TestClient) -> None:
    sign_in(pages)
    page = pages.get("/ui/inpatient/census", params={"hospital": "hosp"})
    assert page.status_code == 200
    assert 'id="census-chart"' in page.text and "<polyline" in page.text
    assert '<option value="hosp" selected>第一医院</option>' in page.text
    bad = pages.get("/ui/inpatient/census", params={"from": "2026-13-01"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text


def test_languages_and_signing_out(pages: TestClient) -> None:
    sign_in(pages)
    switched = pages.post("/ui/language", data={"locale": "en",
                                                "next": "/ui/inpatient/board?campus=c1"},
                          follow_redirects=False)
    assert switched.headers["location"] == "/ui/inpatient/board?campus=c1"
    board = pages.get("/ui/inpatient/board?campus=c1")
    assert "Bed board" in board.text and "Occupancy" in board.text
    pages.post("/ui/logout", data={"csrf": csrf_of(pages)})
    assert pages.get("/ui/inpatient/board", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session_token_itself(pages: TestClient) -> None:
    """A copy of the session cookie (or the token in it, sent as a bearer token) is refused
    once its owner signed out, and the sign-out is on the audit trail."""
    sign_in(pages)
    token = str(pages.cookies.get("yl_session"))
    bearer = {"Authorization": f"Bearer {token}"}
    assert pages.get("/fhir/Patient/man", headers=bearer).status_code == 200
    pages.post("/ui/logout", data={"csrf": csrf_of(pages)})
    pages.cookies.set("yl_session", token)  # the copy, put back
    copied = pages.get("/ui/inpatient/board", follow_redirects=False)
    assert copied.status_code == 303 and copied.headers["location"].startswith("/ui/login")
    refused = pages.get("/fhir/Patient/man", headers=bearer)
    assert refused.status_code == 401 and "signed out" in refused.text
    # Signing out again with the old token changes nothing; a new sign-in works.
    pages.post("/ui/logout", data={"csrf": csrf_of(pages)})
    pages.cookies.clear()
    sign_in(pages)
    assert pages.get("/ui/inpatient/board").status_code == 200
    pages.app.state.audit.flush()  # type: ignore[attr-defined]
    officer = {"Authorization": f"Bearer {admin_token(pages.app.state.keys)}"}  # type: ignore[attr-defined]
    trail = pages.get("/fhir/$audit-trail?agent-name=user nurse.li", headers=officer).json()
    subtypes = [e["resource"]["subtype"][0]["code"] for e in trail["entry"]]
    assert subtypes.count("110123") == 1 and subtypes.count("110122") == 2  # DICOM: logout, login


def test_every_board_shown_is_audited_with_its_patients(pages: TestClient) -> None:
    sign_in(pages)
    data = {"campus": "c1", "department": CARDIOLOGY, "patient": "man",
            "practitioner": DOCTOR, "diagnosis": "I21.9"}
    pages.post("/ui/inpatient/beds/b1/admit", data=data,
               headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(pages)})
    pages.get("/ui/inpatient/board?campus=c1")
    app = pages.app  # type: ignore[attr-defined]
    app.state.audit.flush()
    keys = app.state.keys
    trail = pages.get("/fhir/$audit-trail", params={"entity": "Patient/man",
                                                    "agent-name": "user nurse.li"},
                      headers={"Authorization": f"Bearer {admin_token(keys)}"}).json()
    paths = [e["resource"]["entity"] for e in trail.get("entry", [])]
    assert len(paths) >= 2, trail  # the admission and the board that showed him


@pytest.mark.parametrize(("path", "data", "headers"), [
    ("/ui/login", {"csrf": "é", "username": "x", "password": "y"}, {}),
    ("/ui/inpatient/beds/b1/state", {"action": "reserve", "hours": "²", "campus": "c1"},
     {"X-CSRF-Token": "é".encode("latin-1")}),
])
def test_odd_input_is_never_a_server_error(pages: TestClient, path: str,
                                           data: dict[str, str],
                                           headers: dict[str, Any]) -> None:
    sign_in(pages)
    response = pages.post(path, data=data, headers=headers)
    assert response.status_code < 500
