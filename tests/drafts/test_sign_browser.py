"""Chromium on a phone (390x844, touch): a party opens the frozen agreement's signing page,
confirms and signs, with a password or with a code sent by e-mail; the page fits the screen, its
fields are big, and the buttons show that they are working while the server signs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import needs_chromium
from tests.drafts.phone import BusyWatch, Held, assert_no_horizontal_overflow, phone_context
from tests.drafts.scenario import DraftScene, draft_scene
from tests.live import live_server, query

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DraftScene]:
    """The demo case's draft, approved by both parties and frozen for signature."""
    with live_server(tmp_path_factory.mktemp("sign-browser")) as server:
        scene = draft_scene(server)
        for party in (scene.party_a, scene.party_b):
            assert party.post(f"/api/v1/drafts/{scene.draft_id}/approve").status_code == 200
        assert scene.mediator.post(f"/api/v1/drafts/{scene.draft_id}/freeze").status_code == 200
        yield scene


def assert_thumb_sized(page: Any, selector: str) -> None:
    """At least 44px high and a 16px font (a smaller one makes phones zoom into the field)."""
    height, font = page.locator(selector).evaluate(
        "e => [e.getBoundingClientRect().height, parseFloat(getComputedStyle(e).fontSize)]")
    assert height >= 44 and font >= 16, (selector, height, font)


def signed_names(scene: DraftScene) -> list[str]:
    agreement = scene.mediator.get(f"/api/v1/drafts/{scene.draft_id}/agreement").json()
    return [s["name"] for s in agreement["signatories"] if s["signed_at"]]


def test_a_party_signs_from_the_page(scene: DraftScene, browser: Any) -> None:
    from playwright.sync_api import expect

    server = scene.server
    email, password = server.logins["party A"]
    name = scene.party_a.get("/api/v1/me").json()["name"]
    context = phone_context(browser)
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = BusyWatch(page)
    page.goto(f"{server.url}/login?next=/cases/{scene.case_id}")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(rf"/cases/{scene.case_id}$"))
    page.click(f"a[href='/drafts/{scene.draft_id}/sign']")
    page.wait_for_url(re.compile(r"/sign$"))
    expect(page.locator("a[href$='.pdf']")).to_be_visible()
    assert_no_horizontal_overflow(page)
    for field in ("#f-full_name", "#f-password", "form[action$='/sign'] button[type=submit]"):
        assert_thumb_sized(page, field)
    button = page.locator("form[action$='/sign'] button[type=submit]")
    assert button.evaluate("b => b.getBoundingClientRect().width") >= 300  # the whole width

    page.fill("#f-full_name", "Кто-то другой")
    page.fill("#f-password", password)
    page.tap("form[action$='/sign'] button[type=submit]")
    expect(page.locator("#full_name-error")).to_be_visible()  # refused, nothing signed
    assert_no_horizontal_overflow(page)

    # Signing renders and seals the PDF: while the server works the button says so.
    page.fill("#f-full_name", name)
    page.fill("#f-password", password)
    watch.arm("form[action$='/sign']")
    held = Held(page, f"**/drafts/{scene.draft_id}/sign")
    page.tap("form[action$='/sign'] button[type=submit]", no_wait_after=True)
    busy = watch.wait()
    assert busy == {"text": "Подписываем…", "disabled": True, "spinner": True,
                    "status": "Подписываем…"}, busy
    held.release()
    page.wait_for_url(re.compile(r"done=signed"))
    expect(page.locator(".people")).to_contain_text(name)
    expect(page.locator("form[action$='/sign']")).to_have_count(0)
    assert_no_horizontal_overflow(page)
    context.close()
    assert signed_names(scene) == [name]


def test_a_party_without_a_password_signs_with_a_code(scene: DraftScene, browser: Any) -> None:
    """The code is asked for first, then typed into a numeric field the phone can fill in
    from the message; both buttons show their progress."""
    from playwright.sync_api import expect

    server = scene.server
    email = server.logins["party B"][0]
    query(server, 'update "user" set password_hash = null where email = ?', email)
    name = scene.party_b.get("/api/v1/me").json()["name"]
    context = phone_context(browser)
    cookie = scene.party_b.client.cookies["odr_session"]
    context.add_cookies([{"name": "odr_session", "value": cookie, "url": server.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = BusyWatch(page)
    page.goto(f"{server.url}/drafts/{scene.draft_id}/sign")
    assert_no_horizontal_overflow(page)

    code = page.locator("#f-code")
    expect(code).to_have_attribute("inputmode", "numeric")
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    expect(page.locator("#f-password")).to_have_count(0)
    assert_thumb_sized(page, "#f-code")
    assert_thumb_sized(page, "#f-full_name")
    # "Send me a code" comes before the field the code goes into.
    request_y = page.locator("form[action$='/sign/code'] button").bounding_box()["y"]
    assert request_y < code.bounding_box()["y"]

    send = page.locator("form[action$='/sign/code'] button[type=submit]")
    watch.arm("form[action$='/sign/code']")
    held = Held(page, f"**/drafts/{scene.draft_id}/sign/code")
    send.tap(no_wait_after=True)
    busy = watch.wait()
    assert busy["text"] == "Отправляем…" and busy["disabled"] and busy["spinner"], busy
    held.release()
    page.wait_for_url(re.compile(r"done=code_sent"))
    expect(send).to_be_enabled()
    expect(send).to_have_text("Отправить мне код")

    rows = query(server, 'select body from outboxmail where "to" = ? order by id desc', email)
    sent = re.search(r"\b(\d{6})\b", rows[0][0])
    assert sent is not None, rows[0][0]
    page.fill("#f-full_name", name)
    page.fill("#f-code", sent[1])
    watch.arm("form[action$='/sign']")
    held = Held(page, f"**/drafts/{scene.draft_id}/sign")
    # The phone keyboard's "done" sends the form.
    page.locator("#f-code").press("Enter", no_wait_after=True)
    busy = watch.wait()
    assert busy["text"] == "Подписываем…" and busy["disabled"] and busy["spinner"], busy
    held.release()
    page.wait_for_url(re.compile(r"done=signed"))
    expect(page.locator("form[action$='/sign']")).to_have_count(0)
    context.close()
    assert name in signed_names(scene)
