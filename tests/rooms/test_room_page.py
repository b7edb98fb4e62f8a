"""Chromium in the room page: a mediator and two parties join, are admitted from the lobby, talk
in the joint session, and a caucus with one side hides it from the other on the page; and the
room on a phone (layout, caucus banner, sound only, what is read out, keyboard)."""

from __future__ import annotations

import re
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


# --- the room on a phone (issue 15) -----------------------------------------------------------

PHONE = {"width": 390, "height": 844}
WAIT = 20_000  # generous: two cores, and other tests running beside these
CONTROLS = ["room-mute", "room-camera-toggle", "room-sound-only", "room-chat-jump",
            "room-call", "room-leave"]

# Every RTCPeerConnection the page makes, and the bytes they moved by kind, so that the test can
# see what is sent and received (an init script: it runs before the page's own, past the CSP).
WATCH_MEDIA = """(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
  window.__mediaBytes = async () => {
    const out = { audio_in: 0, video_in: 0, audio_out: 0, video_out: 0 };
    for (const pc of window.__pcs) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp") out[`${r.kind}_in`] += r.bytesReceived || 0;
        if (r.type === "outbound-rtp") out[`${r.kind}_out`] += r.bytesSent || 0;
      });
    }
    return out;
  };
})();"""

# True once sound has gone on both ways for ``need`` bytes while no video byte moved at all
# (any video byte starts the count again).
SOUND_WITHOUT_VIDEO = """async (need) => {
  const now = await window.__mediaBytes();
  const from = window.__from;
  if (!from || from.video_in !== now.video_in || from.video_out !== now.video_out) {
    window.__from = now;
    return false;
  }
  return now.audio_in - from.audio_in >= need && now.audio_out - from.audio_out >= need;
}"""

# True once video has gone on both ways for ``need`` bytes since the count started.
VIDEO_FLOWS = """async (need) => {
  const now = await window.__mediaBytes();
  window.__from = window.__from || now;
  return now.video_in - window.__from.video_in >= need
    && now.video_out - window.__from.video_out >= need;
}"""


def open_phone(browser: Any, server: Server, user: User, case_id: int) -> Any:
    """The room page on a phone held upright (touch screen, mobile viewport), not joined yet."""
    context = browser.new_context(locale="en-GB", viewport=PHONE, has_touch=True,
                                  is_mobile=True)
    context.add_cookies([{"name": "odr_session", "value": user.cookie, "url": server.url}])
    context.add_init_script(script=WATCH_MEDIA)
    page = context.new_page()
    page.set_default_timeout(WAIT)
    page.goto(f"{server.url}/cases/{case_id}/room")
    page.wait_for_function("() => document.getElementById('room-preview').srcObject !== null")
    return page


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


def controls_in_reach(page: Any) -> None:
    """Every control of the bar is on the screen and at least 44 px each way."""
    for control in CONTROLS:
        button = page.locator(f"#{control}")
        if not button.is_visible():
            continue
        box = button.bounding_box()
        assert box is not None, control
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (control, box)
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (control, box)
        assert box["width"] >= 44 and box["height"] >= 44, (control, box)


def tab_to_every_control(page: Any) -> None:
    """From the top of the page, Tab alone reaches each control, which shows its focus."""
    page.evaluate("() => document.activeElement?.blur()")
    wanted = {*CONTROLS, "room-chat-text", "room-chat-send"}
    reached: set[str] = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        focus = page.evaluate("""() => {
          const e = document.activeElement;
          const id = e.matches('#room-chat-form button') ? 'room-chat-send' : e.id;
          const s = getComputedStyle(e);
          return { id, outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };
        }""")
        if focus["id"] in wanted:
            assert focus["outline"], f"no visible focus on {focus['id']}"
            reached.add(focus["id"])
        if reached == wanted:
            return
    raise AssertionError(f"not reached by Tab: {sorted(wanted - reached)}")


