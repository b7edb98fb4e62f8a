"""A participant the mediator removes: their open room and draft sockets close at once with
4403, and the case is refused to them from then on (HTTP, API, sockets)."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.rooms.conftest import Cast, Server, User, joined
from tests.rooms.test_socket import refused

# Removal must reach open sockets within a second (it is in-process, after the commit).
PROMPTLY = 1.0
REMOVED = 4403
REASON = "Shared the session link with a journalist."


def draft_of(server: Server, cast: Cast, case_id: int) -> int:
    got = cast.mediator.client.post(f"/api/v1/cases/{case_id}/drafts", json={"language": "en"})
    assert got.status_code == 201, got.text
    draft_id: int = got.json()["id"]
    return draft_id


def test_a_removed_observer_is_disconnected_and_refused(room_server: Server,
                                                        people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)
    draft_id = draft_of(server, cast, case_id)
    observer = cast.observer
    url = f"/api/v1/cases/{case_id}/participants/{observer.id}/remove"

    async def scenario() -> None:
        async with joined(server, observer, case_id) as room, \
                connect(f"{server.ws_url}/ws/drafts/{draft_id}", proxy=None,
                        additional_headers={"Cookie": f"odr_session={observer.cookie}"}
                        ) as draft:
            await draft.recv()  # the server's sync step 1: the draft socket is open
            removed = await asyncio.to_thread(cast.mediator.client.post, url,
                                              json={"reason": REASON})
            assert removed.status_code == 200, removed.text
            assert observer.id not in {p["user_id"] for p in removed.json()["participants"]}
            async with asyncio.timeout(PROMPTLY):
                error = await room.next("error")
                await room.ws.wait_closed()
                await draft.wait_closed()
            assert error["code"] == "removed"
            assert error["message"] == "You have been removed from this case."
            assert room.ws.close_code == REMOVED
            assert draft.close_code == REMOVED
        assert await refused(server, case_id, observer.cookie) == 403
        assert await refused_draft(server, draft_id, observer.cookie) == 403

    asyncio.run(scenario())

    for path in (f"/api/v1/cases/{case_id}", f"/cases/{case_id}", f"/cases/{case_id}/room",
                 f"/api/v1/drafts/{draft_id}", f"/drafts/{draft_id}"):
        assert observer.client.get(path).status_code == 404, path
    assert case_id not in {c["id"] for c in observer.client.get("/api/v1/cases").json()}
    events = cast.mediator.client.get(f"/api/v1/cases/{case_id}/events").json()
    assert (events[-1]["kind"], events[-1]["detail"]) == ("participant_removed", REASON)
    removal = [d for _a, c, d in server.audit("case.participant_removed") if c == case_id]
    assert removal and removal[-1]["user_id"] == observer.id


async def refused_draft(server: Server, draft_id: int, cookie: str) -> int:
    """Try to open the draft's socket; the HTTP status the handshake was refused with."""
    try:
        async with connect(f"{server.ws_url}/ws/drafts/{draft_id}", proxy=None,
                           additional_headers={"Cookie": f"odr_session={cookie}"}):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_removal_rules(room_server: Server, people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    def remove(by: User, whom: int, reason: str) -> tuple[int, object]:
        got = by.client.post(f"/api/v1/cases/{case_id}/participants/{whom}/remove",
                                 json={"reason": reason})
        return got.status_code, got.json().get("detail")

    assert remove(cast.mediator, cast.mediator.id, REASON) == (
        403, "You cannot remove yourself from the case.")
    assert remove(cast.party_a, cast.observer.id, REASON) == (
        403, "Only the mediator can remove a participant.")
    assert remove(cast.mediator, cast.stranger.id, REASON) == (
        404, "This person does not take part in the case.")
    assert remove(cast.mediator, cast.observer.id, "   ")[0] == 422
    assert remove(cast.mediator, cast.observer.id, "x" * 501)[0] == 422
    # None of it changed anything: the observer is still in the case.
    got = cast.observer.client.get(f"/api/v1/cases/{case_id}")
    assert got.status_code == 200, got.text
