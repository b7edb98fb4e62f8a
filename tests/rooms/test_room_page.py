"""Chromium in the room page: a mediator and two parties join, are admitted from the lobby, talk
in the joint session, and a caucus with one side hides it from the other on the page."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser import needs_chromium
from tests.rooms.conftest import Cast, Server, User

pytestmark = needs_chromium


def open_room(browser: Any, server: Server, user: User, case_id: int,
              viewport: dict[str, int] | None = None) -> Any:
    context = browser.new_context(locale="en-GB",
                                  viewport=viewport or {"width": 1280, "height": 900})
    context.add_cookies([{"name": "odr_session", "value": user.cookie, "url": server.url}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{server.url}/cases/{case_id}/room")
    # The preview runs on the fake camera before joining.
    # Functions, not expression strings: Playwright evals strings in the page, which the CSP
    # (rightly) refuses.
    page.wait_for_function("() => document.getElementById('room-preview').srcObject !== null")
    page.click("#room-join")
    return page


def test_room_page_lobby_admit_caucus(room_server: Server, people: Cast, browser: Any) -> None:
    from playwright.sync_api import expect

    server, cast = room_server, people
    case_id = server.case(cast)

    med = open_room(browser, server, cast.mediator, case_id)
    expect(med.locator("#room-where")).to_contain_text("Joint session")
    expect(med.locator("#room-mediator")).to_be_visible()

    # Party A on a phone, party B on a laptop: both wait in the lobby until admitted.
    a = open_room(browser, server, cast.party_a, case_id, {"width": 390, "height": 844})
    b = open_room(browser, server, cast.party_b, case_id)
    for guest, user in ((a, cast.party_a), (b, cast.party_b)):
        expect(guest.locator("#room-lobby")).to_be_visible()
        expect(guest.locator("#room-where")).to_contain_text("Waiting room")
        expect(med.locator("#room-alerts")).to_contain_text(f"{user.name} is waiting")
        med.click(f"#room-lobby-list li[data-user='{user.id}'] .room-admit")
        expect(guest.locator("#room-main")).to_be_visible()
        expect(guest.locator("#room-where")).to_contain_text("Joint session")

    for page in (med, a, b):
        expect(page.locator("#room-tiles figure")).to_have_count(3)
    expect(b.locator(f"#room-tiles figure[data-user='{cast.party_a.id}'] figcaption")
           ).to_contain_text(cast.party_a.name)
    expect(b.locator("#room-where")).to_contain_text(cast.mediator.name)
    media = a.evaluate("JSON.parse(document.getElementById('room-config').textContent).media")
    if media:  # with the relay: each sees the others' (fake camera) video
        for viewer, shown in ((b, cast.party_a), (a, cast.party_b), (med, cast.party_b)):
            viewer.wait_for_function(
                "() => document.querySelector("
                f"\"#room-tiles figure[data-user='{shown.id}'] video\")"
                "?.videoWidth > 0", timeout=20_000)

    a.fill("#room-chat-text", "Hello from A")
    a.click("#room-chat-form button")
    expect(b.locator("#room-chat-log")).to_contain_text("Hello from A")

    # A countdown for the joint session: everyone in it sees it tick.
    med.fill("#room-timer-minutes", "5")
    med.click("#room-timer-form button[type=submit]")
    for page in (med, a, b):
        expect(page.locator("#room-timer")).to_contain_text("Time left: 4:5")
    med.click("#room-timer-stop")
    expect(b.locator("#room-timer")).to_be_hidden()

    # The mediator takes A aside.
    med.check(f"#room-caucus-people input[value='{cast.party_a.id}']")
    med.click("#room-caucus-form button[type=submit]")
    expect(a.locator("#room-where")).to_contain_text("Separate meeting")
    expect(a.locator("#room-where.in-caucus")).to_be_visible()
    expect(a.locator("#room-tiles figure")).to_have_count(2)
    expect(b.locator("#room-tiles figure")).to_have_count(1)
    expect(b.locator("#room-where")).to_contain_text("Joint session")
    expect(b.locator("#room-where")).to_contain_text("nobody")
    expect(med.locator("#room-channel-list .room-channel")).to_have_count(2)
    # The mediator watches their own time with each side tick (the parties do not).
    expect(med.locator("#room-neutrality")).to_contain_text("joint session")
    first = med.inner_text("#room-neutrality-text")
    med.wait_for_function(
        "(before) => document.getElementById('room-neutrality-text').textContent !== before"
        " && /with side A 0:0[1-9]/.test(document.getElementById('room-neutrality-text')"
        ".textContent)", arg=first, timeout=5_000)
    expect(a.locator("#room-neutrality")).to_be_hidden()

    a.fill("#room-chat-text", "Our lowest offer")
    a.click("#room-chat-form button")
    expect(med.locator("#room-chat-log")).to_contain_text("Our lowest offer")
    b.fill("#room-chat-text", "Is anyone there?")
    b.click("#room-chat-form button")
    expect(b.locator("#room-chat-log")).to_contain_text("Is anyone there?")
    expect(b.locator("#room-chat-log")).not_to_contain_text("Our lowest offer")
    assert "Our lowest offer" not in b.content()
    assert str(cast.party_a.id) not in (b.locator("#room-tiles").inner_html())

    # A calls the mediator from the caucus; everyone is recalled to the joint session.
    a.click("#room-call")
    expect(med.locator("#room-alerts")).to_contain_text(f"{cast.party_a.name} is calling")
    med.click("#room-recall")
    for page in (med, a, b):
        expect(page.locator("#room-tiles figure")).to_have_count(3)
    if media:
        b.wait_for_function(
            "() => document.querySelector("
            f"\"#room-tiles figure[data-user='{cast.party_a.id}'] video\")"
            "?.videoWidth > 0", timeout=20_000)
    expect(a.locator("#room-where")).to_contain_text("Joint session")

    # A's phone is on a weak link: sound only, then video again (one button, both ways).
    a.click("#room-sound-only")
    expect(a.locator("#room-sound-only")).to_have_text("Show video")
    expect(a.locator("#room-sound-only")).to_have_attribute("aria-pressed", "true")
    expect(a.locator(f"#room-tiles figure[data-user='{cast.party_b.id}'].no-video")
           ).to_have_count(1)
    a.click("#room-sound-only")
    expect(a.locator("#room-sound-only")).to_have_text("Sound only")
    if media:
        a.wait_for_function(
            "() => document.querySelector("
            f"\"#room-tiles figure[data-user='{cast.party_b.id}'] video\")"
            "?.videoWidth > 0", timeout=20_000)

    # The case is now in session for everyone who looks at it.
    status = httpx.get(f"{server.url}/api/v1/cases/{case_id}", timeout=10,
                       cookies={"odr_session": cast.party_b.cookie}).json()["status"]
    assert status == "in_session"
    for page in (med, a, b):
        page.context.close()
