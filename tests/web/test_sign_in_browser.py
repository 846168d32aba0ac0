"""The sign-in page in a real browser (Debian's Chromium, driven by Playwright): a patient
signs in to an app, a wrong password is said so, and the app gets a code it can exchange."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from browser import ARGS, CHROMIUM, needs_chromium
from servers import free_port, serving

from yilian.api.app import create_app
from yilian.auth.oauth import register_client
from yilian.auth.roles import Role
from yilian.auth.service import create_user
from yilian.config import Settings

pytestmark = needs_chromium


@pytest.fixture
def site(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A real server with a patient account and an app whose redirect comes back to us."""
    path = tmp_path / "browser.db"
    path.write_bytes(sqlite_template.read_bytes())
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    app = create_app(Settings(database_url=f"sqlite:///{path}", base_url=f"{root}/fhir"))
    with app.state.engine.begin() as conn:
        create_user(conn, "zhang.wei", "patient-password-1",
                    [(Role.PATIENT, "Organization/zju1")], fhir_user="Patient/p1")
        register_client(conn, "phone-app", "患者随访 App", redirect_uris=[f"{root}/healthz"],
                        scope="openid offline_access patient/*.rs")
    with serving(app, port):
        yield root


def test_a_patient_signs_in_through_the_page(site: str) -> None:
    from playwright.sync_api import sync_playwright

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": "phone-app",
                       "redirect_uri": f"{site}/healthz", "scope": "patient/*.rs",
                       "state": "xyz", "aud": f"{site}/fhir", "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(locale="zh-CN")
        page.goto(f"{site}/auth/authorize?{query}")
        assert "登录" in page.title()
        assert page.get_by_text("患者随访 App").is_visible()
        page.get_by_label("用户名").fill("zhang.wei")
        page.get_by_label("密码").fill("wrong-password-1")
        page.get_by_role("button", name="登录").click()
        alert = page.get_by_role("alert")
        assert alert.is_visible() and "用户名或密码错误" in alert.inner_text()
        assert page.get_by_label("用户名").input_value() == "zhang.wei"  # kept for a retry
        page.get_by_label("密码").fill("patient-password-1")
        with page.expect_navigation(url=f"{site}/healthz?*"):
            page.get_by_role("button", name="登录").click()
        landed = urlsplit(page.url)
        browser.close()
    returned = parse_qs(landed.query)
    assert returned["state"] == ["xyz"]
    token = httpx.post(f"{site}/auth/token", data={
        "grant_type": "authorization_code", "code": returned["code"][0],
        "redirect_uri": f"{site}/healthz", "client_id": "phone-app", "code_verifier": verifier})
    assert token.status_code == 200, token.text
    assert token.json()["patient"] == "p1"
