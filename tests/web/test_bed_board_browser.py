"""The bed board in a real browser (Debian's Chromium, driven by Playwright): a nurse signs
in, admits a patient, transfers and discharges them, and watches the board change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import ARGS, CHROMIUM, needs_chromium
from fhir_helpers import FHIR_JSON, admin_token, put_entry
from inpatient_network import network
from servers import free_port, serving

from yilian.api.app import create_app
from yilian.auth.roles import Role
from yilian.auth.service import create_user
from yilian.config import Settings

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".cache" / "screenshots"

pytestmark = needs_chromium


@pytest.fixture
def site(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A real server with the hand-written network and a nurse of its hospital."""
    path = tmp_path / "board.db"
    path.write_bytes(sqlite_template.read_bytes())
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    app = create_app(Settings(database_url=f"sqlite:///{path}", base_url=f"{root}/fhir"))
    with app.state.engine.begin() as conn:
        create_user(conn, "nurse.wang", "nurse-password-2026",
                    [(Role.NURSE, "Organization/hosp")])
    with serving(app, port):
        bundle = {"resourceType": "Bundle", "type": "transaction",
                  "entry": [put_entry(r) for r in network()]}
        loaded = httpx.post(f"{root}/fhir", json=bundle, timeout=60, headers={
            **FHIR_JSON, "Authorization": f"Bearer {admin_token(app.state.keys)}"})
        assert loaded.status_code == 200, loaded.text
        yield root


def wait_for_htmx(page: Any, selector: str) -> None:
    """Until htmx has bound the element swapped in (a person types later than a test)."""
    page.wait_for_function(
        "(s) => document.querySelector(s)?.['htmx-internal-data'] !== undefined", arg=selector)


def test_a_nurse_admits_transfers_and_discharges_from_the_board(site: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=20_000)  # a loaded CI machine answers slowly, not wrongly
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        page.goto(f"{site}/ui/inpatient/board")
        page.get_by_label("用户名").fill("nurse.wang")
        page.get_by_label("密码").fill("nurse-password-2026")
        page.get_by_role("button", name="登录").click()
        bed1, bed2 = page.locator("#bed-b1"), page.locator("#bed-b2")
        expect(bed1).to_have_attribute("data-status", "U")
        expect(page.locator("#user")).to_have_text("nurse.wang")

        # Admit 王建国 to 01床 of the cardiology ward.
        bed1.get_by_role("button", name="入院").click()
        form = page.locator("#admit-form")
        expect(form).to_be_visible()
        wait_for_htmx(page, "#patient-search")
        form.get_by_label("患者：姓名、身份证号或病案号").fill("王")
        expect(form.get_by_label("王建国", exact=False)).to_be_visible()
        form.get_by_label("入院诊断（ICD-10）").fill("I21.9 急性心肌梗死")
        form.get_by_label("入院途径").select_option("emergency")
        page.screenshot(path=str(SCREENSHOTS / "admit-form.png"))
        form.get_by_role("button", name="入院").click()
        expect(page.locator("#message")).to_have_text("已入院")
        expect(bed1).to_have_attribute("data-status", "O")
        expect(bed1).to_contain_text("王建国")
        expect(page.locator("#admit-form")).to_have_count(0)  # the panel closes
        page.screenshot(path=str(SCREENSHOTS / "board-admitted.png"))

        # Transfer to 02床; 01床 goes to cleaning.
        bed1.get_by_role("button", name="转床").click()
        transfer = page.locator("#transfer-form")
        transfer.get_by_label("转至空床").select_option("b2")
        transfer.get_by_label("原因").fill("靠窗")
        transfer.get_by_role("button", name="转床").click()
        expect(page.locator("#message")).to_have_text("已转床")
        expect(bed2).to_have_attribute("data-status", "O")
        expect(bed1).to_have_attribute("data-status", "H")

        # Discharge from 02床, then the bed is cleaned and free again.
        bed2.get_by_role("button", name="出院").click()
        discharge = page.locator("#discharge-form")
        discharge.get_by_label("离院方式").select_option("home")
        discharge.get_by_label("出院诊断（ICD-10）").fill("I21.9")
        discharge.get_by_label("出院小结").fill("好转出院，嘱按时服药。")
        discharge.get_by_role("button", name="出院").click()
        expect(page.locator("#message")).to_have_text("已出院")
        expect(bed2).to_have_attribute("data-status", "H")
        bed2.get_by_role("button", name="清洁完成").click()
        expect(bed2).to_have_attribute("data-status", "U")
        expect(page.locator("#count-O")).to_have_text("0")

        # A refusal is shown on the board: the pediatric ward does not take him.
        page.locator("#bed-b-ped").get_by_role("button", name="入院").click()
        child_form = page.locator("#admit-form")
        wait_for_htmx(page, "#patient-search")
        child_form.get_by_label("患者：姓名、身份证号或病案号").fill("王")
        expect(child_form.get_by_label("王建国", exact=False)).to_be_visible()
        child_form.get_by_label("入院诊断（ICD-10）").fill("J18.9")
        child_form.get_by_role("button", name="入院").click()
        expect(page.locator("#message")).to_contain_text("aged")
        expect(page.locator("#bed-b-ped")).to_have_attribute("data-status", "U")

        # The same board in English.
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("link", name="Bed board")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "board-english.png"))
        browser.close()
