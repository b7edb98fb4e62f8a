"""Chromium: a party opens the frozen agreement's signing page, confirms and signs."""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser import ARGS, CHROMIUM, needs_chromium
from tests.drafts.scenario import draft_scene
from tests.live import live_server


@needs_chromium
def test_a_party_signs_from_the_page(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with live_server(tmp_path) as server:
        scene = draft_scene(server)
        for party in (scene.party_a, scene.party_b):
            assert party.post(f"/api/v1/drafts/{scene.draft_id}/approve").status_code == 200
        assert scene.mediator.post(f"/api/v1/drafts/{scene.draft_id}/freeze").status_code == 200
        email, password = server.logins["party A"]
        name = scene.party_a.get("/api/v1/me").json()["name"]

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 844}
                                       ).new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{server.url}/login?next=/cases/{scene.case_id}")
            page.fill("#f-email", email)
            page.fill("#f-password", password)
            page.click("form[action='/login'] button[type=submit]")
            page.wait_for_url(re.compile(rf"/cases/{scene.case_id}$"))
            page.click(f"a[href='/drafts/{scene.draft_id}/sign']")
            page.wait_for_url(re.compile(r"/sign$"))
            expect(page.locator("a[href$='.pdf']")).to_be_visible()

            page.fill("#f-full_name", "Кто-то другой")
            page.fill("#f-password", password)
            page.click("form[action$='/sign'] button[type=submit]")
            expect(page.locator("#full_name-error")).to_be_visible()  # refused, nothing signed

            page.fill("#f-full_name", name)
            page.fill("#f-password", password)
            page.click("form[action$='/sign'] button[type=submit]")
            page.wait_for_url(re.compile(r"done=signed"))
            expect(page.locator(".people")).to_contain_text(name)
            expect(page.locator("form[action$='/sign']")).to_have_count(0)
            browser.close()

        agreement = scene.party_b.get(f"/api/v1/drafts/{scene.draft_id}/agreement").json()
        assert [s["name"] for s in agreement["signatories"] if s["signed_at"]] == [name]
