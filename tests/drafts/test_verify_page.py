"""The /verify page and the upload limits, on a real server over real HTTP: a genuine signed
agreement and a tampered copy uploaded as a browser's form would, and uploads over the limit
refused before they are read (on the declared length at once, and while a body of unknown
length arrives)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import httpx
import pytest

from documents.agreement_routes import too_large
from tests.browser import ARGS, CHROMIUM, needs_chromium
from tests.drafts.phone import BusyWatch, Held, assert_no_horizontal_overflow, phone_context
from tests.drafts.scenario import DraftScene, Person, draft_scene
from tests.live import LiveServer, live_server

LIMIT = 250_000  # bytes: above a signed demo agreement (about 80 KB), in KB in the message


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("verify"), ODR_VERIFY_MAX_BYTES=str(LIMIT)) as s:
        yield s


def sign(server: LiveServer, scene: DraftScene, role: str, person: Person) -> None:
    _email, password = server.logins[role]
    name = person.get("/api/v1/me").json()["name"]
    signed = person.post(f"/api/v1/drafts/{scene.draft_id}/sign",
                         {"full_name": name, "password": password})
    assert signed.status_code == 200, signed.text


@pytest.fixture(scope="module")
def signed_pdf(server: LiveServer) -> bytes:
    """The demo case's agreement, signed by both parties and the mediator, and sealed."""
    scene = draft_scene(server, language="kk")
    for party in (scene.party_a, scene.party_b):
        assert party.post(f"/api/v1/drafts/{scene.draft_id}/approve").status_code == 200
    assert scene.mediator.post(f"/api/v1/drafts/{scene.draft_id}/freeze").status_code == 200
    for role, person in (("party A", scene.party_a), ("party B", scene.party_b),
                         ("mediator", scene.mediator)):
        sign(server, scene, role, person)
    agreement = scene.mediator.get(f"/api/v1/drafts/{scene.draft_id}/agreement").json()
    assert agreement["complete"] is True
    pdf = scene.mediator.get(agreement["pdf_url"]).content
    assert pdf.startswith(b"%PDF-") and len(pdf) < LIMIT
    return pdf


def text_of(html: str) -> str:
    """The page's visible text, in one line."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def upload(server: LiveServer, path: str, data: bytes, name: str = "agreement.pdf"
           ) -> httpx.Response:
    """POST ``data`` as the file field of a multipart form, as the page's form sends it."""
    with httpx.Client(base_url=server.url, headers={"accept-language": "en"}, timeout=30) as c:
        return c.post(path, files={"file": (name, data, "application/pdf")})


def test_the_page_reports_a_genuine_agreement_and_a_tampered_copy(
    server: LiveServer, signed_pdf: bytes
) -> None:
    page = httpx.get(f"{server.url}/verify", headers={"accept-language": "en"})
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text

    genuine = upload(server, "/verify", signed_pdf)
    assert genuine.status_code == 200, text_of(genuine.text)[:500]
    shown = text_of(genuine.text)
    assert "All signatures are intact and valid; the document has not been changed" in shown
    assert re.search(r"This is agreement \d+ of case \S+, revision 4\.", shown), shown
    assert "It is the completed, sealed agreement." in shown
    assert 'id="report"' in genuine.text and shown.count(" yes yes") == 4

    # One byte of the agreement's text changed: the first revision's signed content.
    index = signed_pdf.index(b"stream", 2000) + 200
    tampered = signed_pdf[:index] + bytes([signed_pdf[index] ^ 0x01]) + signed_pdf[index + 1:]
    broken = upload(server, "/verify", tampered)
    assert broken.status_code == 200
    shown = text_of(broken.text)
    assert "A signature is broken: the document was changed after it was signed." in shown
    assert "This file is not one of the platform's agreements (or it was changed)." in shown
    assert " no " in shown and 'class="flash flash-error"' in broken.text

    not_pdf = upload(server, "/verify", b"hello, not a pdf", name="note.pdf")
    assert not_pdf.status_code == 200 and "This file is not a PDF." in text_of(not_pdf.text)
    with httpx.Client(base_url=server.url, headers={"accept-language": "en"}) as client:
        nothing = client.post("/verify", files={"other": ("x.txt", b"x")})
    assert nothing.status_code == 422 and "Choose a PDF file to check." in nothing.text


