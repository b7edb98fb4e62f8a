"""Closing a case with an outcome, and the parties' anonymous feedback, over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from odr.models import Case, CaseStatus
from odr.services import Services
from tests.drafts.test_signing import signed_agreement
from tests.harness import Cast, Person, Platform, expect
from tests.harness import form_token as csrf


def close(person: Person, case_id: int, outcome: str, reason: str, status: int = 200
          ) -> dict[str, Any]:
    body: dict[str, Any] = expect(person.client.post(f"/api/v1/cases/{case_id}/close", json={
        "outcome": outcome, "reason": reason, "note": "Closed after the second session."}),
        status)
    return body


def answer(person: Person, case_id: int, status: int = 204, **fields: object) -> Any:
    body = {"neutral": 5, "clear": 4, "again": "yes", "comment": ""} | fields
    return expect(person.client.post(f"/api/v1/cases/{case_id}/feedback", json=body), status)


def kinds(person: Person, case_id: int) -> list[str]:
    return [e["kind"] for e in expect(person.client.get(f"/api/v1/cases/{case_id}/events"), 200)]


def test_closing_without_agreement_asks_each_party_once_and_anonymously(
    platform: Platform, cast: Cast
) -> None:
    case_id = platform.build_case(cast, CaseStatus.in_session)
    for person in (cast.party_b, cast.co_mediator, cast.observer):
        body = close(person, case_id, "no_agreement", "positions_apart", 403)
        assert body["detail"] == "Only the mediator can close the case."
    # An outcome the case's state does not allow: nothing signed, and the term runs.
    for outcome in ("full_agreement", "term_expired"):
        close(cast.mediator, case_id, outcome, "other", 409)
    assert expect(cast.party_b.client.get(f"/api/v1/cases/{case_id}"), 200)["closed_at"] is None

    closed = close(cast.mediator, case_id, "no_agreement", "positions_apart")
    assert (closed["status"], closed["outcome"], closed["close_reason"]) == (
        "no_agreement", "no_agreement", "positions_apart")
    assert kinds(cast.party_b, case_id)[-2:] == ["status", "closed"]
    body = close(cast.mediator, case_id, "withdrawn", "other", 409)
    assert body["detail"] == "The case cannot be closed now."
    # Each party is asked by mail, with the link; nobody else is.
    for party in (cast.requester, cast.party_b):
        assert any(f"/cases/{case_id}/feedback" in m.body for m in platform.mails_to(party.email))
    assert not any("/feedback" in m.body for m in platform.mails_to(cast.observer.email))

    answer(cast.observer, case_id, 404)
    answer(cast.party_b, case_id, neutral=4, clear=3, again="maybe",
           comment="Хорошо, но долго.")
    body = answer(cast.party_b, case_id, 409)
    assert body == {"detail": "You have already given your feedback on this case."}
    answer(cast.requester, case_id, 422, neutral=6)
    answer(cast.requester, case_id, neutral=5, clear=5, again="yes")

    summary = expect(cast.mediator.client.get("/api/v1/me/feedback"), 200)
    assert summary == {"answers": 2, "neutral": 4.5, "clear": 4.0, "again_yes": 1,
                       "again_maybe": 1, "again_no": 0, "comments": ["Хорошо, но долго."]}
    expect(cast.party_b.client.get("/api/v1/me/feedback"), 403)
    # The answers name nobody: no column of the table holds a party's id or the moment.
    columns = {row[1] for row in platform.sql("PRAGMA table_info(feedback)")} if (
        platform.settings.effective_database_url.startswith("sqlite")) else {
        row[0] for row in platform.sql("SELECT column_name FROM information_schema.columns "
                                       "WHERE table_name = 'feedback'")}
    assert columns == {"id", "case_id", "mediator_id", "neutral", "clear", "again",
                       "comment", "on"}
    assert platform.scalar("SELECT count(*) FROM feedback WHERE case_id = ?", case_id) == 2
    # The case keeps the running sums the statistics read.
    answers, neutral, clear = platform.sql(
        'SELECT feedback_answers, feedback_neutral, feedback_clear FROM "case" WHERE id = ?',
        case_id)[0]
    assert (answers, neutral, clear) == tuple(platform.sql(
        "SELECT count(*), sum(neutral), sum(clear) FROM feedback WHERE case_id = ?",
        case_id)[0])


def test_a_signed_agreement_closes_as_agreed_and_a_withdrawal_as_withdrawn(
    platform: Platform, cast: Cast
) -> None:
    case_id, _draft, _agreement = signed_agreement(platform, cast)
    close(cast.mediator, case_id, "no_agreement", "other", 409)
    closed = close(cast.mediator, case_id, "full_agreement", "settled")
    assert (closed["status"], closed["outcome"]) == ("signed", "full_agreement")

    other = platform.build_case(cast, CaseStatus.consented)
    expect(cast.party_b.client.post(f"/api/v1/cases/{other}/status",
                                    json={"status": "withdrawn"}), 200)
    closed = close(cast.mediator, other, "withdrawn", "party_withdrew")
    assert (closed["status"], closed["outcome"]) == ("withdrawn", "withdrawn")


def test_the_pages_close_the_case_and_take_the_feedback(platform: Platform, cast: Cast
                                                        ) -> None:
    case_id = platform.build_case(cast, CaseStatus.in_session)
    page = f"/cases/{case_id}"
    assert f'action="/cases/{case_id}/close"' in cast.mediator.client.get(page).text
    assert "/close" not in cast.party_b.client.get(page).text
    # A form without an outcome comes back with the error beside the field.
    bad = cast.mediator.client.post(f"{page}/close", data={
        "csrf": csrf(cast.mediator.client, page), "reason": "other"})
    assert bad.status_code == 422 and 'id="outcome-error"' in bad.text
    done = cast.mediator.client.post(f"{page}/close", data={
        "csrf": csrf(cast.mediator.client, page), "outcome": "no_agreement",
        "reason": "party_stopped"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"{page}?done=closed"

    shown = cast.party_b.client.get(page).text
    assert "Outcome" in shown and "A party stopped taking part" in shown
    assert f'href="{page}/feedback"' in shown
    form = cast.party_b.client.get(f"{page}/feedback")
    assert form.status_code == 200 and "Was the mediator neutral?" in form.text
    sent = cast.party_b.client.post(f"{page}/feedback", data={
        "csrf": csrf(cast.party_b.client, f"{page}/feedback"), "neutral": "3", "clear": "4",
        "again": "no", "comment": ""}, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == f"{page}?done=feedback"
    again = cast.party_b.client.get(f"{page}/feedback", follow_redirects=False)
    assert again.status_code == 303  # answered: back to the case
    assert f'href="{page}/feedback"' not in cast.party_b.client.get(page).text
    dashboard = cast.mediator.client.get("/dashboard").text
    assert re.search(r"Answers</dt><dd>\d+</dd>", dashboard)


def test_an_expired_term_closes_as_expired(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.in_session)

    async def expire(svc: Services) -> None:
        async with svc.maker() as session:
            case = await session.get(Case, case_id)
            assert case is not None
            case.term_ends_at = datetime.now(UTC) - timedelta(minutes=1)
            session.add(case)
            await session.commit()

    platform.run(expire)
    closed = close(cast.mediator, case_id, "term_expired", "term_ran_out")
    assert (closed["status"], closed["outcome"]) == ("no_agreement", "term_expired")
