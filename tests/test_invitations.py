"""Invitations: the mail with its one-time link (through a real SMTP server), and accepting it."""

from __future__ import annotations

import re
from typing import Any

from odr.models import CaseRole, CaseStatus, Side
from tests.harness import (
    PASSWORD,
    Cast,
    Person,
    Platform,
    expect,
    token_of,
    unique_email,
)
from tests.harness import form_token as csrf
from tests.smtp import SmtpServer


def accepted_case(platform: Platform) -> tuple[int, Person, Person]:
    """A case a mediator has taken: (case id, requester, mediator)."""
    requester = platform.register("Erlan Requester")
    mediator = platform.mediator("Aigul Mediator")
    case_id: int = expect(requester.client.post("/api/v1/cases", json={
        "category": "property", "summary": "A loan that was not repaid on time.",
        "other_party_name": "Olga Petrova", "other_party_contact": "olga@example.kz",
        "language": "en", "region": "almaty_city", "mediator_id": mediator.id}), 201)["id"]
    expect(mediator.client.post(f"/api/v1/cases/{case_id}/accept", json={}), 200)
    return case_id, requester, mediator


def invite(inviter: Person, case_id: int, **body: Any) -> dict[str, Any]:
    created: dict[str, Any] = expect(inviter.client.post(
        f"/api/v1/cases/{case_id}/invitations", json=body), 201)
    return created


def state(platform: Platform, case_id: int) -> dict[str, Any]:
    """Everything accepting an invitation could change."""
    return {
        "users": platform.sql("SELECT id, email FROM \"user\" ORDER BY id"),
        "participants": platform.sql(
            "SELECT user_id, role, side FROM participant WHERE case_id = ? ORDER BY id", case_id),
        "invitations": platform.sql(
            "SELECT id, accepted_at, accepted_by FROM invitation WHERE case_id = ?", case_id),
        "events": platform.sql("SELECT id FROM caseevent WHERE case_id = ?", case_id),
        "sessions": platform.scalar("SELECT count(*) FROM authsession"),
    }


def test_invitation_mail_and_accept_with_a_new_account(
    mailing_platform: Platform, smtp: SmtpServer
) -> None:
    platform = mailing_platform
    case_id, requester, mediator = accepted_case(platform)
    created = invite(mediator, case_id, email="Olga@Example.kz", name="Olga Petrova",
                     role="party", side="b")
    assert created["mailed"] is True
    assert created["email"] == "olga@example.kz"
    assert created["link"].startswith("http://testserver/invitations/")

    mail = smtp.mailbox.wait_for("olga@example.kz")
    number = expect(mediator.client.get(f"/api/v1/cases/{case_id}"), 200)["number"]
    assert number in mail["Subject"]
    assert mail["From"] == "ODR <no-reply@odr.test>"
    body = mail.get_content()
    links = re.findall(r"http://testserver/invitations/\S+", body)
    assert links == [created["link"]]
    assert mediator.name in body

    # Olga opens the link, signed out, and makes her account with it.
    olga = platform.client()
    case = expect(olga.post(f"/api/v1/invitations/{token_of(links[0])}/accept",
                            json={"name": "Olga Petrova", "password": "olga's password"}), 200)
    assert case["id"] == case_id
    me = expect(olga.get("/api/v1/me"), 200)
    assert (me["email"], me["name"], me["role"]) == ("olga@example.kz", "Olga Petrova", "party")
    assert {"user_id": me["id"], "name": "Olga Petrova", "role": "party", "side": "b",
            "consented": False} in case["participants"]
    events = expect(requester.client.get(f"/api/v1/cases/{case_id}/events"), 200)
    # With both parties in, the mediation contract is prepared for them to sign.
    assert [e["kind"] for e in events][-3:] == ["invited", "joined", "contract_prepared"]
    # The account works with the password she chose.
    platform.login("olga@example.kz", "olga's password")

    # The administrator sees the message as sent.
    outbox = expect(platform.admin.client.get("/api/v1/admin/outbox"), 200)
    sent = [m for m in outbox if m["to"] == "olga@example.kz"]
    assert len(sent) == 1 and sent[0]["sent_at"] is not None and sent[0]["error"] == ""


