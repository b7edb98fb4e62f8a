"""The room WebSocket on a real server: who may connect, the lobby, caucuses that hide chat from
the other side, refused attempts in the audit log, reconnecting within the grace period, notes,
and malformed messages."""

from __future__ import annotations

import asyncio
import html
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.live import query
from tests.rooms.conftest import Cast, Peer, Server, joined
from tests.rooms.media_client import eventually


async def refused(server: Server, case_id: int, cookie: str | None, **headers: str) -> int:
    """Try to open the room; the HTTP status the handshake was refused with."""
    extra = {"Cookie": f"odr_session={cookie}"} if cookie else {}
    with pytest.raises(InvalidStatus) as caught:
        async with connect(f"{server.ws_url}/ws/rooms/{case_id}",
                           additional_headers=extra | headers, proxy=None):
            pass
    return caught.value.response.status_code


async def admit_all(mediator: Peer, *guests: tuple[Peer, int]) -> None:
    """Admit each guest once the mediator sees them waiting in the lobby."""
    for guest, user_id in guests:
        def waiting(state: dict[str, Any], u: int = user_id) -> bool:
            return u in state["lobby"]

        await mediator.state(waiting)
        await mediator.send("admit", user_id=user_id)
        await guest.state(lambda s: s["you"]["channel"] == "joint")


def test_strangers_anonymous_and_unconsented_cases_are_refused(room_server: Server,
                                                               people: Cast) -> None:
    server, cast = room_server, people
    consented = server.case(cast)
    unconsented = server.case(cast, consented=False)

    async def scenario() -> None:
        # Before accept: the handshake is refused (the policy close, 1008, becomes HTTP 403).
        assert await refused(server, consented, cast.stranger.cookie) == 403
        assert await refused(server, consented, None) == 403
        assert await refused(server, consented, "forged-session-token") == 403
        assert await refused(server, unconsented, cast.mediator.cookie) == 403
        assert await refused(server, unconsented, cast.party_a.cookie) == 403
        assert await refused(server, 2**40, cast.party_a.cookie) == 403
        # A page of another site cannot use the participant's cookie.
        assert await refused(server, consented, cast.party_a.cookie,
                             Origin="https://evil.example") == 403
        async with joined(server, cast.party_a, consented, Origin=server.url) as a:
            assert a.ws.state.name == "OPEN"

    asyncio.run(scenario())


