"""Filing again after a rejection, concurrent identical filings, and filings on the case page:
the mediator files from a form with the register's courts; every participant sees the court,
the filing number, its status and the court's reason; the timeline names each event."""

from __future__ import annotations

import re
import threading
from html import unescape
from typing import Any

import pytest

from odr.vocab import EVENT_LABELS
from tests.drafts.test_signing import signed_agreement
from tests.harness import Cast, Person, Platform, expect, form_token


def file(person: Person, case_id: int, court_id: int) -> Any:
    return person.client.post(f"/api/v1/cases/{case_id}/filings", json={"court_id": court_id})


def court_of(clerk: Person) -> int:
    court_id: int = expect(clerk.client.get("/api/v1/me"), 200)["court_id"]
    return court_id


def test_a_rejected_filing_can_be_filed_again_and_stands_while_not_rejected(
    platform: Platform, cast: Cast
) -> None:
    case_id, _draft, _agreement = signed_agreement(platform, cast)
    clerk = platform.clerk()
    court_id = court_of(clerk)
    first = expect(file(cast.mediator, case_id, court_id), 201)
    assert expect(file(cast.mediator, case_id, court_id), 200)["id"] == first["id"]
    expect(clerk.client.post(f"/api/v1/filings/{first['id']}/reject",
                             json={"reason": "The court fee receipt is missing."}), 200)

    second = expect(file(cast.mediator, case_id, court_id), 201)  # a new filing, new number
    assert second["id"] != first["id"] and second["number"] != first["number"]
    assert second["status"] == "received"
    assert expect(cast.requester.client.get(f"/api/v1/cases/{case_id}"), 200)["status"] == "filed"
    assert expect(file(cast.mediator, case_id, court_id), 200)["id"] == second["id"]
    expect(clerk.client.post(f"/api/v1/filings/{second['id']}/accept", json={}), 200)
    assert expect(file(cast.mediator, case_id, court_id), 200)["id"] == second["id"]

    inbox = expect(clerk.client.get(f"/api/v1/courts/{court_id}/filings"), 200)
    assert [(f["id"], f["status"]) for f in inbox] == [(second["id"], "accepted"),
                                                       (first["id"], "rejected")]
    kinds = [e["kind"] for e in expect(cast.party_b.client.get(
        f"/api/v1/cases/{case_id}/events"), 200)]
    assert kinds.count("filed") == 2 and "filing_rejected" in kinds
    assert "filing_accepted" in kinds


