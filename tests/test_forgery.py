"""Forged requests: a page on another port of the same host (same site, other origin) tries to
withdraw a signed-in party's case, in Chromium; then the same by hand with a forged ``Origin``,
without one, and through the JSON API. Each is refused and the case is unchanged; the same
change made from our own page goes through (so the checks above could see it)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import ARGS, CHROMIUM, needs_chromium
from tests.harness import FORM_TOKEN
from tests.live import LiveServer, free_port, live_server

FORGED = "The request was refused as a possible forgery. Reload the page."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("forgery")) as s:
        yield s


def signed_in(server: LiveServer, role: str = "party A") -> httpx.Client:
    client = httpx.Client(base_url=server.url, headers={"accept-language": "en"}, timeout=10)
    email, password = server.logins[role]
    assert client.post("/api/v1/auth/login",
                       json={"email": email, "password": password}).status_code == 200
    return client


def demo_case(client: httpx.Client) -> tuple[int, str]:
    cases = client.get("/api/v1/cases").json()
    assert cases, "the demo case"
    return cases[0]["id"], cases[0]["status"]


def status_of(client: httpx.Client, case_id: int) -> str:
    status: str = client.get(f"/api/v1/cases/{case_id}").json()["status"]
    return status


class Attacker:
    """Another origin on the same host: a tiny web server on its own loopback port."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    a = Attacker()
    yield a
    a.close()


def form_page(target: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    return (f'<form id="f" method="post" action="{target}">{inputs}</form><script>'
            'document.cookie = "odr_csrf=x; path=/";'
            'document.getElementById("f").submit();</script>')


@needs_chromium
def test_sibling_origin_cannot_withdraw_a_case_in_chromium(
    server: LiveServer, attacker: Attacker, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    api = signed_in(server)
    case_id, before = demo_case(api)
    email, password = server.logins["party A"]
    target = f"{server.url}/cases/{case_id}/status"
    attacker.pages["/form"] = form_page(target, {"csrf": "x", "status": "withdrawn"})
    # The JSON API through a "simple" request (no preflight): a text/plain body with JSON in it.
    attacker.pages["/fetch"] = (
        "<script>document.cookie = 'odr_csrf=x; path=/';"
        f"fetch('{server.url}/api/v1/cases/{case_id}/status', {{method: 'POST', "
        "mode: 'no-cors', credentials: 'include', headers: {'content-type': 'text/plain', "
        "'x-csrf-token': 'x'}, body: JSON.stringify({status: 'withdrawn'})})"
        ".then(() => { document.title = 'sent'; }, () => { document.title = 'failed'; });"
        "</script>")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(locale="en-GB").new_page()
            page.set_default_timeout(10_000)
            page.goto(server.url + "/login")
            page.fill("#f-email", email)
            page.fill("#f-password", password)
            page.click("form[action='/login'] button[type=submit]")
            page.wait_for_url("**/dashboard*")

            with page.expect_response(target) as answer:
                page.goto(attacker.url + "/form")
            assert answer.value.status == 403
            page.wait_for_load_state()
            assert FORGED in page.content()
            assert status_of(api, case_id) == before

            page.goto(attacker.url + "/fetch")
            page.wait_for_function("() => document.title === 'sent' || document.title === 'failed'")
            assert status_of(api, case_id) == before
        finally:
            browser.close()


def test_forged_origin_missing_origin_and_json_api_are_refused(server: LiveServer) -> None:
    client = signed_in(server)
    case_id, before = demo_case(client)
    page = client.get(f"/cases/{case_id}")
    found = FORM_TOKEN.search(page.text)
    assert found
    token = found[1]
    sibling = server.url.rsplit(":", 1)[0] + ":9"
    form = {"csrf": token, "status": "withdrawn"}

    # Even with this session's real token: another origin, or a same-site fetch, is refused.
    for headers in ({"origin": sibling}, {"origin": "null"}, {"sec-fetch-site": "same-site"},
                    {"sec-fetch-site": "cross-site"}):
        answer = client.post(f"/cases/{case_id}/status", data=form, headers=headers)
        assert answer.status_code == 403 and FORGED in answer.text, headers
        api = client.post(f"/api/v1/cases/{case_id}/status", json={"status": "withdrawn"},
                          headers=headers)
        assert api.status_code == 403 and api.json()["detail"] == FORGED, headers
    # No Origin: a cookie planted by another port and echoed in the field does not pass.
    client.cookies.set("odr_csrf", "x")
    answer = client.post(f"/cases/{case_id}/status", data={"csrf": "x", "status": "withdrawn"})
    assert answer.status_code == 403  # (the message is in the account's language, Russian)
    # The JSON API with a form body and the planted value in the header: refused.
    api = client.post(f"/api/v1/cases/{case_id}/status", content='{"status": "withdrawn"}',
                      headers={"content-type": "text/plain", "x-csrf-token": "x"})
    assert api.status_code == 403 and api.json()["detail"] == FORGED
    # Another person's session token does not pass for this session either.
    other = signed_in(server, "party B")
    theirs = FORM_TOKEN.search(other.get("/").text)
    assert theirs and theirs[1] != token
    answer = client.post(f"/cases/{case_id}/status",
                         data={"csrf": theirs[1], "status": "withdrawn"})
    assert answer.status_code == 403
    assert status_of(client, case_id) == before

    # From our own page (our origin, this session's token) the same change goes through.
    done = client.post(f"/cases/{case_id}/status", data=form,
                       headers={"origin": server.url, "sec-fetch-site": "same-origin"})
    assert done.status_code in (200, 303), done.text
    assert status_of(client, case_id) == "withdrawn"