def test_lobby_admit_and_the_mediator_starts_the_session(room_server: Server, people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with joined(server, cast.party_a, case_id) as a:
            state = a.backlog[-1] if a.backlog else None
            assert state is None or state["type"] == "state"
            async with joined(server, cast.mediator, case_id) as med:
                assert server.case_status(cast.mediator, case_id) == "in_session"
                first = await med.state(lambda s: cast.party_a.id in s["lobby"])
                assert first["you"]["channel"] == "joint"
                assert first["people"][str(cast.party_a.id)]["role"] == "party"
                # A party cannot admit anyone.
                async with joined(server, cast.party_b, case_id) as b:
                    await a.send("admit", user_id=cast.party_b.id)
                    error = await a.next("error")
                    assert error["code"] == "forbidden" and error["about"] == "admit"
                    assert error["message"] == "Only the mediator can admit people from the lobby."
                    await admit_all(med, (a, cast.party_a.id), (b, cast.party_b.id))
                    seen = await b.state(lambda s: len(s["channels"].get("joint", [])) == 3)
                    assert sorted(seen["channels"]["joint"]) == sorted(
                        [cast.mediator.id, cast.party_a.id, cast.party_b.id])
                    assert seen["lobby"] == []
                    await a.send("chat", channel="joint", text="Салем, everyone")
                    got = await b.next("chat")
                    assert got["text"] == "Салем, everyone" and got["from"] == cast.party_a.id
        refusals = [d for actor, c, d in server.audit("room.refused")
                    if actor == cast.party_a.id and c == case_id]
        assert refusals and refusals[0]["message"] == "admit"

    asyncio.run(scenario())


def test_caucus_hides_chat_from_the_other_side(room_server: Server, people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_a, case_id) as a,
                    joined(server, cast.party_b, case_id) as b,
                    joined(server, cast.interpreter_b, case_id) as ib):
            await admit_all(med, (a, cast.party_a.id), (b, cast.party_b.id),
                            (ib, cast.interpreter_b.id))
            await med.send("caucus.open", members=[cast.party_a.id])
            opened = await med.state(lambda s: len(s["channels"]) == 2)
            caucus = next(c for c in opened["channels"] if c != "joint")
            assert opened["channels"][caucus] == [cast.mediator.id, cast.party_a.id]
            inside = await a.state(lambda s: s["you"]["channel"] == caucus)
            assert set(inside["channels"]) == {caucus}
            # Side B sees only the joint session: no caucus id, no one inside it.
            outside = await b.state(lambda s: cast.party_a.id not in s["channels"]["joint"])
            assert outside["channels"] == {"joint": [cast.party_b.id, cast.interpreter_b.id]}
            assert set(outside["people"]) == {str(cast.party_b.id), str(cast.interpreter_b.id)}

            await a.send("chat", channel=caucus, text="our lowest offer is 800 000")
            assert (await med.next("chat"))["text"] == "our lowest offer is 800 000"
            assert (await a.next("chat"))["channel"] == caucus  # delivered to everyone inside
            # B's next chat is the interpreter's, sent after the caucus line was delivered.
            await ib.send("chat", channel="joint", text="marker")
            assert (await b.next("chat"))["text"] == "marker"
            assert all(m.get("text") != "our lowest offer is 800 000" for m in b.backlog)

            # B tries to write into, read and join the caucus: refused and audited.
            await b.send("chat", channel=caucus, text="let me in")
            assert (await b.next("error"))["code"] == "forbidden"
            await b.send("history", channel=caucus)
            assert (await b.next("error"))["code"] == "forbidden"
            await b.send("caucus.move", user_id=cast.party_b.id, channel=caucus)
            assert (await b.next("error"))["code"] == "forbidden"
            await b.send("caucus.open", members=[cast.party_a.id])
            assert (await b.next("error"))["code"] == "forbidden"
            await b.send("caucus.close", channel=caucus)
            assert (await b.next("error"))["code"] == "forbidden"
            mine = [d["message"] for actor, c, d in server.audit("room.refused")
                    if actor == cast.party_b.id and c == case_id]
            assert mine == ["chat", "history", "caucus.move", "caucus.open", "caucus.close"]

            # The caucus member reads its chat; after recall everyone is back in joint.
            a.drop("history")
            await a.send("history", channel=caucus)
            history = await a.next("history", lambda h: h["channel"] == caucus)
            assert [m["text"] for m in history["messages"]] == ["our lowest offer is 800 000"]
            await med.send("recall")
            back = await b.state(lambda s: len(s["channels"]["joint"]) == 4)
            assert set(back["channels"]) == {"joint"}
            b.drop("history")
            await b.send("history", channel="joint")
            joint = await b.next("history", lambda h: h["channel"] == "joint")
            assert "our lowest offer is 800 000" not in [m["text"] for m in joint["messages"]]

    asyncio.run(scenario())


def test_the_interpreter_follows_their_party_into_caucus(room_server: Server, people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_b, case_id) as b,
                    joined(server, cast.interpreter_b, case_id) as ib):
            await admit_all(med, (b, cast.party_b.id), (ib, cast.interpreter_b.id))
            await med.send("caucus.open", members=[cast.party_b.id])
            state = await ib.state(lambda s: s["you"]["channel"] != "joint")
            channel = state["you"]["channel"]
            assert state["channels"][channel] == [cast.mediator.id, cast.party_b.id,
                                                  cast.interpreter_b.id]

    asyncio.run(scenario())


def test_reconnect_within_grace_returns_to_the_same_channel_with_history(
    room_server: Server, people: Cast
) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_a, case_id) as a):
            await admit_all(med, (a, cast.party_a.id))
            async with joined(server, cast.party_b, case_id) as b:
                await admit_all(med, (b, cast.party_b.id))
                await med.send("caucus.open", members=[cast.party_b.id])
                state = await b.state(lambda s: s["you"]["channel"] != "joint")
                caucus = state["you"]["channel"]
                await b.send("chat", channel=caucus, text="before the network dropped")
                await med.next("chat")
                # The socket just goes away (no "leave").
                b.ws.transport.abort()
            gone = await med.state(
                lambda s: s["people"][str(cast.party_b.id)]["online"] is False)
            assert gone["channels"][caucus] == [cast.mediator.id, cast.party_b.id]
            med.drop("knock")
            async with joined(server, cast.party_b, case_id, join=False) as again:
                await again.send("join")
                back = await again.state()
                assert back["you"]["channel"] == caucus
                history = await again.next("history")
                assert history["channel"] == caucus
                assert [m["text"] for m in history["messages"]] == ["before the network dropped"]
                await med.state(lambda s: s["people"][str(cast.party_b.id)]["online"] is True)
                assert not [m for m in med.backlog if m["type"] == "knock"]
                # Leaving for good gives up the place: the next join knocks at the lobby.
                await again.send("leave")
            await med.state(lambda s: str(cast.party_b.id) not in s["people"])
            async with joined(server, cast.party_b, case_id) as third:
                await med.next("knock", lambda k: k["user_id"] == cast.party_b.id)
                assert third.backlog == [] or third.backlog[-1]["type"] != "history"

    asyncio.run(scenario())