def test_refused_links_change_nothing(mailing_platform: Platform, smtp: SmtpServer) -> None:
    platform = mailing_platform
    case_id, _requester, mediator = accepted_case(platform)
    used = token_of(invite(mediator, case_id, email="olga@example.kz", role="party",
                           side="b")["link"])
    expect(platform.client().post(f"/api/v1/invitations/{used}/accept",
                                  json={"name": "Olga Petrova", "password": PASSWORD}), 200)
    expired = token_of(invite(mediator, case_id, email="ruslan@example.kz",
                              role="representative", side="a")["link"])
    platform.sql("UPDATE invitation SET expires_at = '2001-01-01 00:00:00.000000' "
                 "WHERE email = 'ruslan@example.kz'")

    for token, status, message in (
        (used, 409, "This invitation has already been used."),
        ("no-such-token", 404, "This invitation link is not valid."),
        (expired, 409, "This invitation has expired. Ask for a new one."),
    ):
        before = state(platform, case_id)
        response = platform.client().post(
            f"/api/v1/invitations/{token}/accept",
            json={"name": "Someone Else", "password": "another password"})
        assert expect(response, status) == {"detail": message}
        assert "odr_session" not in response.headers.get("set-cookie", "")
        assert state(platform, case_id) == before


def test_a_new_account_needs_a_name_and_password(platform: Platform) -> None:
    case_id, _requester, mediator = accepted_case(platform)
    token = token_of(invite(mediator, case_id, email="olga@example.kz", role="party",
                            side="b")["link"])
    before = state(platform, case_id)
    body = expect(platform.client().post(f"/api/v1/invitations/{token}/accept", json={}), 400)
    assert body["errors"] == [{"field": "password",
                               "message": "Enter your name and choose a password."}]
    body = expect(platform.client().post(f"/api/v1/invitations/{token}/accept",
                                         json={"name": "Olga", "password": "short"}), 422)
    assert body["errors"] == [{"field": "password",
                               "message": "Too short: at least 8 characters."}]
    assert state(platform, case_id) == before


def test_existing_account_must_sign_in_first(platform: Platform) -> None:
    case_id, _requester, mediator = accepted_case(platform)
    olga = platform.register("Olga Petrova")
    token = token_of(invite(mediator, case_id, email=olga.email, role="party",
                            side="b")["link"])

    before = state(platform, case_id)
    body = expect(platform.client().post(f"/api/v1/invitations/{token}/accept",
                                         json={"name": "Olga Petrova", "password": PASSWORD}),
                  409)
    assert body == {"detail": "An account with this e-mail already exists. Sign in, then open "
                              "the link again."}
    assert state(platform, case_id) == before

    case = expect(olga.client.post(f"/api/v1/invitations/{token}/accept", json={}), 200)
    assert {"user_id": olga.id, "name": olga.name, "role": "party", "side": "b",
            "consented": False} in case["participants"]
    assert platform.scalar("SELECT accepted_by FROM invitation WHERE email = ?",
                           olga.email) == olga.id


WRONG_ACCOUNT = ("This invitation was sent to another address. Sign in with the address it "
                 "was sent to.")


def test_a_link_admits_only_the_account_it_was_sent_to(platform: Platform) -> None:
    case_id, _requester, mediator = accepted_case(platform)
    token = token_of(invite(mediator, case_id, email="Olga.Home@Example.kz", role="party",
                            side="b")["link"])
    work_account = platform.register("Olga Petrova", email="olga.work@example.kz")
    before = state(platform, case_id)

    answer = work_account.client.post(f"/api/v1/invitations/{token}/accept", json={})
    assert expect(answer, 403) == {"detail": WRONG_ACCOUNT}
    page = work_account.client.get(f"/invitations/{token}")
    assert page.status_code == 200
    assert WRONG_ACCOUNT in page.text and "Accept the invitation" not in page.text
    form = work_account.client.post(f"/invitations/{token}",
                                    data={"csrf": csrf(work_account.client)})
    assert form.status_code == 403 and WRONG_ACCOUNT in form.text
    assert state(platform, case_id) == before  # no participant, the link still unused

    # The address it was sent to, however it is capitalised, is admitted.
    own = platform.register("Olga Home", email="OLGA.HOME@example.kz")
    assert WRONG_ACCOUNT not in own.client.get(f"/invitations/{token}").text
    case = expect(own.client.post(f"/api/v1/invitations/{token}/accept", json={}), 200)
    assert own.id in {p["user_id"] for p in case["participants"]}


def test_the_refusal_is_in_the_readers_language(platform: Platform) -> None:
    case_id, _requester, mediator = accepted_case(platform)
    token = token_of(invite(mediator, case_id, email="olga@example.kz", role="party",
                            side="b")["link"])
    other = platform.register("Someone Else")
    expect(other.client.patch("/api/v1/me", json={"language": "ru"}), 200)
    answer = expect(other.client.post(f"/api/v1/invitations/{token}/accept", json={}), 403)
    assert answer["detail"] != WRONG_ACCOUNT and "адрес" in answer["detail"]


