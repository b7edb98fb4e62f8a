"""Drafts through the API (fast tier): who may start, read, approve and freeze; approvals that
a later edit clears; versions and their differences; a caucus's private draft."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from odr.models import CaseStatus
from tests.drafts.yclient import raw_update, update_message
from tests.harness import Cast, Person, Platform, expect


def start_draft(platform: Platform, cast: Cast, **body: Any) -> tuple[int, int]:
    case_id = platform.build_case(cast, CaseStatus.consented)
    draft = expect(cast.mediator.client.post(
        f"/api/v1/cases/{case_id}/drafts", json={"language": "ru"} | body), 201)
    return case_id, int(draft["id"])


def edit(client: TestClient, draft_id: int, text: str) -> None:
    """Type a paragraph through the draft's WebSocket, as an editor would."""
    with client.websocket_connect(f"/ws/drafts/{draft_id}") as ws:
        ws.receive_bytes()  # the server's sync step 1
        ws.send_bytes(update_message(raw_update(text)))
        # A sync step 1 from us is answered after our update was handled (messages are ordered).
        ws.send_bytes(b"\x00\x00\x01\x00")
        while ws.receive_bytes()[:2] != b"\x00\x01":
            pass


def draft_of(person: Person, draft_id: int) -> dict[str, Any]:
    got: dict[str, Any] = expect(person.client.get(f"/api/v1/drafts/{draft_id}"), 200)
    return got


def test_a_new_draft_holds_the_template_filled_with_the_case(
    platform: Platform, cast: Cast
) -> None:
    case_id, draft_id = start_draft(platform, cast)
    draft = draft_of(cast.requester, draft_id)
    case = expect(cast.requester.client.get(f"/api/v1/cases/{case_id}"), 200)
    assert draft["text"].startswith("Медиативное соглашение\n")
    for needed in (case["number"], "Erlan Requester", "Olga PartyB", "Aigul Mediator",
                   "Предмет спора", "Последствия неисполнения", "Подписи",
                   "преимущество имеет текст на русском языке"):
        assert needed in draft["text"], needed
    assert "<h1>Медиативное соглашение</h1>" in draft["html"]
    assert draft["version"] == 1 and draft["frozen"] is False
    english = expect(cast.mediator.client.post(
        f"/api/v1/cases/{case_id}/drafts", json={"language": "en"}), 201)
    assert english["text"].startswith("Mediation agreement\n")
    events = expect(cast.requester.client.get(f"/api/v1/cases/{case_id}/events"), 200)
    assert [e["kind"] for e in events].count("draft_created") == 2


@pytest.mark.parametrize(("who", "code"), [
    ("requester", 403), ("party_b", 403), ("observer", 403), ("mediator", 201),
    ("co_mediator", 201),
])
def test_only_mediators_start_drafts(platform: Platform, cast: Cast, who: str,
                                     code: int) -> None:
    case_id = platform.build_case(cast, CaseStatus.consented)
    person: Person = getattr(cast, who)
    response = person.client.post(f"/api/v1/cases/{case_id}/drafts", json={"language": "kk"})
    assert response.status_code == code, response.text


def test_drafts_wait_for_consent_and_strangers_see_nothing(
    platform: Platform, cast: Cast
) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    early = cast.mediator.client.post(f"/api/v1/cases/{case_id}/drafts", json={"language": "ru"})
    assert early.status_code == 409
    _case, draft_id = start_draft(platform, cast)
    stranger = platform.register("Sergey Stranger")
    assert stranger.client.get(f"/api/v1/drafts/{draft_id}").status_code == 404
    assert platform.anonymous.get(f"/api/v1/drafts/{draft_id}").status_code == 401
    bad = cast.mediator.client.post(f"/api/v1/cases/{case_id}/drafts", json={"language": "de"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "language"


def test_a_later_edit_clears_approvals_and_freezing_needs_every_party(
    platform: Platform, cast: Cast
) -> None:
    _case, draft_id = start_draft(platform, cast)
    approve = f"/api/v1/drafts/{draft_id}/approve"
    freeze = f"/api/v1/drafts/{draft_id}/freeze"
    assert cast.observer.client.post(approve, json={}).status_code == 403
    assert cast.mediator.client.post(approve, json={}).status_code == 403
    after_a = expect(cast.requester.client.post(approve, json={}), 200)
    assert {p["name"]: p["approved_current"] for p in after_a["parties"]} == {
        "Erlan Requester": True, "Olga PartyB": False}
    assert cast.mediator.client.post(freeze, json={}).status_code == 409

    edit(cast.party_b.client, draft_id, "4. Party B pays by the 10th of each month.")
    edited = draft_of(cast.requester, draft_id)
    assert edited["version"] == 2
    assert not any(p["approved_current"] for p in edited["parties"])  # the mark is cleared
    assert "4. Party B pays by the 10th of each month." in edited["text"]

    for party in (cast.requester, cast.party_b):
        expect(party.client.post(approve, json={}), 200)
    assert cast.requester.client.post(freeze, json={}).status_code == 403  # mediators only
    frozen = expect(cast.mediator.client.post(freeze, json={}), 200)
    assert frozen["version"] == 2
    assert cast.mediator.client.post(freeze, json={}).status_code == 409  # already frozen
    assert cast.requester.client.post(approve, json={}).status_code == 409

    versions = expect(cast.observer.client.get(f"/api/v1/drafts/{draft_id}/versions"), 200)
    assert [(v["version"], v["reason"]) for v in versions] == [
        (1, "created"), (1, "approved"), (2, "approved"), (2, "approved"), (2, "frozen")]
    diff = expect(cast.observer.client.get(f"/api/v1/drafts/{draft_id}/diff?from=1&to=2"), 200)
    assert diff["from"] == 1 and diff["to"] == 2
    assert {"op": "insert", "text": "4. Party B pays by the 10th of each month."} in diff["lines"]
    assert not [line for line in diff["lines"] if line["op"] == "delete"]
    missing = cast.observer.client.get(f"/api/v1/drafts/{draft_id}/diff?from=1&to=9")
    assert missing.status_code == 404


def test_a_caucus_draft_is_private_to_its_members(platform: Platform, cast: Cast) -> None:
    case_id, joint_id = start_draft(platform, cast)
    private = expect(cast.mediator.client.post(
        f"/api/v1/cases/{case_id}/drafts",
        json={"language": "ru", "channel": "caucus-a", "members": [cast.requester.id]}), 201)
    private_id = private["id"]
    assert draft_of(cast.requester, private_id)["channel"] == "caucus-a"
    assert draft_of(cast.co_mediator, private_id)["id"] == private_id  # mediators always may
    for outsider in (cast.party_b, cast.observer, cast.interpreter):
        assert outsider.client.get(f"/api/v1/drafts/{private_id}").status_code == 404
        listed = expect(outsider.client.get(f"/api/v1/cases/{case_id}/drafts"), 200)
        assert [d["id"] for d in listed] == [joint_id]
        with pytest.raises(WebSocketDisconnect) as closed:
            with outsider.client.websocket_connect(f"/ws/drafts/{private_id}") as ws:
                ws.receive_bytes()
        assert closed.value.code == 1008  # refused before accept
    page = cast.party_b.client.get(f"/cases/{case_id}").text
    assert f'href="/drafts/{joint_id}"' in page and f'href="/drafts/{private_id}"' not in page
    bad = cast.mediator.client.post(f"/api/v1/cases/{case_id}/drafts",
                                    json={"language": "ru", "members": [999999]})
    assert bad.status_code == 400


