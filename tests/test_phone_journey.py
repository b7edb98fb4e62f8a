"""A party's whole mediation on a phone, in Kazakh: Chromium at 390x844 with touch, the fake
camera and microphone. She signs in, joins the room from the case page, waits in the lobby, is
let in, sees and hears the mediator, is taken into a separate meeting, types into the shared
draft, approves it and signs it. Each step is photographed (artefacts to look at, not compared
pixel by pixel) and checked by axe-core."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.browser import (
    ARGS,
    CHROMIUM,
    FAKE_MEDIA,
    needs_axe,
    needs_chromium,
    serious_violations,
)
from tests.drafts.phone import PHONE
from tests.drafts.scenario import DraftScene, draft_scene
from tests.live import live_server
from tests.rooms.test_room_page import WATCH_MEDIA

pytestmark = [needs_chromium, needs_axe]

ROOT = Path(__file__).resolve().parent.parent
# Where the photographs go: test-artefacts/ (ignored by git) unless ODR_TEST_ARTEFACTS says.
ARTEFACTS = Path(os.environ.get("ODR_TEST_ARTEFACTS", ROOT / "test-artefacts")) / "phone-journey"
WAIT = 30_000  # two cores, a relay, two browsers and a server: generous


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DraftScene]:
    with live_server(tmp_path_factory.mktemp("journey"), ODR_ROOM_GRACE_SECONDS="30",
                     ODR_MEDIA_ADDRESSES='["127.0.0.1"]') as server:
        yield draft_scene(server, language="kk")


def test_a_party_mediates_and_signs_on_a_phone_in_kazakh(scene: DraftScene) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    server, case_id, draft_id = scene.server, scene.case_id, scene.draft_id
    a_id = scene.party_a.get("/api/v1/me").json()["id"]
    mediator_id = scene.mediator.get("/api/v1/me").json()["id"]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    expect.set_options(timeout=WAIT)

    def step(page: Page, name: str) -> None:
        page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=False)
        problems.extend(serious_violations(page, name))
        wide = page.evaluate("() => document.scrollingElement.scrollWidth - innerWidth")
        if wide > 0:
            problems.append(f"{name}: {wide}px wider than the phone")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + FAKE_MEDIA)
        # The mediator, on a laptop, is in the room first.
        desk = browser.new_context(base_url=server.url, locale="en-GB", bypass_csp=True,
                                   viewport={"width": 1280, "height": 800})
        desk.add_cookies([{"name": "odr_session", "url": server.url,
                           "value": scene.mediator.client.cookies["odr_session"]}])
        med = desk.new_page()
        med.set_default_timeout(WAIT)
        med.goto(f"/cases/{case_id}/room")
        med.wait_for_function("() => document.getElementById('room-preview').srcObject")
        med.click("#room-join")
        expect(med.locator("#room-mediator")).to_be_visible()

        phone = browser.new_context(base_url=server.url, bypass_csp=True, locale="kk-KZ",
                                    **PHONE)
        phone.add_init_script(WATCH_MEDIA)
        a = phone.new_page()
        a.set_default_timeout(WAIT)

        # She signs in with the form, and chooses Kazakh in the footer.
        email, password = server.logins["party A"]
        a.goto(f"/login?next=/cases/{case_id}")
        a.fill("#f-email", email)
        a.fill("#f-password", password)
        a.locator("form[action='/login'] button[type=submit]").tap()
        a.wait_for_url(re.compile(rf"/cases/{case_id}$"))
        a.locator(".languages a[hreflang='kk']").tap()
        expect(a.locator("html")).to_have_attribute("lang", "kk")
        step(a, "1-case-page")

        # The menu folds on the phone; tapping it shows the links.
        a.locator(".menu-toggle").tap()
        expect(a.locator("#site-nav a[href='/dashboard']")).to_be_visible()
        a.locator(".menu-toggle").tap()

        a.locator(f"a[href='/cases/{case_id}/room']").tap()
        a.wait_for_function("() => document.getElementById('room-preview').srcObject")
        a.locator("#room-join").tap()
        expect(a.locator("#room-lobby")).to_be_visible()
        step(a, "2-lobby")

        # The mediator lets her in: she sees and hears the mediator.
        med.click(f"#room-lobby-list li[data-user='{a_id}'] .room-admit")
        expect(a.locator("#room-main")).to_be_visible()
        a.wait_for_function(
            "(id) => document.querySelector(`#room-tiles figure[data-user='${id}'] video`)"
            "?.videoWidth > 0", arg=mediator_id)
        a.wait_for_function("async () => (await window.__mediaBytes()).audio_in > 4000")
        step(a, "3-joint-session")

        # A separate meeting: the banner says so in Kazakh.
        med.check(f"#room-caucus-people input[value='{a_id}']")
        med.click("#room-caucus-form button[type=submit]")
        banner = a.locator("#room-caucus-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("медиатор")
        step(a, "4-caucus")
        med.click("#room-recall")
        expect(banner).to_be_hidden()

        # The draft: she types a line, the server keeps it, she approves.
        a.goto(f"/cases/{case_id}")
        a.locator(f"a[href='/drafts/{draft_id}']").tap()
        expect(a.locator("#draft-status")).to_have_attribute("data-state", "connected")
        editor = a.locator("#draft-editor .ProseMirror")
        editor.tap()
        a.keyboard.press("Control+End")
        a.keyboard.type(" Төлем кестесі: ай сайын 100 000 теңге.")
        expect(editor).to_contain_text("Төлем кестесі")
        eventually(lambda: "ай сайын 100 000 теңге." in scene.text(), "the server's copy")
        step(a, "5-draft")
        a.locator("#draft-approve").tap()
        expect(a.locator("#draft-approve")).to_be_disabled()

        # The other side approves and the mediator freezes it; then she signs.
        assert scene.party_b.post(f"/api/v1/drafts/{draft_id}/approve").status_code == 200
        assert scene.mediator.post(f"/api/v1/drafts/{draft_id}/freeze").status_code == 200
        a.goto(f"/cases/{case_id}")
        a.locator(f"a[href='/drafts/{draft_id}/sign']").first.tap()
        a.wait_for_url(re.compile(r"/sign$"))
        step(a, "6-signing")
        a.fill("#f-full_name", scene.party_a.full_name)
        a.fill("#f-password", password)
        a.locator("form[action$='/sign'] button[type=submit]").tap()
        a.wait_for_url(re.compile(r"done=signed"))
        expect(a.locator(".people")).to_contain_text(scene.party_a.full_name)
        step(a, "7-signed")
        browser.close()

    agreement = scene.party_b.get(f"/api/v1/drafts/{draft_id}/agreement").json()
    assert [s["name"] for s in agreement["signatories"] if s["signed_at"]] == [
        scene.party_a.full_name]
    assert not problems, "\n".join(problems)
    assert sorted(p.name for p in ARTEFACTS.glob("*.png"))[0] == "1-case-page.png"


def eventually(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(0.2)  # a poll's pace, not a wait for the event
