"""Cases: asking for mediation, the status machine and its timeline, sessions, the register."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from odr.models import CaseRole, CaseStatus, Side
from tests.harness import Cast, Person, Platform, case_request, expect, sign_contract, signer


def timeline(person: Person, case_id: int) -> list[tuple[str, str | None]]:
    events = expect(person.client.get(f"/api/v1/cases/{case_id}/events"), 200)
    return [(e["kind"], e["status"]) for e in events]


def view(person: Person, case_id: int) -> dict[str, Any]:
    case: dict[str, Any] = expect(person.client.get(f"/api/v1/cases/{case_id}"), 200)
    return case


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    assert isinstance(body["detail"], str) and body["detail"]
    assert all(set(e) == {"field", "message"} for e in body["errors"])
    return {e["field"]: e["message"] for e in body["errors"]}


# --- asking for mediation -----------------------------------------------------------------

def test_request_mediation(platform: Platform) -> None:
    requester = platform.register("Erlan Requester")
    case = expect(requester.client.post("/api/v1/cases", json=case_request()), 201)
    assert case["status"] == "requested"
    assert case["requester_id"] == requester.id
    assert case["number"].endswith(f"-{case['id']:05d}")
    assert case["participants"] == [{
        "user_id": requester.id, "name": requester.name, "role": "party", "side": "a",
        "consented": True,
    }]
    assert timeline(requester, case["id"]) == [("requested", "requested")]
    listed = expect(requester.client.get("/api/v1/cases"), 200)
    assert [c["id"] for c in listed] == [case["id"]]


def test_request_mediation_validation(platform: Platform) -> None:
    requester = platform.register("Erlan Requester")
    body = expect(requester.client.post("/api/v1/cases", json={
        "category": "divorce", "summary": "short", "language": "de", "region": "almaty_city",
        "other_party_name": "Olga Petrova"}), 422)
    assert errors_of(body) == {
        "category": "Choose one of the offered values.",
        "summary": "Too short: at least 10 characters.",
        "language": "Choose one of the offered values.",
        "other_party_contact": "This field is required.",
    }
    assert platform.scalar("SELECT count(*) FROM \"case\"") == 0


def test_region_must_be_from_the_list(platform: Platform) -> None:
    requester = platform.register("Erlan Requester")
    body = expect(requester.client.post("/api/v1/cases", json=case_request(region="mars")), 422)
    assert errors_of(body) == {"region": "Choose a region from the list."}
    assert platform.scalar("SELECT count(*) FROM \"case\"") == 0


def test_chosen_mediator_must_be_in_the_register(platform: Platform) -> None:
    requester = platform.register("Erlan Requester")
    not_a_mediator = platform.register("Olga Citizen")
    retired = platform.mediator("Retired Mediator", active=False)
    for mediator_id in (not_a_mediator.id, retired.id, 999_999):
        body = expect(requester.client.post(
            "/api/v1/cases", json=case_request(mediator_id=mediator_id)), 400)
        assert errors_of(body) == {"mediator_id": "Choose a mediator from the register."}
    assert platform.scalar("SELECT count(*) FROM \"case\"") == 0
    mediator = platform.mediator()
    case = expect(requester.client.post(
        "/api/v1/cases", json=case_request(mediator_id=mediator.id)), 201)
    assert case["chosen_mediator_id"] == mediator.id


def test_anonymous_cannot_request(platform: Platform) -> None:
    expect(platform.anonymous.post("/api/v1/cases", json=case_request()), 401)
    assert platform.scalar("SELECT count(*) FROM \"case\"") == 0


# --- the happy path -------------------------------------------------------------------------

def test_requested_accepted_consented(platform: Platform) -> None:
    requester = platform.register("Erlan Requester")
    mediator = platform.mediator("Aigul Mediator")
    case_id = expect(requester.client.post(
        "/api/v1/cases", json=case_request(mediator_id=mediator.id)), 201)["id"]

    # The chosen mediator sees the request before taking it, and takes it.
    assert view(mediator, case_id)["status"] == "requested"
    accepted = expect(mediator.client.post(f"/api/v1/cases/{case_id}/accept", json={}), 200)
    assert accepted["status"] == "accepted"
    assert [(p["user_id"], p["role"]) for p in accepted["participants"]] == [
        (requester.id, "party"), (mediator.id, "mediator")]

    # The mediator invites the other side; she makes her account from the link.
    invited = expect(mediator.client.post(f"/api/v1/cases/{case_id}/invitations", json={
        "email": "olga@example.kz", "name": "Olga Petrova", "role": "party", "side": "b"}), 201)
    party_b_client = platform.client()
    joined = expect(party_b_client.post(
        f"/api/v1/invitations/{invited['link'].rsplit('/', 1)[1]}/accept",
        json={"name": "Olga Petrova", "password": "olga's password"}), 200)
    assert joined["status"] == "accepted"
    party_b = expect(party_b_client.get("/api/v1/me"), 200)

    # Consent is signing the mediation contract: both parties and the mediator.
    sign_contract(case_id, [signer(requester), (party_b_client, "Olga Petrova", "olga's password"),
                            signer(mediator)])
    consented = view(mediator, case_id)
    assert consented["status"] == "consented"
    assert all(p["consented"] for p in consented["participants"] if p["role"] == "party")

    expected = [
        ("requested", "requested"),
        ("status", "accepted"),
        ("invited", None),
        ("joined", None),
        ("contract_prepared", None),
        ("contract_signed", None),
        ("contract_signed", None),
        ("contract_signed", None),
        ("contract_concluded", None),
        ("status", "consented"),
    ]
    for person in (requester, mediator):
        assert timeline(person, case_id) == expected
    events = expect(party_b_client.get(f"/api/v1/cases/{case_id}/events"), 200)
    assert [(e["kind"], e["status"]) for e in events] == expected
    actors = [e["actor_id"] for e in events]
    # The contract is prepared by the change that completed the case's people (B joining).
    assert actors == [requester.id, mediator.id, mediator.id, party_b["id"], party_b["id"],
                      requester.id, party_b["id"], mediator.id, None, None]
    # Every participant finds the case in their list.
    for client in (requester.client, mediator.client, party_b_client):
        assert case_id in [c["id"] for c in expect(client.get("/api/v1/cases"), 200)]


def test_a_party_who_joins_after_consent_consents_before_the_session(
    platform: Platform, cast: Cast
) -> None:
    case_id = platform.build_case(cast, CaseStatus.in_session)
    late = platform.register("Late Party")
    platform.invite_and_accept(case_id, cast.mediator, late, CaseRole.party, Side.b)
    room = late.client.get(f"/cases/{case_id}/room")
    assert room.status_code == 409
    assert "Consent to mediation first; then you can join the session." in room.text
    assert expect(late.client.post(f"/api/v1/cases/{case_id}/consent", json={}),
                  200)["status"] == "in_session"
    assert late.client.get(f"/cases/{case_id}/room").status_code == 200
    assert timeline(cast.mediator, case_id)[-1] == ("consented", None)


# --- out of order: 409, and nothing changes ---------------------------------------------------

def unchanged(platform: Platform, person: Person, case_id: int) -> dict[str, Any]:
    return {
        "case": view(person, case_id),
        "events": timeline(person, case_id),
        "sessions": expect(person.client.get(f"/api/v1/cases/{case_id}/sessions"), 200),
        "audit": platform.scalar("SELECT count(*) FROM auditentry"),
    }


def test_consent_twice(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    contract = sign_contract(case_id, [signer(cast.party_b)])
    before = unchanged(platform, cast.party_b, case_id)
    body = expect(cast.party_b.client.post(f"/api/v1/drafts/{contract['draft_id']}/sign", json={
        "password": cast.party_b.password, "full_name": cast.party_b.name}), 409)
    assert body == {"detail": "You have already signed this agreement."}
    assert unchanged(platform, cast.party_b, case_id) == before


def test_before_the_sessions_consent_is_signing_the_contract(platform: Platform, cast: Cast
                                                            ) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    for person in (cast.requester, cast.party_b):
        before = unchanged(platform, person, case_id)
        body = expect(person.client.post(f"/api/v1/cases/{case_id}/consent", json={}), 409)
        assert body == {"detail": "Consent by signing the mediation contract on the case page."}
        assert unchanged(platform, person, case_id) == before


def test_accept_twice(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    before = unchanged(platform, cast.mediator, case_id)
    body = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/accept", json={}), 409)
    assert body == {"detail": "The case already has its mediator."}
    assert unchanged(platform, cast.mediator, case_id) == before


def test_schedule_before_acceptance(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.requested)
    before = unchanged(platform, cast.requester, case_id)
    # The chosen mediator is not in the case until they take it.
    expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/sessions",
                                     json={"starts_at": in_days(2)}), 404)
    body = expect(cast.requester.client.post(f"/api/v1/cases/{case_id}/sessions",
                                             json={"starts_at": in_days(2)}), 403)
    assert body == {"detail": "Only the mediator can schedule sessions."}
    assert unchanged(platform, cast.requester, case_id) == before


def test_schedule_after_the_case_ended(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.withdrawn)
    before = unchanged(platform, cast.mediator, case_id)
    body = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/sessions",
                                            json={"starts_at": in_days(2)}), 409)
    assert body == {"detail": "Sessions can be scheduled once a mediator has taken the case."}
    assert unchanged(platform, cast.mediator, case_id) == before


def test_start_session_before_consent(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    before = unchanged(platform, cast.mediator, case_id)
    body = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/status",
                                            json={"status": "in_session"}), 409)
    assert body == {"detail": "The session cannot be started now."}
    assert unchanged(platform, cast.mediator, case_id) == before


@pytest.mark.parametrize("status", ["requested", "accepted", "consented", "signed", "filed"])
def test_statuses_nobody_may_ask_for(platform: Platform, cast: Cast, status: str) -> None:
    case_id = platform.build_case(cast, CaseStatus.consented)
    before = unchanged(platform, cast.mediator, case_id)
    body = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/status",
                                            json={"status": status}), 409)
    assert body == {
        "detail": "This step is not possible while the case is in its present state."}
    assert unchanged(platform, cast.mediator, case_id) == before


def test_nothing_moves_a_closed_case(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.no_agreement)
    before = unchanged(platform, cast.requester, case_id)
    for person, status in ((cast.requester, "withdrawn"), (cast.mediator, "in_session"),
                           (cast.mediator, "no_agreement")):
        expect(person.client.post(f"/api/v1/cases/{case_id}/status",
                                  json={"status": status}), 409)
    assert unchanged(platform, cast.requester, case_id) == before


def test_withdrawal_is_on_the_timeline_with_its_reason(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.consented)
    expect(cast.party_b.client.post(f"/api/v1/cases/{case_id}/status", json={
        "status": "withdrawn", "reason": "We settled between ourselves."}), 200)
    last = expect(cast.observer.client.get(f"/api/v1/cases/{case_id}/events"), 200)[-1]
    assert (last["kind"], last["status"], last["detail"], last["actor_id"]) == (
        "status", "withdrawn", "We settled between ourselves.", cast.party_b.id)


# --- sessions -------------------------------------------------------------------------------

def in_days(days: int, zone: str = "Asia/Almaty") -> str:
    moment = datetime.now(ZoneInfo(zone)).replace(microsecond=0) + timedelta(days=days)
    return moment.isoformat()


def test_schedule_a_session_with_its_time_zone(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.consented)
    local = (datetime.now(ZoneInfo("Asia/Almaty")) + timedelta(days=5)).replace(
        hour=10, minute=30, second=0, microsecond=0)
    created = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/sessions", json={
        "starts_at": local.isoformat(), "duration_minutes": 90, "note": "Joint session"}), 201)
    assert datetime.fromisoformat(created["starts_at"]) == local
    listed = expect(cast.party_b.client.get(f"/api/v1/cases/{case_id}/sessions"), 200)
    assert len(listed) == 1
    starts = datetime.fromisoformat(listed[0]["starts_at"])
    assert starts == local  # the same instant...
    assert starts.utcoffset() == timedelta(0)  # ...kept in UTC
    assert (listed[0]["duration_minutes"], listed[0]["note"]) == (90, "Joint session")
    assert timeline(cast.party_b, case_id)[-1] == ("session_scheduled", None)


@pytest.mark.parametrize(("starts_at", "message"), [
    ("2099-03-01T10:00:00", "Give the time with its time zone."),
    ("2020-03-01T10:00:00+05:00", "The session must be in the future."),
    ("2099-03-01T10:00:00+05:00", "Choose a time within the next two years."),
    # Past the calendar's end once in UTC, or in a reader's zone ahead of UTC.
    ("9999-12-31T23:00:00-12:00", "Choose a time within the next two years."),
    ("9999-12-31T23:00:00+00:00", "Choose a time within the next two years."),
])
def test_refused_session_times(
    platform: Platform, cast: Cast, starts_at: str, message: str
) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    before = unchanged(platform, cast.mediator, case_id)
    body = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/sessions",
                                            json={"starts_at": starts_at}), 400)
    assert errors_of(body) == {"starts_at": message}
    assert unchanged(platform, cast.mediator, case_id) == before


def test_session_fields_are_validated(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    body = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/sessions", json={
        "starts_at": "next tuesday", "duration_minutes": 5}), 422)
    assert errors_of(body) == {"starts_at": "Enter a date and time.",
                               "duration_minutes": "Must be at least 15."}


def test_past_check_uses_the_instant_not_the_wall_clock(platform: Platform, cast: Cast) -> None:
    """An hour from now in UTC, written in a zone far behind, is still in the future."""
    case_id = platform.build_case(cast, CaseStatus.accepted)
    soon = (datetime.now(UTC) + timedelta(hours=1)).astimezone(ZoneInfo("America/Los_Angeles"))
    expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/sessions",
                                     json={"starts_at": soon.isoformat()}), 201)


# --- the register of mediators and open requests ----------------------------------------------

def test_search_the_register(platform: Platform) -> None:
    platform.mediator("Aigul Family", kind="professional", languages=["kk", "ru"],
                      regions=["almaty_city"], specialisations=["family"])
    platform.mediator("Bolat Labour", kind="public", languages=["ru"],
                      regions=["astana", "almaty_city"], specialisations=["labour", "property"])
    platform.mediator("Dana Court", kind="court", languages=["kk", "en"],
                      regions=["shymkent"], specialisations=["property"])
    platform.mediator("Erbol Inactive", active=False, languages=["kk"])
    platform.register("Just Citizen")

    def names(**query: str) -> list[str]:
        found = expect(platform.anonymous.get("/api/v1/mediators", params=query), 200)
        return [m["name"] for m in found]

    assert names() == ["Aigul Family", "Bolat Labour", "Dana Court"]
    assert names(language="kk") == ["Aigul Family", "Dana Court"]
    assert names(language="en") == ["Dana Court"]
    assert names(region="almaty_city") == ["Aigul Family", "Bolat Labour"]
    assert names(specialisation="property") == ["Bolat Labour", "Dana Court"]
    assert names(kind="public") == ["Bolat Labour"]
    assert names(language="ru", specialisation="property", region="astana") == ["Bolat Labour"]
    assert names(region="almaty") == []  # the region, not a prefix of the city
    # Only listed values are searched for (a LIKE wildcard never reaches the query).
    for query in ({"language": "%"}, {"region": "almaty%"}, {"specialisation": "_"}):
        expect(platform.anonymous.get("/api/v1/mediators", params=query), 422)

    entry = expect(platform.anonymous.get("/api/v1/mediators", params={"kind": "court"}), 200)[0]
    assert entry["languages"] == ["kk", "en"]
    assert entry["regions"] == ["shymkent"]
    assert entry["specialisations"] == ["property"]
    assert "email" not in entry

    body = expect(platform.anonymous.get("/api/v1/mediators", params={"kind": "wizard"}), 422)
    assert errors_of(body) == {"kind": "Choose one of the offered values."}


def test_only_the_administrator_keeps_the_register(platform: Platform) -> None:
    citizen = platform.register("Would Be")
    expect(citizen.client.put(f"/api/v1/admin/mediators/{citizen.id}",
                              json={"kind": "professional"}), 403)
    expect(platform.anonymous.put(f"/api/v1/admin/mediators/{citizen.id}",
                                  json={"kind": "professional"}), 401)
    assert expect(platform.anonymous.get("/api/v1/mediators"), 200) == []
    assert expect(citizen.client.get("/api/v1/me"), 200)["role"] == "party"


def test_open_requests(platform: Platform) -> None:
    requester = platform.register("Erlan Requester")
    aigul = platform.mediator("Aigul Mediator")
    bolat = platform.mediator("Bolat Mediator")
    anyone = expect(requester.client.post("/api/v1/cases", json=case_request()), 201)["id"]
    for_aigul = expect(requester.client.post(
        "/api/v1/cases", json=case_request(mediator_id=aigul.id)), 201)["id"]

    def open_for(person: Person) -> list[int]:
        return [c["id"] for c in expect(person.client.get("/api/v1/cases/open"), 200)]

    assert open_for(aigul) == [anyone, for_aigul]
    assert open_for(bolat) == [anyone]
    body = expect(requester.client.get("/api/v1/cases/open"), 403)
    assert body == {"detail": "Only mediators see open requests."}
    expect(platform.anonymous.get("/api/v1/cases/open"), 401)

    # Bolat cannot see or take Aigul's request; any registered mediator may take the open one.
    expect(bolat.client.get(f"/api/v1/cases/{for_aigul}"), 404)
    expect(bolat.client.post(f"/api/v1/cases/{for_aigul}/accept", json={}), 404)
    taken = expect(bolat.client.post(f"/api/v1/cases/{anyone}/accept", json={}), 200)
    assert taken["chosen_mediator_id"] == bolat.id
    assert open_for(aigul) == [for_aigul]
    assert open_for(bolat) == []

    # A mediator taken off the register sees no open requests and can take none.
    expect(platform.admin.client.put(f"/api/v1/admin/mediators/{aigul.id}",
                                     json={"kind": "professional", "active": False}), 200)
    assert open_for(aigul) == []
    expect(aigul.client.post(f"/api/v1/cases/{for_aigul}/accept", json={}), 404)
