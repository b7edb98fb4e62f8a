"""Password reset by a mailed one-time link: the same answer for any address, limits, and a link
that works once, expires, ends the account's other sessions and keeps its API tokens."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from odr.email_links import LINK_NOT_VALID
from tests.harness import PASSWORD, Platform, expect, open_platform, token_of, unique_email
from tests.harness import form_token as csrf
from tests.smtp import SmtpServer

NEW_PASSWORD = "a brand new passphrase"
RESET_SENT = ("If an account exists for this address, we have sent a link to choose a new "
              "password. Check your e-mail; the link is valid for 30 minutes.")
SUBJECT = "Choose a new password"
LINK = re.compile(r"http://testserver/password-reset/\S+")


def ask(client: TestClient, email: str) -> tuple[int, object]:
    response = client.post("/api/v1/auth/password-reset", json={"email": email})
    assert "set-cookie" not in response.headers
    return response.status_code, response.json()


def login_status(platform: Platform, email: str, password: str) -> int:
    return platform.client().post("/api/v1/auth/login",
                                  json={"email": email, "password": password}).status_code


def reset_mails(platform: Platform, email: str) -> int:
    return sum(m.subject == SUBJECT for m in platform.mails_to(email))


def test_reset_over_smtp_ends_other_sessions_and_works_once(
    mailing_platform: Platform, smtp: SmtpServer
) -> None:
    platform = mailing_platform
    person = platform.register("Aliya Forgetful")
    elsewhere = platform.login(person.email)
    api_token = expect(person.client.post("/api/v1/tokens", json={"name": "court"}),
                       201)["token"]

    stranger = platform.client()
    assert ask(stranger, person.email.upper()) == (202, {"detail": RESET_SENT})
    assert ask(stranger, "nobody@example.kz") == (202, {"detail": RESET_SENT})

    message = smtp.mailbox.wait_for(person.email, subject=SUBJECT)
    assert message["From"] == "ODR <no-reply@odr.test>"
    [link] = LINK.findall(message.get_content())
    assert "valid for 30 minutes" in message.get_content()
    assert smtp.mailbox.to("nobody@example.kz") == []
    token = token_of(link)
    assert token not in str(platform.sql("SELECT * FROM emaillink"))  # stored as a hash only

    # The link opens a form; a weak password is refused as at registration, the link kept.
    assert 'name="password"' in stranger.get(link).text
    weak = stranger.post("/api/v1/auth/password-reset/confirm",
                         json={"token": token, "password": "short"})
    assert expect(weak, 422)["errors"][0]["field"] == "password"

    browser = platform.client()
    me = expect(browser.post("/api/v1/auth/password-reset/confirm",
                             json={"token": token, "password": NEW_PASSWORD}), 200)
    assert me["id"] == person.id
    assert expect(browser.get("/api/v1/me"), 200)["id"] == person.id  # signed in
    # Every earlier session has ended; the API token (a court system's) still works.
    assert expect(person.client.get("/api/v1/me"), 401)
    assert expect(elsewhere.client.get("/api/v1/me"), 401)
    assert expect(platform.client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {api_token}"}), 200)["id"] == person.id
    assert login_status(platform, person.email, PASSWORD) == 401
    assert login_status(platform, person.email, NEW_PASSWORD) == 200

    again = platform.client().post("/api/v1/auth/password-reset/confirm",
                                   json={"token": token, "password": "yet another password"})
    assert expect(again, 400)["detail"] == LINK_NOT_VALID
    assert login_status(platform, person.email, NEW_PASSWORD) == 200
    # Recorded in the audit log, as an event of the account (no case).
    rows = platform.sql("SELECT actor_id, case_id, detail FROM auditentry "
                        "WHERE action = 'password_reset'")
    assert [(r[0], r[1]) for r in rows] == [(person.id, None)]
    assert json.loads(rows[0][2]) == {"ip": "testclient"}


def test_an_expired_link_is_refused(platform: Platform) -> None:
    person = platform.register("Aliya Late")
    ask(platform.client(), person.email)
    token = token_of(platform.mailed_link(person.email, "/password-reset/"))
    platform.sql("UPDATE emaillink SET expires_at = created_at WHERE purpose = 'password_reset'")
    page = platform.client().get(f"/password-reset/{token}")
    assert page.status_code == 400 and LINK_NOT_VALID in page.text.replace("&#39;", "'")
    late = platform.client().post("/api/v1/auth/password-reset/confirm",
                                  json={"token": token, "password": NEW_PASSWORD})
    assert expect(late, 400)["detail"] == LINK_NOT_VALID
    assert login_status(platform, person.email, PASSWORD) == 200


def test_an_earlier_link_stops_working_once_a_later_one_is_used(platform: Platform) -> None:
    person = platform.register("Aliya Twice")
    ask(platform.client(), person.email)
    first = token_of(platform.mailed_link(person.email, "/password-reset/"))
    ask(platform.client(), person.email)
    second = token_of(platform.mailed_link(person.email, "/password-reset/"))
    assert first != second
    expect(platform.client().post("/api/v1/auth/password-reset/confirm",
                                  json={"token": second, "password": NEW_PASSWORD}), 200)
    expect(platform.client().post("/api/v1/auth/password-reset/confirm",
                                  json={"token": first, "password": "yet another one"}), 400)


def test_requests_are_limited_per_account_and_per_ip(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db, email_link_max_per_address=3,
                       email_link_max_per_ip=4) as platform:
        person = platform.register("Aliya Flooded")
        for i in range(5):
            answer = ask(platform.client(f"10.0.0.{i}"), person.email)
            assert answer == (202, {"detail": RESET_SENT})
        assert reset_mails(platform, person.email) == 3  # over the limit: same answer, no mail

        people = [platform.register(f"Person Number{i}") for i in range(3)]
        unknown = [unique_email("unknown") for _ in range(2)]
        # Unknown addresses spend the IP's allowance as well.
        for email in [*unknown, people[0].email, people[1].email, people[2].email]:
            assert ask(platform.client("10.9.9.9"), email) == (202, {"detail": RESET_SENT})
        assert [reset_mails(platform, p.email) for p in people] == [1, 1, 0]
        ask(platform.client("10.1.1.1"), people[2].email)
        assert reset_mails(platform, people[2].email) == 1


def test_reset_pages_in_the_accounts_language(platform: Platform) -> None:
    person = platform.register("Aliya Pages")
    expect(person.client.patch("/api/v1/me", json={"language": "ru"}), 200)
    browser = platform.client()
    assert 'href="/password-reset"' in browser.get("/login").text
    token = csrf(browser, "/password-reset")
    known = browser.post("/password-reset", data={"csrf": token, "email": person.email})
    unknown = browser.post("/password-reset", data={"csrf": token, "email": "nobody@example.kz"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text and RESET_SENT in known.text

    ru = platform.services.catalogues.get("ru")
    [mail] = [m for m in platform.mails_to(person.email) if m.subject == ru.gettext(SUBJECT)]
    assert ru.gettext(SUBJECT) != SUBJECT
    link = token_of(LINK.findall(mail.body)[0])
    form = browser.get(f"/password-reset/{link}")
    assert form.status_code == 200
    short = browser.post(f"/password-reset/{link}", data={"csrf": token, "password": "short"})
    assert short.status_code == 422 and 'id="password-error"' in short.text
    done = browser.post(f"/password-reset/{link}", data={"csrf": token, "password": NEW_PASSWORD},
                        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard?done=password"
    # Signed in as the account, so the page is in its language.
    assert ru.gettext("Your new password is saved. You have been signed out everywhere else.") in (
        browser.get(done.headers["location"]).text)
    assert login_status(platform, person.email, NEW_PASSWORD) == 200