def test_identical_filings_at_the_same_moment_give_the_first_filing(
    platform: Platform, cast: Cast
) -> None:
    case_id, _draft, _agreement = signed_agreement(platform, cast)
    court_id = court_of(platform.clerk())
    # The mediator in two browsers, pressing "file" in both at once.
    twins = [cast.mediator, platform.login(cast.mediator.email)]
    start = threading.Barrier(len(twins))
    answers: list[Any] = [None] * len(twins)

    def press(i: int) -> None:
        start.wait()
        answers[i] = file(twins[i], case_id, court_id)

    threads = [threading.Thread(target=press, args=(i,)) for i in range(len(twins))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert platform.scalar("select count(*) from filing where case_id = ?", case_id) == 1


def test_a_filing_that_loses_the_race_at_the_database_returns_the_first(
    platform: Platform, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL two requests can both find no filing and both insert; the unique index
    refuses the second, which then answers with the first. Made to happen here by hiding the
    first filing from the second request's checks."""
    case_id, _draft, _agreement = signed_agreement(platform, cast)
    court_id = court_of(platform.clerk())
    first = expect(file(cast.mediator, case_id, court_id), 201)
    filings = platform.app.state.documents.filings
    real = filings.open_filing
    hidden = {"checks": 2}  # the route's check and file()'s own, before it inserts

    async def not_yet_visible(*args: Any, **kwargs: Any) -> Any:
        if hidden["checks"]:
            hidden["checks"] -= 1
            return None
        return await real(*args, **kwargs)

    monkeypatch.setattr(filings, "open_filing", not_yet_visible)
    again = expect(file(cast.mediator, case_id, court_id), 200)
    assert again["id"] == first["id"] and hidden["checks"] == 0
    assert platform.scalar("select count(*) from filing where case_id = ?", case_id) == 1
    assert platform.scalar("select status from \"case\" where id = ?", case_id) == "filed"


def csrf(person: Person, path: str) -> str:
    return form_token(person.client, path)


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(html: str, marker: str) -> str:
    """The text of the page's <section> that holds ``marker``."""
    for part in html.split("<section")[1:]:
        if marker in part:
            return text_of(part.split("</section>")[0])
    raise AssertionError(f"no section with {marker!r}")


def test_the_mediator_files_from_the_case_page_and_everyone_sees_the_filing(
    platform: Platform, cast: Cast
) -> None:
    case_id, _draft, _agreement = signed_agreement(platform, cast)
    clerk = platform.clerk("Dinara Clerk")
    court_id = court_of(clerk)
    page = f"/cases/{case_id}"

    mediators = cast.mediator.client.get(page).text
    assert 'id="filings"' in mediators and 'name="court_id"' in mediators
    assert f'<option value="{court_id}">Almaty City Court</option>' in mediators
    assert 'name="court_id"' not in cast.requester.client.get(page).text  # parties don't file

    assert cast.requester.client.post(f"/cases/{case_id}/filings", data={
        "csrf": csrf(cast.requester, page), "court_id": str(court_id)}).status_code == 403
    no_court = cast.mediator.client.post(f"/cases/{case_id}/filings",
                                         data={"csrf": csrf(cast.mediator, page)})
    assert no_court.status_code == 400
    assert "Choose the court to file the agreement with." in no_court.text

    filed = cast.mediator.client.post(f"/cases/{case_id}/filings", data={
        "csrf": csrf(cast.mediator, page), "court_id": str(court_id)}, follow_redirects=False)
    assert filed.status_code == 303 and filed.headers["location"].startswith(page)
    filing = expect(clerk.client.get(f"/api/v1/courts/{court_id}/filings"), 200)[0]
    assert filing["case_id"] == case_id and filing["status"] == "received"

    shown = section(cast.party_b.client.get(page).text, 'id="filings"')
    assert "Almaty City Court" in shown and filing["number"] in shown
    assert "Received by the court" in shown

    reason = "The court fee receipt is missing."
    expect(clerk.client.post(f"/api/v1/filings/{filing['id']}/reject", json={"reason": reason}),
           200)
    party_page = cast.party_b.client.get(page).text
    shown = section(party_page, 'id="filings"')
    assert "Rejected by the court" in shown and reason in shown and filing["number"] in shown

    # The timeline names every event in words, with the filing number and the court's reason.
    timeline = section(party_page, "Timeline")
    for label in ("signed the agreement", "Agreement signed by everyone and sealed",
                  "filed the agreement with the court", "rejected the agreement for the court"):
        assert label in timeline, (label, timeline)
    assert reason in timeline and filing["number"] in timeline
    kinds = {e["kind"] for e in expect(cast.party_b.client.get(
        f"/api/v1/cases/{case_id}/events"), 200)}
    assert kinds <= set(EVENT_LABELS), kinds - set(EVENT_LABELS)
    for raw in kinds - {"status"}:
        assert f"— {raw}" not in timeline, raw

    # Filed anew from the page after the rejection: a second filing, shown first.
    again = cast.mediator.client.post(f"/cases/{case_id}/filings", data={
        "csrf": csrf(cast.mediator, page), "court_id": str(court_id)}, follow_redirects=False)
    assert again.status_code == 303
    shown = section(cast.requester.client.get(page).text, 'id="filings"')
    assert shown.index("Received by the court") < shown.index("Rejected by the court")
