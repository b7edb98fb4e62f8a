"""Media through the real server: aiortc participants signalling over the room WebSocket.

A mediator (blue), party A (red) and party B (green) see and hear each other in the joint
session; when the mediator takes A into a caucus, B receives no RTP packet and no frame of the
caucus while its members keep receiving each other; after the recall B receives them again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from tests.rooms.conftest import Cast, Peer, Server, joined
from tests.rooms.media_client import MediaClient, eventually
from tests.rooms.test_socket import admit_all


async def pump(peer: Peer, client: MediaClient) -> None:
    """Own the peer's socket from now on: answer the relay, keep everything else."""
    while True:
        msg: dict[str, Any] = json.loads(await peer.ws.recv())
        if msg["type"] == "publish.answer":
            await client.publish_answer(msg["sdp"])
        elif msg["type"] == "subscribe.offer":
            answer = await client.subscribe_offer(msg["sdp"], msg["tracks"])
            await peer.send("subscribe.answer", sdp=answer)
        else:
            peer.backlog.append(msg)


@asynccontextmanager
async def publishing(*members: tuple[Peer, int, str]) -> AsyncIterator[list[MediaClient]]:
    """Each member's aiortc client publishes a camera of its colour (and sound) over its room
    socket, which is pumped from then on; all are closed afterwards."""
    clients = [MediaClient(user_id, colour) for _peer, user_id, colour in members]
    tasks = [asyncio.ensure_future(pump(peer, client))
             for (peer, _u, _c), client in zip(members, clients, strict=True)]
    try:
        for (peer, _u, _c), client in zip(members, clients, strict=True):
            await peer.send("publish.offer", sdp=await client.publish_offer())
        yield clients
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.close()


async def caucus_is_sealed(med: Peer, ca: MediaClient, cb: MediaClient, mediator_id: int,
                           a_id: int) -> None:
    """The mediator (blue) takes A (red) into a caucus: B (green), left outside, receives no RTP
    packet and no frame of either, while A keeps receiving the mediator and not B."""
    sealed = {s for s, u in cb.ssrc_owner.items() if u in (mediator_id, a_id)}
    assert sealed
    await med.send("caucus.open", members=[a_id])
    await eventually(lambda: len(latest_state(med).get("channels", {})) == 2, 10,
                     "caucus opened")
    await asyncio.sleep(0.5)  # the routing change and packets already on the wire
    packets, frames = await window(cb, 1.5)
    assert sum(packets.get(s, 0) for s in sealed) == 0, "caucus packets reached B"
    assert frames.get("red", 0) == 0 and frames.get("blue", 0) == 0
    _, frames_a = await window(ca, 1.0)
    assert frames_a.get("blue", 0) > 0 and frames_a.get("green", 0) == 0


def latest_state(peer: Peer) -> dict[str, Any]:
    return next((m for m in reversed(peer.backlog) if m["type"] == "state"), {})


async def window(client: MediaClient, seconds: float) -> tuple[dict[int, int], dict[str, int]]:
    packets, frames = dict(client.packets_by_ssrc), dict(client.frames)
    await asyncio.sleep(seconds)
    return ({s: n - packets.get(s, 0) for s, n in client.packets_by_ssrc.items()},
            {c: n - frames.get(c, 0) for c, n in client.frames.items()})


def test_caucus_cuts_media_off_from_the_other_side_until_recall(
    room_server: Server, people: Cast
) -> None:
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_a, case_id) as a,
                    joined(server, cast.party_b, case_id) as b):
            await admit_all(med, (a, cast.party_a.id), (b, cast.party_b.id))
            async with publishing((med, cast.mediator.id, "blue"), (a, cast.party_a.id, "red"),
                                  (b, cast.party_b.id, "green")) as (cm, ca, cb):
                def sees(client: MediaClient, *colours: str) -> Callable[[], bool]:
                    return lambda: all(client.frames[c] >= 5 for c in colours)

                await eventually(sees(cm, "red", "green"), 20, "mediator sees both sides")
                await eventually(sees(ca, "blue", "green"), 20, "A sees mediator and B")
                await eventually(sees(cb, "blue", "red"), 20, "B sees mediator and A")
                await caucus_is_sealed(med, ca, cb, cast.mediator.id, cast.party_a.id)

                await med.send("recall")
                red, blue = cb.frames["red"], cb.frames["blue"]
                await eventually(lambda: cb.frames["red"] > red + 5
                                 and cb.frames["blue"] > blue + 5, 20, "B receives again")

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_sound_only_stops_the_video_sent_to_one_viewer_and_back(
    room_server: Server, people: Cast
) -> None:
    """A party on a weak link asks for sound only during the session: the relay stops every
    video packet to them (others still get it) while their sound goes on; then video returns."""
    server, cast = room_server, people
    case_id = server.case(cast)

    async def scenario() -> None:
        async with (joined(server, cast.mediator, case_id) as med,
                    joined(server, cast.party_a, case_id) as a,
                    joined(server, cast.party_b, case_id) as b):
            await admit_all(med, (a, cast.party_a.id), (b, cast.party_b.id))
            async with publishing((med, cast.mediator.id, "blue"), (a, cast.party_a.id, "red"),
                                  (b, cast.party_b.id, "green")) as (_cm, ca, cb):
                await eventually(lambda: ca.frames["blue"] >= 5 and cb.frames["blue"] >= 5, 20,
                                 "both parties see the mediator")

                await a.send("media.receive", video=False)
                await eventually(lambda: not any(ca.ssrc_kind.get(ssrc) == "video"
                                                 for ssrc in ca.ssrc_owner), 10,
                                 "the relay's new offer sends A no video")
                await asyncio.sleep(0.5)  # packets already on the wire
                before = (ca.packets_of("video"), ca.packets_of("audio"), dict(ca.frames))
                _, frames_b = await window(cb, 1.5)
                assert ca.packets_of("video") == before[0], "video still reached A"
                assert ca.packets_of("audio") > before[1] + 20, "A's sound stopped"
                assert ca.frames == before[2]
                assert frames_b.get("blue", 0) > 0 and frames_b.get("red", 0) > 0  # B: as before

                await a.send("media.receive", video=True)
                blue = ca.frames["blue"]
                await eventually(lambda: ca.frames["blue"] > blue + 5, 20, "A sees video again")

    asyncio.run(asyncio.wait_for(scenario(), 90))