def raw_request(server: LiveServer, head: str, chunks: list[bytes]) -> tuple[int, str]:
    """Send a request by hand (its head, then body chunks while the server still listens);
    the status and body of the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head.encode())
        try:
            for chunk in chunks:
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking the rest: that is the point
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(65536)
        head_part, _, body = answer.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head_part, re.IGNORECASE)
        assert length is not None, head_part
        while len(body) < int(length[1]):
            body += s.recv(65536)
    return int(head_part.split()[1]), body.decode()


MULTIPART = "multipart/form-data; boundary=xyz"


@pytest.mark.parametrize("path", ["/api/v1/verify", "/verify"])
def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_sent(
    server: LiveServer, path: str
) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: test\r\nAccept-Language: en\r\n"
            f"Content-Type: {MULTIPART}\r\nContent-Length: 50000000\r\n\r\n")
    status, body = raw_request(server, head, [])  # not one byte of the 50 MB is sent
    assert status == 413
    assert "The file is too large (at most 250 KB)." in unescape(body)


@pytest.mark.parametrize("path", ["/api/v1/verify", "/verify"])
def test_a_body_of_unknown_length_is_cut_off_at_the_limit(server: LiveServer, path: str
                                                          ) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: test\r\nAccept-Language: en\r\n"
            f"Content-Type: {MULTIPART}\r\nTransfer-Encoding: chunked\r\n\r\n")
    part = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n%PDF-1.7\n")
    block = b"0" * 16_384
    body = [part] + [block] * 40  # 640 KB offered, well over the limit
    chunks = [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in body]
    status, answer = raw_request(server, head, chunks)
    assert status == 413
    assert "The file is too large (at most 250 KB)." in unescape(answer)


def test_a_file_just_over_the_limit_is_refused_after_reading_it(server: LiveServer) -> None:
    data = b"%PDF-1.7\n" + b"0" * LIMIT
    api = upload(server, "/api/v1/verify", data)
    assert api.status_code == 413
    assert api.json()["detail"] == "The file is too large (at most 250 KB)."
    page = upload(server, "/verify", data)
    assert page.status_code == 413 and "The file is too large (at most 250 KB)." in page.text


def test_the_limit_is_said_in_kilobytes_or_megabytes_never_zero() -> None:
    def said(limit: int) -> dict[str, object]:
        return too_large(limit).params

    assert said(1024) == {"kb": 1}
    assert said(999_999) == {"kb": 999}
    assert said(1_000_000) == {"mb": "1"}
    assert said(1_560_000) == {"mb": "1.5"}  # not rounded up past the limit
    assert said(20_000_000) == {"mb": "20"}


def test_the_platform_pdf_without_changes_is_found_as_the_latest_revision(
    server: LiveServer, signed_pdf: bytes, tmp_path: Path
) -> None:
    report = upload(server, "/api/v1/verify", signed_pdf).json()
    assert report["valid"] is True and report["match"]["latest"] is True
    assert all(s["problem"] == "" for s in report["signatures"])


@needs_chromium
def test_checking_a_pdf_on_a_phone_shows_progress_and_the_button_comes_back(
    server: LiveServer, signed_pdf: bytes
) -> None:
    """At 390x844 (touch): the page and its report fit the screen; while the upload is being
    checked the button is disabled, busy and says so; back on the form, it works again."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = phone_context(browser).new_page()
        page.set_default_timeout(15_000)
        watch = BusyWatch(page)
        page.goto(f"{server.url}/verify")
        assert_no_horizontal_overflow(page)
        button = page.locator(".verify-form button[type=submit]")
        assert button.evaluate("b => b.getBoundingClientRect().height") >= 44
        expect(button).to_have_text("Проверить")
        pdf = {"name": "agreement.pdf", "mimeType": "application/pdf", "buffer": signed_pdf}

        page.set_input_files("#f-file", files=[pdf])
        watch.arm(".verify-form")
        held = Held(page, "**/verify")
        button.tap(no_wait_after=True)
        busy = watch.wait()
        assert busy == {"text": "Проверяем…", "disabled": True, "spinner": True,
                        "status": "Проверяем…"}, busy
        held.release()
        expect(page.locator("#report")).to_be_visible()
        expect(page.locator("#report .flash")).not_to_have_class(re.compile("flash-error"))
        assert_no_horizontal_overflow(page)  # the table of signatures scrolls within itself

        # Back to the form: the button is there to use again, not left spinning.
        page.go_back()
        expect(button).to_be_enabled()
        expect(button).to_have_text("Проверить")
        expect(button).not_to_have_attribute("aria-busy", "true")
        expect(page.locator(".verify-form")).not_to_have_attribute("aria-busy", "true")

        # The same when the browser shows the page again from its back-forward cache (pageshow)
        # with the form still marked busy: here an answer that leaves the page where it was.
        page.route("**/verify", lambda route: route.fulfill(status=204)
                   if route.request.method == "POST" else route.continue_())
        page.set_input_files("#f-file", files=[pdf])
        button.tap()
        expect(button).to_be_disabled()
        expect(button).to_have_attribute("aria-busy", "true")
        page.evaluate("window.dispatchEvent("
                      "new PageTransitionEvent('pageshow', {persisted: true}))")
        expect(button).to_be_enabled()
        expect(button).to_have_text("Проверить")
        expect(button).not_to_have_attribute("aria-busy", "true")
        expect(page.locator(".verify-form")).not_to_have_attribute("aria-busy", "true")
        browser.close()
