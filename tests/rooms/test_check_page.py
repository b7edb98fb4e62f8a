"""Chromium on the device check page with fake devices: camera, microphone, speaker and a real
call to the server's echo, which sends the page's sound back over the relay's own path."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser import needs_chromium
from tests.rooms.conftest import Cast, Server

pytestmark = needs_chromium


def test_the_check_finds_every_device_working_and_the_relay_answering(
        room_server: Server, people: Cast, browser: Any) -> None:
    from playwright.sync_api import expect

    server, cast = room_server, people
    case_id = server.case(cast)
    # Reached from the room's set-up, with the way back.
    room = httpx.get(f"{server.url}/cases/{case_id}/room",
                     cookies={"odr_session": cast.party_b.cookie})
    assert f'href="/check?back={case_id}"' in room.text
    context = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844})
    context.add_cookies([{"name": "odr_session", "value": cast.party_b.cookie,
                          "url": server.url}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    response = page.goto(f"{server.url}/check?back={case_id}")
    assert response is not None and response.status == 200
    assert "camera=(self)" in (response.headers.get("permissions-policy") or "")
    page.click("#check-start")
    expect(page.locator("#check-camera")).to_have_attribute("data-status", "ok")
    expect(page.locator("#check-microphone")).to_have_attribute("data-status", "ok")
    expect(page.locator("#check-connection")).to_have_attribute("data-status", "ok")
    expect(page.locator("#check-connection .check-result")).to_contain_text(
        "Connected to the platform's media server: round trip")
    assert int(page.get_attribute("#check-connection", "data-received") or 0) > 0
    page.click("#check-play")
    page.click("#check-heard-no")
    expect(page.locator("#check-speaker .check-result")).to_contain_text("Turn the volume up")
    page.click("#check-play")
    page.click("#check-heard-yes")
    expect(page.locator("#check-speaker")).to_have_attribute("data-status", "ok")
    expect(page.locator("a[href$='/room']")).to_have_attribute(
        "href", f"/cases/{case_id}/room")
    context.close()


def test_the_echo_wants_a_signed_in_person_and_a_usable_offer(room_server: Server,
                                                              people: Cast) -> None:
    server = room_server
    anonymous = httpx.post(f"{server.url}/api/v1/check/echo", json={"sdp": "v=0"},
                           headers={"origin": server.url})
    assert anonymous.status_code == 401
    client = people.party_a.client
    token = client.get("/check").text.split('name="csrf-token" content="')[1].split('"')[0]
    bad = client.post("/api/v1/check/echo", json={"sdp": "v=0\r\nnot an offer"},
                      headers={"x-csrf-token": token, "origin": server.url})
    assert bad.status_code == 400, bad.text
    assert bad.json()["detail"] == "The browser's offer could not be used."