def test_notes_reach_only_mediators(room_server: Server, people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_a, case_id) as a):
            await admit_all(med, (a, cast.party_a.id))
            notes = await med.next("notes")
            assert notes["notes"] == []
            await med.send("note", text="A seems ready to settle at 900 000")
            note = await med.next("note")
            assert note["text"] == "A seems ready to settle at 900 000"
            await a.send("note", text="I am a mediator now")
            assert (await a.next("error"))["code"] == "forbidden"
            await a.send("notes")
            assert (await a.next("error"))["code"] == "forbidden"
            await med.send("chat", channel="joint", text="marker")
            await a.next("chat", lambda c: c["text"] == "marker")
            assert not [m for m in a.backlog if m["type"] in ("note", "notes")]
            await med.send("notes")
            again = await med.next("notes")
            assert [n["text"] for n in again["notes"]] == ["A seems ready to settle at 900 000"]
        refusals = [d["message"] for actor, c, d in server.audit("room.refused")
                    if actor == cast.party_a.id and c == case_id]
        assert refusals == ["note", "notes"]

    asyncio.run(scenario())


def test_malformed_and_unknown_messages_get_an_error_and_change_nothing(
    room_server: Server, people: Cast
) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)
    bad: list[tuple[str, str]] = [
        ("{not json", "invalid"),
        ("[1, 2]", "invalid"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "admit", "user_id": "everyone"}', "invalid"),
        ('{"type": "chat", "channel": "joint"}', "invalid"),
        ('{"type": "chat", "channel": "joint", "text": "   "}', "invalid"),
        ('{"type": "chat", "channel": "../etc", "text": "hi"}', "invalid"),
        ('{"type": "caucus.open", "members": []}', "invalid"),
        ('{"type": "join", "extra": 1}', "invalid"),
        ('{"type": "chat", "channel": "joint", "text": "' + "x" * 70_000 + '"}', "invalid"),
    ]

    async def scenario() -> None:
        async with joined(server, cast.mediator, case_id) as med:
            before: dict[str, Any] = med.backlog[-1] if med.backlog else {}
            for text, code in bad:
                await med.send_raw(text)
                error = await med.next("error")
                assert error["code"] == code, (text[:60], error)
                assert error["message"]
            await med.send("caucus.close", channel="joint")
            assert (await med.next("error"))["code"] == "conflict"
            await med.send("chat", channel="joint", text="still here")
            assert (await med.next("chat"))["text"] == "still here"
            assert not [m for m in med.backlog if m["type"] == "state" and m != before]
        # Errors of form are not refusals of permission: nothing in the audit log.
        assert not [1 for actor, c, _d in server.audit("room.refused")
                    if actor == cast.mediator.id and c == case_id]

    asyncio.run(scenario())


