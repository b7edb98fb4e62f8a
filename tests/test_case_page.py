"""The case page as its people read it: a timeline that says who did what in a whole sentence
of the reader's language (with Russian's past tense in each person's own form), participants
whose role and consent read apart, one way out explained, and what a phone asks of a site (an
icon, a manifest to add it to the home screen)."""

from __future__ import annotations

import json
import re

from odr.i18n import Catalogues
from odr.models import CaseStatus
from tests.harness import Cast, Person, Platform, expect
from tests.harness import form_token as csrf

TIMELINE = re.compile(r'<span class="event-text">([^<]+)</span>')


def timeline(person: Person, case_id: int, language: str) -> list[str]:
    page = person.client.get(f"/cases/{case_id}", headers={"accept-language": language})
    assert page.status_code == 200
    return TIMELINE.findall(page.text)


def say(person: Person, gender: str) -> None:
    body = expect(person.client.patch("/api/v1/me", json={"grammatical_gender": gender}), 200)
    assert body["grammatical_gender"] == gender


def test_the_timeline_says_who_did_what_in_each_language(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    say(cast.requester, "masculine")
    say(cast.mediator, "feminine")
    ru = timeline(cast.party_b, case_id, "ru")
    assert ru[0] == "Erlan Requester подал заявку на медиацию"
    assert "Aigul Mediator приняла дело" in ru
    assert "Aigul Mediator пригласила участника (Представитель)" in ru
    assert not any(line.lstrip().startswith(("—", ":")) for line in ru)
    assert timeline(cast.party_b, case_id, "kk")[0] == "Erlan Requester медиацияға өтініш берді"
    en = timeline(cast.party_b, case_id, "en")
    assert en[0] == "Erlan Requester requested mediation"
    assert "Aigul Mediator took the case" in en

    # Someone who has not said: the form that fits both, never a guess from the name.
    say(cast.requester, "unspecified")
    assert timeline(cast.party_b, case_id, "ru")[0] == (
        "Erlan Requester подал(а) заявку на медиацию")


def test_the_gender_is_chosen_in_the_settings_and_bad_values_are_refused(
    platform: Platform,
) -> None:
    person = platform.register("Асель Жумабекова")
    token = csrf(person.client, "/settings")
    form = {"csrf": token, "name": person.name, "language": "ru", "timezone": "Asia/Almaty"}
    page = person.client.get("/settings", headers={"accept-language": "ru"}).text
    assert 'name="grammatical_gender"' in page and "Женский (подала)" in page
    refused = person.client.post("/settings", data=form | {"grammatical_gender": "neuter"})
    assert refused.status_code == 422
    assert 'id="grammatical_gender-error"' in refused.text
    assert expect(person.client.get("/api/v1/me"), 200)["grammatical_gender"] == "unspecified"
    saved = person.client.post("/settings", data=form | {"grammatical_gender": "feminine"},
                               follow_redirects=False)
    assert saved.status_code == 303
    assert expect(person.client.get("/api/v1/me"), 200)["grammatical_gender"] == "feminine"
    assert 'value="feminine" selected' in person.client.get("/settings").text


def test_a_translation_chooses_the_form_of_the_person_it_speaks_of() -> None:
    ru = Catalogues("ru").get("ru")
    sentence = "%(name)s withdrew from the mediation"
    assert ru.gettext_of("masculine", sentence, name="Ерлан") == "Ерлан вышел из медиации"
    assert ru.gettext_of("feminine", sentence, name="Ольга") == "Ольга вышла из медиации"
    assert ru.gettext_of("unspecified", sentence, name="А") == "А вышел(-шла) из медиации"
    assert Catalogues("kk").get("kk").gettext_of("feminine", sentence, name="Ольга") == (
        "Ольга медиациядан шықты")


def test_participants_read_apart_and_each_way_out_says_what_it_does(
    platform: Platform, cast: Cast,
) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    page = cast.requester.client.get(f"/cases/{case_id}", headers={"accept-language": "ru"})
    people = re.findall(r'<li class="person"><strong class="person-name">([^<]+)</strong>\s*'
                        r'(?:\{#.*?#\}\s*)?<span class="person-role">([^<]+)</span>', page.text)
    roles = dict(people)
    assert roles["Olga PartyB"] == "Сторона Б"  # not "Сторона · Сторона Б"
    assert roles["Ruslan Lawyer"] == "Представитель · Сторона А"
    # The requester consented by asking: withdrawing is the one way out, and it is explained.
    assert 'value="withdrawn"' in page.text and 'value="declined"' not in page.text
    assert 'aria-describedby="withdraw-help"' in page.text
    assert "Медиация добровольна" in page.text


def test_a_phone_finds_an_icon_and_a_manifest_in_its_language(platform: Platform) -> None:
    client = platform.client(**{"accept-language": "kk"})
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    page = client.get("/").text
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    answer = client.get("/manifest.webmanifest")
    assert answer.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(answer.text)
    assert manifest["lang"] == "kk" and manifest["display"] == "standalone"
    assert manifest["name"] == "ODR · " + Catalogues("kk").get("kk").gettext("Online mediation")
    sizes = set()
    for icon_entry in manifest["icons"]:
        image = client.get(icon_entry["src"])
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
        sizes.add(icon_entry["sizes"])
    assert {"192x192", "512x512"} <= sizes