def test_the_mediator_revokes_a_pending_invitation(platform: Platform) -> None:
    case_id, requester, mediator = accepted_case(platform)
    created = invite(mediator, case_id, email="olga@example.kz", role="party", side="b")
    token = token_of(created["link"])
    listed = expect(mediator.client.get(f"/api/v1/cases/{case_id}/invitations"), 200)
    assert [i["id"] for i in listed] == [created["id"]]
    assert "olga@example.kz" in mediator.client.get(f"/cases/{case_id}").text

    revoke = f"/api/v1/cases/{case_id}/invitations/{created['id']}/revoke"
    body = expect(requester.client.post(revoke, json={}), 403)
    assert body == {"detail": "Only the mediator can revoke an invitation."}
    expect(requester.client.get(f"/api/v1/cases/{case_id}/invitations"), 403)

    revoked = expect(mediator.client.post(revoke, json={}), 200)
    assert revoked["revoked_at"] is not None
    assert expect(mediator.client.get(f"/api/v1/cases/{case_id}/invitations"), 200) == []
    events = expect(mediator.client.get(f"/api/v1/cases/{case_id}/events"), 200)
    assert events[-1]["kind"] == "invitation_revoked" and events[-1]["actor_id"] == mediator.id
    assert platform.scalar("SELECT count(*) FROM auditentry WHERE action = "
                           "'case.invitation_revoked' AND case_id = ?", case_id) == 1

    before = state(platform, case_id)
    message = "This invitation has been revoked by the mediator."
    answer = platform.client().post(f"/api/v1/invitations/{token}/accept",
                                    json={"name": "Olga Petrova", "password": PASSWORD})
    assert expect(answer, 409) == {"detail": message}
    page = platform.client().get(f"/invitations/{token}")
    assert page.status_code == 409 and message in page.text
    assert expect(mediator.client.post(revoke, json={}), 409) == {"detail": message}
    assert state(platform, case_id) == before


def test_revoking_through_the_case_page(platform: Platform) -> None:
    case_id, _requester, mediator = accepted_case(platform)
    created = invite(mediator, case_id, email="olga@example.kz", role="party", side="b")
    action = f"/cases/{case_id}/invitations/{created['id']}/revoke"
    assert f'action="{action}"' in mediator.client.get(f"/cases/{case_id}").text
    done = mediator.client.post(action, data={"csrf": csrf(mediator.client)},
                                follow_redirects=True)
    assert done.status_code == 200 and "The invitation has been revoked." in done.text
    assert f'action="{action}"' not in done.text
    assert "revoked an invitation" in done.text  # the timeline


def test_closed_case_refuses_its_links(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    token = platform.invite(case_id, cast.mediator, unique_email("late"), CaseRole.observer)
    platform.set_status(cast.requester, case_id, CaseStatus.withdrawn)
    before = state(platform, case_id)
    body = expect(platform.client().post(f"/api/v1/invitations/{token}/accept",
                                         json={"name": "Late Observer", "password": PASSWORD}),
                  409)
    assert body == {"detail": "The case is closed."}
    assert state(platform, case_id) == before


def test_invitation_rules(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    before = state(platform, case_id)
    url = f"/api/v1/cases/{case_id}/invitations"
    refusals = [
        (cast.mediator, {"email": cast.party_b.email, "role": "party", "side": "b"}, 409,
         "email", "This person already takes part in the case."),
        (cast.mediator, {"email": unique_email(), "role": "mediator"}, 400,
         "role", "The mediator joins by taking the case, not by invitation."),
        (cast.mediator, {"email": unique_email(), "role": "party"}, 400,
         "side", "Choose which side this person is on."),
        (cast.requester, {"email": unique_email(), "role": "observer"}, 400,
         "role", "Only the mediator can invite a person in this role."),
        (cast.mediator, {"email": "not an address", "role": "observer"}, 422,
         "email", "Enter a valid e-mail address."),
    ]
    for person, body, status, field, message in refusals:
        answer = expect(person.client.post(url, json=body), status)
        assert answer["errors"] == [{"field": field, "message": message}], body
    assert state(platform, case_id) == before
    # The requester may bring their own representative.
    platform.invite_and_accept(case_id, cast.requester, platform.register("Second Lawyer"),
                               CaseRole.representative, Side.a)


def test_outbox_without_smtp(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    address = unique_email("nomail")
    created = invite(cast.mediator, case_id, email=address, role="observer")
    assert created["mailed"] is False

    outbox = expect(platform.admin.client.get("/api/v1/admin/outbox"), 200)
    kept = [m for m in outbox if m["to"] == address]
    assert len(kept) == 1
    assert created["link"] in kept[0]["body"]
    assert kept[0]["sent_at"] is None

    for person in (cast.requester, cast.mediator, platform.clerk()):
        body = expect(person.client.get("/api/v1/admin/outbox"), 403)
        assert body == {"detail": "Only an administrator can do this."}
    expect(platform.anonymous.get("/api/v1/admin/outbox"), 401)
