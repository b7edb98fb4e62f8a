"""Accounts: registration with a confirmed address, sign-in and its limits, sessions and their
cookies, API tokens, CSRF; none of the answers tells whether an address has an account."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from odr.email_links import LINK_NOT_VALID
from odr.i18n import load_translations
from odr.security import PasswordHashing
from odr.signup import SIGNUP_REQUESTED as SIGNUP_SENT
from tests.harness import (
    PASSWORD,
    Platform,
    expect,
    form_token,
    open_platform,
    token_of,
    unique_email,
)

WRONG = "Wrong e-mail or password."
TOO_MANY = "Too many failed sign-in attempts. Try again in 15 minutes."


def login(platform: Platform, email: str, password: str, address: str = "testclient") -> int:
    response = platform.client(address).post(
        "/api/v1/auth/login", json={"email": email, "password": password})
    return response.status_code


def set_cookie_header(headers: list[str], name: str) -> str:
    found = [h for h in headers if h.startswith(f"{name}=")]
    assert len(found) == 1, headers
    return found[0]


def register(client: TestClient, email: str, **body: str) -> dict[str, Any]:
    answer: dict[str, Any] = expect(client.post("/api/v1/auth/register", json={
        "email": email, "name": "Aliya Nurlanova", "password": PASSWORD} | body), 202)
    return answer


def test_register_confirm_then_me(platform: Platform) -> None:
    client = platform.client()
    email = unique_email("aliya")
    answer = register(client, email.upper(), name="  Aliya Nurlanova ", language="kk")
    assert answer == {"detail": SIGNUP_SENT}
    # Nothing exists and nobody is signed in until the mailed link is used.
    assert platform.scalar("SELECT count(*) FROM \"user\" WHERE email = ?", email) == 0
    assert expect(client.get("/api/v1/me"), 401)
    [mail] = platform.mails_to(email)  # stored in lower case, mailed in the chosen language
    assert mail.subject == platform.services.catalogues.get("kk").gettext(
        "Confirm your e-mail address")
    token = token_of(platform.mailed_link(email, "/signup/"))
    assert token not in str(platform.sql("SELECT * FROM emaillink"))  # only its hash is kept
    created = expect(client.post("/api/v1/auth/register/confirm", json={"token": token}), 201)
    assert created["email"] == email
    assert created["name"] == "Aliya Nurlanova"
    assert created["role"] == "party"
    assert created["language"] == "kk"
    assert "password" not in str(created) and "hash" not in str(created)
    me = expect(client.get("/api/v1/me"), 200)
    assert me == created
    # The link works once.
    again = platform.client().post("/api/v1/auth/register/confirm", json={"token": token})
    assert expect(again, 400)["detail"] == LINK_NOT_VALID


def test_registering_a_known_address_answers_alike_and_mails_its_owner(
    platform: Platform,
) -> None:
    person = platform.register("Aliya First")
    new_email = unique_email("new")
    known = platform.client().post("/api/v1/auth/register", json={
        "email": person.email, "name": "Aliya Second", "password": PASSWORD})
    new = platform.client().post("/api/v1/auth/register", json={
        "email": new_email, "name": "Aliya Second", "password": PASSWORD})
    # Same status, body and cookies: nothing tells the two addresses apart.
    assert (known.status_code, known.json()) == (new.status_code, new.json()) == (
        202, {"detail": SIGNUP_SENT})
    assert sorted(known.cookies.keys()) == sorted(new.cookies.keys())
    assert platform.scalar("SELECT count(*) FROM \"user\" WHERE email = ?", person.email) == 1
    notice = platform.mails_to(person.email)[-1]
    assert notice.subject == "Someone tried to register with your address"
    assert "http://testserver/password-reset" in notice.body
    assert "/signup/" not in notice.body
    # The account is unchanged: the old password still works, the new one does not.
    assert login(platform, person.email, PASSWORD) == 200
    assert platform.scalar("SELECT name FROM \"user\" WHERE id = ?", person.id) == "Aliya First"


def test_registration_mails_are_limited_per_address(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db, email_link_max_per_address=2) as platform:
        person = platform.register("Aliya Flooded")
        answers = {register(platform.client(), person.email)["detail"] for _ in range(4)}
        assert answers == {SIGNUP_SENT}
        # The confirmation counted once; one note to the owner, then nothing more.
        assert len(platform.mails_to(person.email)) == 2
        # A password reset has its own allowance.
        expect(platform.client().post("/api/v1/auth/password-reset",
                                      json={"email": person.email}), 202)
        assert len(platform.mails_to(person.email)) == 3


def test_registration_does_the_same_work_for_a_new_and_a_known_address(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = platform.register("Aliya Timed")
    hashed: list[str] = []
    real_hash = PasswordHashing.hash

    def hash_(self: PasswordHashing, password: str) -> str:
        hashed.append(password)
        return real_hash(self, password)

    monkeypatch.setattr(PasswordHashing, "hash", hash_)
    register(platform.client(), person.email, password="known address password")
    register(platform.client(), unique_email(), password="new address password")
    assert hashed == ["known address password", "new address password"]


def test_register_validation(platform: Platform) -> None:
    body = expect(platform.client().post("/api/v1/auth/register", json={
        "email": "not-an-address", "name": "A", "password": "short"}), 422)
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert fields == {
        "email": "Enter a valid e-mail address.",
        "name": "Too short: at least 2 characters.",
        "password": "Too short: at least 8 characters.",
    }
    assert isinstance(body["detail"], str) and "email" in body["detail"]
    assert platform.scalar("SELECT count(*) FROM \"user\"") == 0


def test_login_logout(platform: Platform) -> None:
    person = platform.register("Erlan Login")
    fresh = platform.client()
    expect(fresh.post("/api/v1/auth/login",
                      json={"email": person.email.upper(), "password": PASSWORD}), 200)
    assert expect(fresh.get("/api/v1/me"), 200)["id"] == person.id
    cookie = fresh.cookies.get("odr_session")
    assert cookie

    expect(fresh.post("/api/v1/auth/logout", json={}), 204)
    assert fresh.cookies.get("odr_session") is None
    assert expect(fresh.get("/api/v1/me"), 401) == {"detail": "Please sign in first."}
    # The session is ended on the server: the old cookie no longer works.
    replay = platform.client()
    replay.cookies.set("odr_session", cookie)
    expect(replay.get("/api/v1/me"), 401)
    # Other sessions of the same person go on.
    expect(person.client.get("/api/v1/me"), 200)


def test_anonymous_me_is_401(platform: Platform) -> None:
    assert expect(platform.anonymous.get("/api/v1/me"), 401) == {"detail": "Please sign in first."}


def test_wrong_password_and_unknown_account_get_the_same_answer(platform: Platform) -> None:
    person = platform.register("Erlan Wrong")
    wrong = platform.client().post("/api/v1/auth/login",
                                   json={"email": person.email, "password": "not the password"})
    unknown = platform.client().post("/api/v1/auth/login",
                                     json={"email": "nobody@example.kz", "password": PASSWORD})
    assert expect(wrong, 401) == {"detail": WRONG}
    assert expect(unknown, 401) == {"detail": WRONG}
    assert "odr_session" not in wrong.headers.get("set-cookie", "")


def test_an_unknown_address_costs_one_password_check_too(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = platform.register("Erlan Timed")
    checked: list[str | None] = []
    real_verify = PasswordHashing.verify

    def verify(self: PasswordHashing, stored: str | None, password: str) -> bool:
        checked.append(stored)
        return real_verify(self, stored, password)

    monkeypatch.setattr(PasswordHashing, "verify", verify)
    assert login(platform, "nobody@example.kz", PASSWORD) == 401
    assert login(platform, person.email, "not the password") == 401
    # Both refusals ran argon2 once: against the dummy hash, and against the account's.
    assert len(checked) == 2 and checked[0] is None and checked[1] is not None


def test_a_locked_account_and_a_locked_unknown_address_answer_alike(
    tmp_path: Path, template_db: Path
) -> None:
    with open_platform(tmp_path, template_db, login_max_failures_account=2,
                       login_max_failures_address=100) as platform:
        person = platform.register("Erlan Locked")
        answers = []
        for email in (person.email, "nobody@example.kz"):
            for _ in range(2):
                assert login(platform, email, "guess") == 401
            response = platform.client().post("/api/v1/auth/login",
                                              json={"email": email, "password": "guess"})
            answers.append((response.status_code, response.json()))
        assert answers[0] == answers[1] == (429, {"detail": TOO_MANY})


def test_attempts_are_limited_per_account(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db, login_max_failures_account=3,
                       login_max_failures_address=100) as platform:
        person = platform.register("Erlan Limited")
        other = platform.register("Olga Unaffected")
        # Failures from different addresses all count against the account.
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            assert login(platform, person.email, "guess", address) == 401
        refused = platform.client("10.0.0.4").post(
            "/api/v1/auth/login", json={"email": person.email, "password": PASSWORD})
        assert expect(refused, 429) == {"detail": TOO_MANY}
        assert "odr_session" not in refused.headers.get("set-cookie", "")
        # Another account is not locked out, even from the same addresses.
        assert login(platform, other.email, PASSWORD, "10.0.0.1") == 200


def test_attempts_are_limited_per_address(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db, login_max_failures_account=100,
                       login_max_failures_address=4) as platform:
        people = [platform.register(f"Person Number{i}") for i in range(5)]
        for person in people[:4]:
            assert login(platform, person.email, "guess", "10.9.9.9") == 401
        # The address is refused for any account, even with the right password...
        response = platform.client("10.9.9.9").post(
            "/api/v1/auth/login", json={"email": people[4].email, "password": PASSWORD})
        assert expect(response, 429) == {"detail": TOO_MANY}
        # ...while the same account signs in from elsewhere.
        assert login(platform, people[4].email, PASSWORD, "10.1.1.1") == 200


def test_success_clears_the_accounts_failures(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db, login_max_failures_account=3,
                       login_max_failures_address=100) as platform:
        person = platform.register("Erlan Forgetful")
        for _ in range(2):
            assert login(platform, person.email, "guess") == 401
        assert login(platform, person.email, PASSWORD) == 200
        for _ in range(2):
            assert login(platform, person.email, "guess") == 401
        assert login(platform, person.email, PASSWORD) == 200


def test_password_is_rehashed_when_parameters_change(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db) as platform:
        person = platform.register("Erlan Rehash")
        old_hash = platform.scalar("SELECT password_hash FROM \"user\" WHERE id = ?", person.id)
    assert "m=1024,t=1" in old_hash

    with open_platform(tmp_path, template_db, argon2_time_cost=2,
                       argon2_memory_cost=2048) as platform:
        assert login(platform, person.email, PASSWORD) == 200
        new_hash = platform.scalar("SELECT password_hash FROM \"user\" WHERE id = ?", person.id)
        assert new_hash != old_hash
        assert "m=2048,t=2" in new_hash
        assert PasswordHasher().verify(new_hash, PASSWORD)
        # The new hash keeps working, and is not changed again.
        assert login(platform, person.email, PASSWORD) == 200
        assert platform.scalar(
            "SELECT password_hash FROM \"user\" WHERE id = ?", person.id) == new_hash
        assert login(platform, person.email, "not the password") == 401


@pytest.mark.parametrize(("public_url", "secure"), [
    ("http://testserver", False),
    ("https://odr.example.kz", True),
])
def test_session_cookie_flags(
    tmp_path: Path, template_db: Path, public_url: str, secure: bool
) -> None:
    with open_platform(tmp_path, template_db, public_url=public_url) as platform:
        email = unique_email()
        client = platform.client()
        register(client, email)
        token = token_of(platform.mailed_link(email, "/signup/"))
        response = client.post("/api/v1/auth/register/confirm", json={"token": token})
        cookie = set_cookie_header(response.headers.get_list("set-cookie"), "odr_session")
        flags = {part.strip().split("=")[0].lower(): part.strip()
                 for part in cookie.split(";")[1:]}
        assert "httponly" in flags
        assert flags["samesite"].lower() == "samesite=lax"
        assert flags["path"] == "Path=/"
        assert ("secure" in flags) is secure


def test_personal_api_token(platform: Platform) -> None:
    person = platform.register("Court System")
    created = expect(person.client.post("/api/v1/tokens", json={"name": "court system"}), 201)
    token = created["token"]
    assert created["name"] == "court system"

    api = platform.client()  # no cookies: only the token
    me = expect(api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}), 200)
    assert me["id"] == person.id

    # Kept only as a hash: the token itself is nowhere in the table.
    rows = platform.sql("SELECT * FROM apitoken")
    assert len(rows) == 1
    assert not any(token in str(value) for value in rows[0])
    assert hashlib.sha256(token.encode()).hexdigest() in rows[0]
    assert platform.scalar("SELECT last_used_at FROM apitoken") is not None

    bad = api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}x"})
    assert expect(bad, 401) == {"detail": "The API token is not valid."}


def test_api_token_writes_need_no_csrf_header(platform: Platform) -> None:
    person = platform.register("Court Script")
    token = expect(person.client.post("/api/v1/tokens", json={"name": "script"}), 201)["token"]
    api = platform.client()
    # A bearer token cannot ride along on a forged form, so no CSRF check: the request reaches
    # body validation (FastAPI reads JSON only) instead of being refused as a forgery.
    response = api.post("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"},
                        data={"name": "second"})
    assert response.status_code == 422, response.text
    response = api.post("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"},
                        json={"name": "second"})
    expect(response, 201)


def test_cookie_writes_without_json_or_csrf_token_are_refused(platform: Platform) -> None:
    person = platform.register("Forged Form")
    forgery = "The request was refused as a possible forgery. Reload the page."
    before = platform.scalar("SELECT count(*) FROM apitoken")

    # A cross-site form can send this content type with the victim's cookie.
    response = person.client.post("/api/v1/tokens", data={"name": "stolen"})
    assert expect(response, 403) == {"detail": forgery}
    # A cookie another port of the host planted, echoed in the header, does not help.
    person.client.cookies.set("odr_csrf", "planted")
    response = person.client.post("/api/v1/tokens", data={"name": "stolen"},
                                  headers={"X-CSRF-Token": "planted"})
    assert expect(response, 403) == {"detail": forgery}
    assert platform.scalar("SELECT count(*) FROM apitoken") == before

    # With this session's token from our page the request passes the check (then fails on
    # its body).
    response = person.client.post("/api/v1/tokens", data={"name": "ours"},
                                  headers={"X-CSRF-Token": form_token(person.client)})
    assert response.status_code == 422


def test_messages_in_english_by_accept_language(platform: Platform) -> None:
    response = platform.client(**{"accept-language": "en-GB,en;q=0.9"}).post(
        "/api/v1/auth/login", json={"email": "nobody@example.kz", "password": PASSWORD})
    assert expect(response, 401) == {"detail": WRONG}


def translated(language: str, message: str) -> bool:
    return load_translations(language).ugettext(message) != message


@pytest.mark.parametrize("language", ["ru", "kk"])
@pytest.mark.skipif(not (translated("ru", WRONG) and translated("kk", WRONG)),
                    reason="the ru/kk catalogues do not translate the sign-in messages yet")
def test_messages_follow_accept_language(platform: Platform, language: str) -> None:
    client = platform.client(**{"accept-language": f"{language},en;q=0.5"})
    body = expect(client.post("/api/v1/auth/login",
                              json={"email": "nobody@example.kz", "password": PASSWORD}), 401)
    assert body["detail"] == load_translations(language).ugettext(WRONG)
    assert body["detail"] != WRONG
    # Validation messages too.
    body = expect(client.post("/api/v1/auth/register",
                              json={"email": "x@example.kz", "name": "A", "password": PASSWORD}),
                  422)
    assert body["errors"][0]["message"] != "Too short: at least 2 characters."