def test_messages_before_join_and_errors_in_the_users_language(room_server: Server,
                                                               people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        # The observer never chose a language: the browser's Accept-Language decides.
        async with joined(server, cast.observer, case_id, join=False,
                          **{"Accept-Language": "ru"}) as a:
            await a.send("chat", channel="joint", text="hello")
            error = await a.next("error")
            assert error["code"] == "conflict"
            assert error["message"] != "Join the session first."  # said in Russian

    asyncio.run(scenario())


def test_media_is_refused_clearly_without_a_relay_or_in_the_lobby(room_server: Server,
                                                                  people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with joined(server, cast.party_a, case_id) as a:
            await a.send("publish.offer", sdp="v=0\r\n")
            error = await a.next("error")
            assert error["code"] in ("media_unavailable", "conflict")

    asyncio.run(scenario())


def test_the_room_closes_for_everyone_when_the_case_ends(room_server: Server,
                                                         people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with joined(server, cast.mediator, case_id) as med, \
                joined(server, cast.party_a, case_id) as a:
            await admit_all(med, (a, cast.party_a.id))
            withdrawn = await asyncio.to_thread(
                cast.party_b.client.post, f"/api/v1/cases/{case_id}/status",
                json={"status": "withdrawn"})
            assert withdrawn.status_code == 200, withdrawn.text
            for peer in (med, a):
                error = await peer.next("error")
                assert error["code"] == "case_ended"
                assert error["message"] == "The mediation has ended, so the room is closed."
                async with asyncio.timeout(10):
                    await peer.ws.wait_closed()
                assert peer.ws.close_code == 4001
        assert await refused(server, case_id, cast.party_a.cookie) == 403

    asyncio.run(scenario())


def test_a_refused_status_change_leaves_the_room_open(room_server: Server, people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with joined(server, cast.mediator, case_id) as med:
            # An observer may not withdraw: nothing is committed, so nobody is told anything.
            refused_change = await asyncio.to_thread(
                cast.observer.client.post, f"/api/v1/cases/{case_id}/status",
                json={"status": "withdrawn"})
            assert refused_change.status_code == 403
            await med.send("chat", channel="joint", text="still here")
            chat = await med.next("chat")
            assert chat["text"] == "still here"
            assert not [m for m in med.backlog if m["type"] == "error"]

    asyncio.run(scenario())


def test_signalling_out_of_order_and_deep_nesting_are_refusals_not_faults(
    room_server: Server, people: Cast
) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)
    logged = len(server.live.output)

    async def scenario() -> None:
        async with joined(server, cast.mediator, case_id) as med:
            # An answer when the server has offered nothing: the relay cannot take it.
            await med.send("subscribe.answer", sdp="v=0\r\n")
            error = await med.next("error")
            assert (error["code"], error["about"]) == ("invalid", "subscribe.answer")
            assert error["message"] == ("There is no video offer waiting for this answer, or "
                                        "the answer is not valid.")
            # Deep enough to make Python's JSON parser recurse out of its stack.
            for deep in ("[" * 5000, '{"a": ' * 5000, '{"type": "chat", "x": ' + "[" * 9):
                await med.send_raw(deep)
                error = await med.next("error")
                assert error["code"] == "invalid", error
                assert error["message"] == "The message is nested too deeply."
            # Brackets inside text are text, however many.
            await med.send("chat", channel="joint", text="[" * 3000)
            assert (await med.next("chat"))["text"] == "[" * 3000
            assert med.ws.state.name == "OPEN"

    asyncio.run(scenario())
    # Refusals, not faults: the server logged no traceback for them.
    assert not [line for line in server.live.output[logged:] if "Traceback" in line]


async def b_in_caucus(med: Peer, a: Peer, b: Peer, cast: Cast) -> str:
    """Both parties admitted, then the mediator and B in a caucus; its id."""
    await admit_all(med, (a, cast.party_a.id), (b, cast.party_b.id))
    await med.send("caucus.open", members=[cast.party_b.id])
    caucus: str = (await b.state(lambda s: s["you"]["channel"] != "joint"))["you"]["channel"]
    await med.state(lambda s: s["you"]["channel"] == caucus)
    return caucus


def test_a_broadcast_reaches_every_meeting_and_only_from_a_mediator(room_server: Server,
                                                                     people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_a, case_id) as a,
                    joined(server, cast.party_b, case_id) as b):
            caucus = await b_in_caucus(med, a, b, cast)

            await med.send("broadcast", text="Back to the joint session in 2 minutes")
            for peer, channel in ((a, "joint"), (b, caucus), (med, caucus)):
                got = await peer.next("chat", lambda m: m.get("broadcast") is True)
                assert (got["channel"], got["text"], got["from"]) == (
                    channel, "Back to the joint session in 2 minutes", cast.mediator.id)
            assert caucus not in json.dumps(a.backlog)  # A learns nothing of the caucus
            # Stored in each meeting's chat, as any message is.
            b.drop("history")  # the one sent when B entered the caucus
            await b.send("history", channel=caucus)
            history = await b.next("history", lambda h: h["channel"] == caucus)
            assert history["messages"][-1]["text"] == "Back to the joint session in 2 minutes"

            await a.send("broadcast", text="Everybody listen to me")
            refused = await a.next("error")
            assert refused["code"] == "forbidden" and refused["about"] == "broadcast"
            assert refused["message"] == "Only the mediators write to every meeting at once."
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await b.next("chat", lambda m: m["text"] == "Everybody listen to me")

    asyncio.run(scenario())
    refusals = [d["message"] for actor, _c, d in server.audit("room.refused")
                if actor == cast.party_a.id]
    assert "broadcast" in refusals


def test_a_caucus_timer_reaches_exactly_its_members_and_only_from_a_mediator(
        room_server: Server, people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_a, case_id) as a,
                    joined(server, cast.party_b, case_id) as b):
            caucus = await b_in_caucus(med, a, b, cast)
            a.drop("state")

            started = time.time()
            await med.send("timer.set", channel=caucus, seconds=300)
            for peer in (med, b):
                timer = (await peer.state(lambda s: s["timer"] is not None))["timer"]
                assert timer["channel"] == caucus
                assert started + 299 <= timer["ends_at"] <= time.time() + 301
            # Side A, in the joint session, gets nothing of it: not even a new state.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await a.state(lambda s: s["timer"] is not None)
            assert caucus not in json.dumps(a.backlog)

            await b.send("timer.set", channel=caucus, seconds=5)
            refused = await b.next("error")
            assert refused["code"] == "forbidden" and refused["about"] == "timer.set"
            assert refused["message"] == "Only the mediator can set a timer."
            await med.send("timer.set", channel="joint", seconds=99999)
            assert (await med.next("error"))["code"] == "invalid"

            await med.send("timer.set", channel=caucus, seconds=0)
            await b.state(lambda s: s["timer"] is None)
            # A joint-session countdown reaches the joint session.
            await med.send("caucus.close", channel=caucus)
            await med.state(lambda s: s["you"]["channel"] == "joint")
            await med.send("timer.set", channel="joint", seconds=60)
            for peer in (a, b, med):
                await peer.state(lambda s: (s["timer"] or {}).get("channel") == "joint")

    asyncio.run(scenario())
    refusals = [d["message"] for actor, _c, d in server.audit("room.refused")
                if actor == cast.party_b.id]
    assert "timer.set" in refusals


def moment(value: Any) -> datetime:
    """A time read back from either database (SQLite gives text)."""
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return found.replace(tzinfo=found.tzinfo or UTC)


def test_the_mediators_time_is_watched_live_and_kept_when_the_session_ends(
        room_server: Server, people: Cast) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)
    began = time.time()

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_a, case_id) as a,
                    joined(server, cast.party_b, case_id) as b):
            assert (await med.state())["neutrality"]["position"] == "joint"
            await b_in_caucus(med, a, b, cast)
            state = await med.state(lambda s: s["neutrality"]["position"] == "b")
            assert set(state["neutrality"]["seconds"]) == {"joint", "a", "b", "other"}
            # The parties are not shown it live.
            assert (await b.state())["neutrality"] is None
            for peer in (a, b, med):  # everyone leaves: the session is over
                await peer.send("leave")
        rows: list[tuple[Any, ...]] = []

        def kept() -> bool:
            rows[:] = query(server.live, "SELECT joint_seconds, side_a_seconds, side_b_seconds,"
                            " other_seconds, started_at, ended_at FROM neutralityrecord"
                            " WHERE case_id = ?", case_id)
            return bool(rows)

        await eventually(kept, what="the session's neutrality record")
        joint, side_a, side_b, other, started, ended = rows[0]
        assert side_a == other == 0 and len(rows) == 1
        assert 0 <= joint + side_b <= time.time() - began + 1
        # It adds up to the session's length: from the mediator's entry to the room's end
        # (each of the four counts is rounded to the second).
        length = (moment(ended) - moment(started)).total_seconds()
        assert abs(joint + side_a + side_b + other - length) <= 2, (rows, length)
        # And the case's running sums, which the statistics read, count it.
        assert query(server.live, 'SELECT sessions_held, side_a_seconds, side_b_seconds '
                     'FROM "case" WHERE id = ?', case_id) == [(1, side_a, side_b)]

    asyncio.run(scenario())
    page = cast.party_b.client.get(f"/cases/{case_id}")
    assert page.status_code == 200 and "The mediator's time" in html.unescape(page.text)
