"""axe-core in Chromium on every page a person reaches (the room, the editor, signing, the
clerk's inbox and the administration included), in Kazakh, Russian and English, on a desktop
screen and on a phone: no serious or critical violation, and nothing wider than a phone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import ARGS, CHROMIUM, FAKE_MEDIA, needs_axe, needs_chromium, serious_violations
from tests.databases import ON_POSTGRES
from tests.drafts.phone import PHONE
from tests.drafts.scenario import DraftScene, draft_scene
from tests.live import LiveServer, live_server

SIZES = {"desktop": {"viewport": {"width": 1280, "height": 800}},
         "phone": PHONE}
LANGUAGES = ("kk", "ru", "en")

pytestmark = [
    needs_chromium,
    needs_axe,
    # The pages' markup does not depend on the database: one pass (SQLite's) is enough.
    pytest.mark.skipif(ON_POSTGRES, reason="markup is the same on every database"),
]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DraftScene, dict[str, str]]]:
    """The demo case with an open draft, a second one frozen for signature, an invitation."""
    with live_server(tmp_path_factory.mktemp("a11y")) as server:
        scene = draft_scene(server)
        frozen = scene.mediator.post(f"/api/v1/cases/{scene.case_id}/drafts",
                                     {"language": "kk", "template": "default"}).json()["id"]
        for party in (scene.party_a, scene.party_b):
            assert party.post(f"/api/v1/drafts/{frozen}/approve").status_code == 200
        assert scene.mediator.post(f"/api/v1/drafts/{frozen}/freeze").status_code == 200
        link = scene.mediator.post(f"/api/v1/cases/{scene.case_id}/invitations",
                                   {"email": "observer@example.kz", "role": "observer"}
                                   ).json()["link"]
        yield scene, {"frozen": str(frozen), "invitation": link.split(server.url, 1)[-1]}


def pages(scene: DraftScene, more: dict[str, str]) -> dict[str | None, list[str]]:
    """Who (a demo login, or None: nobody signed in) reads which pages."""
    case, draft = scene.case_id, scene.draft_id
    return {
        None: ["/", "/login", "/signup", "/password-reset", "/mediators", "/verify",
               "/open-statistics", "/cases/new", more["invitation"]],
        "party A": ["/dashboard", f"/cases/{case}", "/settings", f"/drafts/{draft}",
                    f"/drafts/{more['frozen']}/sign", f"/cases/{case}/room", "/check"],
        "mediator": ["/dashboard", f"/cases/{case}", f"/drafts/{draft}", f"/cases/{case}/room"],
        "court clerk": ["/court"],
        "administrator": ["/admin", "/statistics", "/early-warning"],
    }


def test_no_page_has_a_serious_violation_in_any_language_or_size(
    scene: tuple[DraftScene, dict[str, str]],
) -> None:
    from playwright.sync_api import Page, sync_playwright

    draft, more = scene
    server: LiveServer = draft.server
    found: list[str] = []

    def audit(page: Page, where: str) -> None:
        found.extend(serious_violations(page, where))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + FAKE_MEDIA)
        for who, paths in pages(draft, more).items():
            for size, options in SIZES.items():
                for language in LANGUAGES:
                    # bypass_csp: our policy refuses inline scripts, axe is injected as one.
                    context = browser.new_context(base_url=server.url, locale=language,
                                                  bypass_csp=True,
                                                  **options)
                    if who is not None:
                        email, password = server.logins[who]
                        signed = context.request.post("/api/v1/auth/login", data={
                            "email": email, "password": password})
                        assert signed.ok, signed.text()
                    # The reader's own choice, as the footer's links make it.
                    assert context.request.get(f"/lang/{language}").ok
                    page = context.new_page()
                    page.set_default_timeout(20_000)
                    for path in paths:
                        where = f"{who or 'anyone'} {size} {language} {path}"
                        answer = page.goto(path)
                        assert answer is not None and answer.status == 200, where
                        assert page.locator("html").get_attribute("lang") == language, where
                        page.wait_for_load_state("load")
                        audit(page, where)
                        if size == "phone":
                            wide = page.evaluate("document.scrollingElement.scrollWidth"
                                                 " - window.innerWidth")
                            if wide > 0:
                                found.append(f"{where}: {wide}px wider than the phone")
                    if size == "phone":  # the folded menu, open
                        page.goto("/")
                        page.click(".menu-toggle")
                        audit(page, f"{who or 'anyone'} {size} {language} / (menu open)")
                    context.close()
        browser.close()
    assert not found, f"{len(found)} problems:\n" + "\n".join(found[:60])
