"""Chromium clicks through the pages: a citizen requests mediation, a mediator takes the case and
invites the other side, who accepts from the link and consents; the session can then be joined."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import ARGS, CHROMIUM, needs_chromium
from tests.live import LiveServer, live_server, mailed_link

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("browser")) as s:
        yield s


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_request_take_invite_accept_consent(server: LiveServer, browser: object,
                                            tmp_path: Path) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    citizen = browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 844})
    page = citizen.new_page()
    page.set_default_timeout(10_000)

    # A citizen on a phone signs up and asks for mediation.
    page.goto(server.url + "/")
    assert page.locator("html").get_attribute("lang") == "ru"
    page.goto(server.url + "/signup?next=/cases/new")
    page.fill("#f-name", "Асель Жумабекова")
    page.fill("#f-email", "asel@example.kz")
    page.fill("#f-password", "strong-password-1")
    page.click("button[type=submit]")
    # The account exists once the mailed link is opened and confirmed (odr/signup.py).
    expect(page.locator("p.notice")).to_be_visible()
    page.goto(mailed_link(server, "asel@example.kz", "/signup/"))
    page.click("form[action^='/signup/'] button[type=submit]")
    page.wait_for_url(re.compile(r"/cases/new"))

    # An empty form comes back with the errors beside the fields, nothing created.
    page.click("form[action='/cases/new'] button[type=submit]")
    expect(page.locator("#summary-error")).to_be_visible()
    expect(page.locator("#region-error")).to_be_visible()

    page.select_option("#f-category", "labour")
    page.fill("#f-summary", "Работодатель не выплатил зарплату за два месяца.")
    page.fill("#f-other_party_name", "ТОО Береке")
    page.fill("#f-other_party_contact", "hr@bereke.kz")
    page.select_option("#f-region", "karaganda")
    page.check("input[name=agree]")
    page.click("form[action='/cases/new'] button[type=submit]")
    page.wait_for_url(re.compile(r"/cases/\d+"))
    case_url = page.url.split("?")[0]
    expect(page.locator(".badge-requested").first).to_be_visible()

    # The demo mediator sees the open request and takes it, then invites the employer.
    mediator = browser.new_context(locale="kk-KZ")
    mpage = mediator.new_page()
    mpage.set_default_timeout(10_000)
    email, password = server.logins["mediator"]
    mpage.goto(server.url + "/login")
    mpage.fill("#f-email", email)
    mpage.fill("#f-password", password)
    mpage.click("form[action='/login'] button[type=submit]")
    mpage.wait_for_url(re.compile(r"/dashboard"))
    mpage.click(f"a[href='{case_url.removeprefix(server.url)}']")
    mpage.click("form[action$='/accept'] button")
    expect(mpage.locator(".badge-accepted").first).to_be_visible()
    mpage.click("details:has(form[action$='/invitations']) summary")
    mpage.fill("form[action$='/invitations'] #f-email", "hr@bereke.kz")
    mpage.select_option("form[action$='/invitations'] #f-role", "party")
    mpage.select_option("form[action$='/invitations'] #f-side", "b")
    mpage.click("form[action$='/invitations'] button[type=submit]")
    link = mpage.input_value("#invite-link")
    assert "/invitations/" in link

    # The employer opens the link, creates an account, and consents by signing the
    # mediation contract; so do the citizen (on her phone) and the mediator.
    employer = browser.new_context(locale="en-GB")
    epage = employer.new_page()
    epage.set_default_timeout(10_000)
    epage.goto(link)
    epage.fill("#f-name", "Bereke LLP")
    epage.fill("#f-password", "another-password-2")
    epage.click("form button[type=submit]")
    epage.wait_for_url(re.compile(r"/cases/\d+"))
    expect(epage.locator("a[href$='/room']")).to_have_count(0)
    mediator_name = mpage.evaluate("fetch('/api/v1/me').then(r => r.json()).then(b => b.name)")
    for who, name, secret in ((epage, "Bereke LLP", "another-password-2"),
                              (page, "Асель Жумабекова", "strong-password-1"),
                              (mpage, mediator_name, password)):
        who.goto(case_url)
        who.click("#contract a.btn-primary[href$='/sign']")
        expect(who.locator(".contract-text h1")).to_be_visible()  # the text, before the form
        who.fill("#f-full_name", name)
        who.fill("#f-password", secret)
        who.click("form[action$='/sign'] button[type=submit]")
        who.wait_for_url(re.compile(r"/cases/\d+\?done=contract_signed"))
    epage.goto(case_url)
    expect(epage.locator(".title-row .badge-consented")).to_be_visible()
    expect(epage.locator("a[href$='/room']")).to_be_visible()
    expect(epage.locator("#term")).to_contain_text("30")

    # The citizen sees the new state and the other side on the case page.
    page.goto(case_url)
    expect(page.locator(".title-row .badge-consented")).to_be_visible()
    expect(page.locator("#participants .people")).to_contain_text("Bereke LLP")

    # The used link is refused with its own message.
    again = browser.new_context(locale="en-GB").new_page()
    response = again.goto(link)
    assert response is not None and response.status == 409
    expect(again.locator(".flash-error")).to_contain_text("already been used")
