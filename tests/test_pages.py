"""The HTML pages as a person uses them: forms that come back with errors beside the fields in
the reader's language, CSRF on every form, language choice, and actions offered by the policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from odr.models import CaseStatus
from tests.harness import Cast, Person, Platform, expect, sign_contract, signer
from tests.harness import form_token as csrf

ERROR = re.compile(r'class="field-error" id="([\w.]+)-error">([^<]+)<')


def field_errors(html: str) -> dict[str, str]:
    return dict(ERROR.findall(html))


def count(platform: Platform, table: str) -> int:
    return int(platform.scalar(f"select count(*) from \"{table}\""))


def test_signup_form_shows_errors_beside_fields_in_russian(platform: Platform) -> None:
    browser = platform.client(**{"accept-language": "ru-RU,ru;q=0.9"})
    token = csrf(browser, "/signup")
    users = count(platform, "user")
    page = browser.post("/signup", data={"csrf": token, "name": "A", "email": "not-an-email",
                                          "password": "short"})
    assert page.status_code == 422
    assert '<html lang="ru">' in page.text
    ru = platform.services.catalogues.get("ru")
    errors = field_errors(page.text)
    assert errors["email"] == ru.gettext("Enter a valid e-mail address.")
    assert errors["password"] == ru.gettext("Too short: at least %(min_length)s characters.",
                                            min_length=8)
    assert errors["email"] != "Enter a valid e-mail address."  # really translated
    assert 'value="not-an-email"' in page.text  # what was typed is kept
    assert count(platform, "user") == users


def test_signup_page_answers_alike_and_the_mailed_link_creates_the_account(
    platform: Platform,
) -> None:
    known = platform.register("Aliya Known")
    browser = platform.client()
    token = csrf(browser, "/signup?next=/cases/new")
    form = {"csrf": token, "name": "Aliya New", "password": "long enough password",
            "next": "/cases/new"}
    email = "aliya.new@example.kz"
    new_page = browser.post("/signup", data=form | {"email": email})
    known_page = browser.post("/signup", data=form | {"email": known.email})
    assert new_page.status_code == known_page.status_code == 200
    assert new_page.text == known_page.text and "Check your e-mail" in new_page.text
    assert "odr_session" not in browser.cookies
    assert platform.scalar("select count(*) from \"user\" where email = ?", email) == 0

    link = platform.mailed_link(email, "/signup/")
    assert link.endswith("?next=/cases/new")
    # Opening the link (as a mail scanner would) changes nothing; the button creates it.
    confirm = browser.get(link)
    assert confirm.status_code == 200 and count(platform, "user") == 1
    done = browser.post(link.removeprefix("http://testserver").split("?")[0],
                        data={"csrf": token, "next": "/cases/new"}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/cases/new?done=welcome"
    assert expect(browser.get("/api/v1/me"), 200)["email"] == email
    # Signed in now, so a form needs this sign-in's token; the used link is then refused.
    again = browser.post(link.removeprefix("http://testserver").split("?")[0],
                         data={"csrf": csrf(browser, "/dashboard")})
    assert again.status_code == 400 and count(platform, "user") == 2


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(platform: Platform) -> None:
    browser = platform.client()
    csrf(browser, "/signup")
    users = count(platform, "user")
    page = browser.post("/signup", data={"name": "Forged", "email": "forged@example.kz",
                                          "password": "long enough password"})
    assert page.status_code == 403
    assert "expired or was sent from elsewhere" in page.text
    wrong = browser.post("/signup", data={"csrf": "guess", "name": "Forged",
                                           "email": "forged@example.kz",
                                           "password": "long enough password"})
    assert wrong.status_code == 403
    assert count(platform, "user") == users


def test_language_choice_beats_accept_language_and_is_kept_for_the_user(
    platform: Platform,
) -> None:
    person = platform.register("Aliya Language")
    browser = person.client
    browser.headers["accept-language"] = "ru"
    assert '<html lang="ru">' in browser.get("/").text
    chosen = browser.get("/lang/kk?next=/dashboard", follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == "/dashboard"
    page = browser.get("/dashboard")
    assert '<html lang="kk">' in page.text
    kk = platform.services.catalogues.get("kk")
    assert kk.gettext("My cases") in page.text
    assert expect(browser.get("/api/v1/me"), 200)["language"] == "kk"
    # A foreign site cannot send the user elsewhere through the language switch.
    away = browser.get("/lang/en?next=//evil.example/", follow_redirects=False)
    assert away.headers["location"] == "/dashboard"


def test_unknown_page_and_other_peoples_cases_are_plain_404_pages(
    platform: Platform, cast: Cast
) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    stranger = platform.register("Sergey Stranger")
    for path in ("/no/such/page", f"/cases/{case_id}", "/cases/999999"):
        page = stranger.client.get(path)
        assert page.status_code == 404, path
        assert "text/html" in page.headers["content-type"]
    anonymous = platform.client().get(f"/cases/{case_id}", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next=/cases/{case_id}"


def buttons(page: str) -> set[str]:
    return set(re.findall(r'action="/cases/\d+/(accept|consent)"', page)) | (
        {"join"} if re.search(r'href="/cases/\d+/room"', page) else set()
    ) | (
        {"sign"} if re.search(r'class="btn btn-primary" href="/drafts/\d+/sign"', page)
        else set()
    ) | set(re.findall(r'name="status" value="(\w+)"', page))


def test_case_page_offers_only_what_the_policy_allows(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    page = f"/cases/{case_id}"
    # Parties consent by signing the mediation contract, and so does the mediator. A party is
    # offered one way out: declining until they consent (asking was the requester's consent),
    # withdrawing after.
    assert buttons(cast.party_b.client.get(page).text) == {"sign", "declined"}
    assert buttons(cast.requester.client.get(page).text) == {"sign", "withdrawn"}
    assert buttons(cast.mediator.client.get(page).text) == {"sign"}
    assert buttons(cast.observer.client.get(page).text) == set()
    # Once everyone signed, the session can be joined and the mediator can start it.
    sign_contract(case_id, [signer(p) for p in (cast.requester, cast.party_b, cast.mediator)])
    assert buttons(cast.mediator.client.get(page).text) == {"join", "in_session",
                                                            "no_agreement"}
    assert buttons(cast.party_b.client.get(page).text) == {"join", "withdrawn"}


def test_request_through_the_form_then_the_mediator_takes_it(platform: Platform) -> None:
    citizen = platform.register("Asel Citizen")
    token = csrf(citizen.client, "/cases/new")
    mediator = platform.mediator("Bolat Register")
    form = {"csrf": token, "category": "family", "summary": "We disagree about visiting days.",
            "other_party_name": "Marat", "other_party_contact": "+7 701 000 00 00",
            "language": "kk", "region": "turkistan"}
    refused = citizen.client.post("/cases/new", data=form)  # consent box not ticked
    assert refused.status_code == 422 and "agree" in field_errors(refused.text)
    done = citizen.client.post("/cases/new", data=form | {"agree": "yes"},
                               follow_redirects=False)
    assert done.status_code == 303
    case_path = done.headers["location"].split("?")[0]
    case_id = int(case_path.rsplit("/", 1)[1])
    assert citizen.client.get("/dashboard").text.count(case_path) == 1

    dashboard = mediator.client.get("/dashboard").text
    assert case_path in dashboard  # waiting for a mediator
    token = csrf(mediator.client, case_path)
    taken = mediator.client.post(f"{case_path}/accept", data={"csrf": token},
                                 follow_redirects=False)
    assert taken.status_code == 303
    case = expect(citizen.client.get(f"/api/v1/cases/{case_id}"), 200)
    assert case["status"] == "accepted"
    assert {p["name"] for p in case["participants"]} == {"Asel Citizen", "Bolat Register"}


def set_timezone(person: Person, zone: str) -> None:
    expect(person.client.patch("/api/v1/me", json={"timezone": zone}), 200)


def test_sessions_are_scheduled_and_shown_in_each_readers_time_zone(
    platform: Platform, cast: Cast
) -> None:
    case_id = platform.build_case(cast, CaseStatus.consented)
    set_timezone(cast.mediator, "Asia/Almaty")  # UTC+5 since 2024
    set_timezone(cast.party_b, "Europe/Moscow")  # UTC+3
    token = csrf(cast.mediator.client, f"/cases/{case_id}")
    year = datetime.now(UTC).year + 1  # within the two years a session may be planned ahead
    done = cast.mediator.client.post(
        f"/cases/{case_id}/sessions",
        data={"csrf": token, "starts_at": f"{year}-03-02T10:00", "duration_minutes": "90"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    stored = expect(cast.party_b.client.get(f"/api/v1/cases/{case_id}/sessions"), 200)
    assert stored[-1]["starts_at"] == f"{year}-03-02T05:00:00Z"
    assert f"{year}-03-02 10:00" in cast.mediator.client.get(f"/cases/{case_id}").text
    assert f"{year}-03-02 08:00" in cast.party_b.client.get(f"/cases/{case_id}").text
    past = cast.mediator.client.post(
        f"/cases/{case_id}/sessions", data={"csrf": token, "starts_at": "2001-01-01T10:00"})
    assert past.status_code == 400
    assert field_errors(past.text)["starts_at"] == "The session must be in the future."