def test_room_on_a_phone(room_server: Server, people: Cast, browser: Any) -> None:
    from playwright.sync_api import WebSocketRoute, expect

    server, cast = room_server, people
    case_id = server.case(cast)
    med = open_phone(browser, server, cast.mediator, case_id)
    med.click("#room-join")
    expect(med.locator("#room-main")).to_be_visible(timeout=WAIT)
    no_sideways_scroll(med)

    # Party A's first connection is held: joining shows its progress, the button says it is
    # working and takes no second press; the server "moves" the room, and the page comes back.
    a = open_phone(browser, server, cast.party_a, case_id)
    held: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        if held:
            ws.connect_to_server()
        else:
            held.append(ws)

    a.route_web_socket(re.compile(r"/ws/rooms/"), route)
    no_sideways_scroll(a)
    a.click("#room-join")
    join = a.locator("#room-join")
    expect(join).to_have_attribute("aria-busy", "true", timeout=WAIT)
    expect(join).to_have_class(re.compile("is-working"), timeout=WAIT)
    expect(join).to_have_text("Connecting…", timeout=WAIT)
    expect(join).to_be_disabled(timeout=WAIT)
    # The page's socket is open on the held route (no state comes through it).
    expect(a.locator("#room-conn")).to_have_text("Connected", timeout=WAIT)
    expect(join).to_have_text("Connecting…", timeout=WAIT)
    assert held, "the page opened no socket"
    held[0].close(code=1012, reason="moving")
    expect(a.locator("#room-lobby")).to_be_visible(timeout=WAIT)
    expect(a.locator("#room-setup")).to_be_hidden(timeout=WAIT)
    no_sideways_scroll(a)

    # The knock and the admission are read out (the polite live region).
    announced = med.locator("#room-announce")
    expect(announced).to_have_attribute("aria-live", "polite")
    expect(announced).to_contain_text(f"{cast.party_a.name} is waiting in the waiting room.",
                                      timeout=WAIT)
    med.click(f"#room-lobby-list li[data-user='{cast.party_a.id}'] .room-admit")
    expect(announced).to_contain_text(
        f"{cast.party_a.name} has been let in to the joint session.", timeout=WAIT)
    expect(a.locator("#room-announce")).to_contain_text(
        "You have been let in to the joint session.", timeout=WAIT)
    for page in (med, a):
        expect(page.locator("#room-tiles figure")).to_have_count(2, timeout=WAIT)
        expect(page.locator("#room-caucus-banner")).to_be_hidden(timeout=WAIT)

    # The phone's layout: nothing sideways, the bar of controls in thumb's reach on the screen
    # (also scrolled to the end), the own picture small over the other's, the chat below them.
    assert a.evaluate("() => JSON.parse(document.getElementById('room-config').textContent)"
                      ".media"), "the test server runs the media relay"
    a.wait_for_function(
        "() => document.querySelector("
        f"\"#room-tiles figure[data-user='{cast.mediator.id}'] video\")?.videoWidth > 0",
        timeout=WAIT)
    for page in (med, a):
        no_sideways_scroll(page)
        controls_in_reach(page)
        page.evaluate("() => window.scrollTo(0, document.scrollingElement.scrollHeight)")
        controls_in_reach(page)
        page.evaluate("() => window.scrollTo(0, 0)")
    own = a.locator(f"#room-tiles figure[data-user='{cast.party_a.id}']").bounding_box()
    other = a.locator(f"#room-tiles figure[data-user='{cast.mediator.id}']").bounding_box()
    chat = a.locator("#room-chat").bounding_box()
    assert own and other and chat
    assert own["width"] <= PHONE["width"] * 0.4 < other["width"] <= PHONE["width"], (own, other)
    assert chat["y"] >= other["y"] + other["height"], "the chat covers the video"

    # Keyboard only: Tab reaches every control, each shows its focus; Space and Enter work.
    tab_to_every_control(a)
    a.focus("#room-mute")
    a.keyboard.press("Space")
    expect(a.locator("#room-mute")).to_have_attribute("aria-pressed", "true", timeout=WAIT)
    a.keyboard.press("Enter")
    expect(a.locator("#room-mute")).to_have_attribute("aria-pressed", "false", timeout=WAIT)
    a.focus("#room-chat-jump")
    a.keyboard.press("Enter")
    expect(a.locator("#room-chat-text")).to_be_focused(timeout=WAIT)
    a.keyboard.type("Hello from the village")
    a.keyboard.press("Enter")
    expect(med.locator("#room-chat-log")).to_contain_text("Hello from the village", timeout=WAIT)

    # A separate meeting: a banner always in sight says so, to the party and to the mediator,
    # and is read out; back in the joint session, it goes, and that is said too.
    med.check(f"#room-caucus-people input[value='{cast.party_a.id}']")
    med.click("#room-caucus-form button[type=submit]")
    banner = a.locator("#room-caucus-banner")
    expect(banner).to_be_visible(timeout=WAIT)
    expect(banner).to_have_text("You are in a private session with the mediator", timeout=WAIT)
    expect(med.locator("#room-caucus-banner")).to_have_text("Private session with Side A",
                                                            timeout=WAIT)
    expect(a.locator("#room-announce")).to_contain_text(
        "You are in a private session with the mediator", timeout=WAIT)
    expect(announced).to_contain_text("Private session with Side A", timeout=WAIT)
    a.locator("#room-chat-text").scroll_into_view_if_needed()
    a.evaluate("() => window.scrollTo(0, document.scrollingElement.scrollHeight)")
    expect(banner).to_be_in_viewport(timeout=WAIT)
    no_sideways_scroll(a)
    no_sideways_scroll(med)
    med.click("#room-recall")
    expect(banner).to_be_hidden(timeout=WAIT)
    expect(a.locator("#room-announce")).to_contain_text("You are back in the joint session.",
                                                        timeout=WAIT)
    expect(a.locator("#room-alerts")).to_contain_text("You are back in the joint session.",
                                                      timeout=WAIT)
    expect(med.locator("#room-caucus-banner")).to_be_hidden(timeout=WAIT)

    # Sound only, from the keyboard: the own camera is released and nothing of video moves
    # either way while the sound goes on; and back to video.
    own_video = ("() => document.querySelector(\"#room-tiles figure[data-user='"
                 f"{cast.party_a.id}'] video\").srcObject")
    a.evaluate("() => { window.__from = null; }")
    a.wait_for_function(VIDEO_FLOWS, arg=20_000, timeout=WAIT, polling=500)
    a.focus("#room-sound-only")
    a.keyboard.press("Space")
    expect(a.locator("#room-sound-only")).to_have_attribute("aria-pressed", "true",
                                                            timeout=WAIT)
    a.wait_for_function(f"() => ({own_video})().getVideoTracks().length === 0"
                        f" && ({own_video})().getAudioTracks()[0].readyState === 'live'")
    expect(a.locator(f"#room-tiles figure[data-user='{cast.mediator.id}'].no-video")
           ).to_have_count(1, timeout=WAIT)
    a.evaluate("() => { window.__from = null; }")
    a.wait_for_function(SOUND_WITHOUT_VIDEO, arg=8_000, timeout=40_000, polling=500)
    expect(a.locator("#room-sound-only")).not_to_have_attribute("aria-busy", "true",
                                                                timeout=WAIT)
    a.keyboard.press("Enter")
    expect(a.locator("#room-sound-only")).to_have_attribute("aria-pressed", "false",
                                                            timeout=WAIT)
    a.wait_for_function(f"() => ({own_video})().getVideoTracks()[0]?.readyState === 'live'")
    a.evaluate("() => { window.__from = null; }")
    a.wait_for_function(VIDEO_FLOWS, arg=20_000, timeout=40_000, polling=500)
    med.wait_for_function(
        "() => document.querySelector("
        f"\"#room-tiles figure[data-user='{cast.party_a.id}'] video\")?.videoWidth > 0",
        timeout=WAIT)
    expect(a.locator(f"#room-tiles figure[data-user='{cast.mediator.id}'].no-video")
           ).to_have_count(0, timeout=WAIT)
    for page in (med, a):
        page.context.close()
