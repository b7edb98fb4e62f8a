"""The media relay against real aiortc peers over loopback, without the room around it."""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from rooms.media import MediaRelay
from rooms.media.relay import PUBLISH_CAPS
from tests.rooms.media_client import MediaClient, eventually

A, B, C, D = 1, 2, 3, 4


def new_relay() -> MediaRelay:
    return MediaRelay(ice_servers=[], media_addresses=["127.0.0.1"])


async def publish(relay: MediaRelay, client: MediaClient) -> None:
    answer = await relay.publish(client.user_id, await client.publish_offer())
    await client.publish_answer(answer)


async def receive(relay: MediaRelay, client: MediaClient, sources: Iterable[int]) -> bool:
    """Set whom ``client`` receives and complete the negotiation; whether there was an offer."""
    offer = await relay.set_sources(client.user_id, set(sources))
    if offer is None:
        return False
    sdp, tracks = offer
    await relay.subscribe_answer(client.user_id, await client.subscribe_offer(sdp, tracks))
    return True


def decoder_threads() -> int:
    # Executor threads come and go with load; decoder threads belong to one receiver each.
    return sum(1 for t in threading.enumerate() if t.name.endswith("-decoder"))


def task_names() -> list[str]:
    return [getattr(t.get_coro(), "__qualname__", repr(t)) for t in asyncio.all_tasks()]


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


async def snapshot_window(client: MediaClient, seconds: float) -> tuple[dict[int, int], Any]:
    before = dict(client.packets_by_ssrc)
    frames_before = dict(client.frames)
    await asyncio.sleep(seconds)
    packets = {s: n - before.get(s, 0) for s, n in client.packets_by_ssrc.items()}
    frames = {c: n - frames_before.get(c, 0) for c, n in client.frames.items()}
    return packets, frames


def test_media_flows_both_ways_without_reencoding() -> None:
    async def scenario() -> None:
        relay = new_relay()
        a, b = MediaClient(A, "red"), MediaClient(B, "green")
        try:
            await publish(relay, a)
            await publish(relay, b)
            assert await receive(relay, a, {B})
            assert await receive(relay, b, {A})
            await eventually(lambda: a.frames["green"] >= 10 and b.frames["red"] >= 10,
                             what="video both ways")
            # Audio packets flow too, and nothing else than the other side's picture arrives.
            assert set(a.frames) == {"green"} and set(b.frames) == {"red"}
            await eventually(lambda: a.packets_from(B) > 0 and b.packets_from(A) > 0)
            assert len(a.tracks) == 2 and set(a.tracks.values()) == {B}
            # The same set again: nothing to renegotiate.
            assert await relay.set_sources(A, {B}) is None
            assert relay.stats()["forwarded"] == 4
        finally:
            await relay.close()
            await a.close()
            await b.close()

    run(scenario)


def test_cut_off_subscriber_receives_no_packets_then_resumes() -> None:
    async def scenario() -> None:
        relay = new_relay()
        a, b, c = MediaClient(A, "red"), MediaClient(B, "green"), MediaClient(C, "blue")
        try:
            for client in (a, b, c):
                await publish(relay, client)
            await receive(relay, c, {A, B})
            await receive(relay, a, {B, C})
            await eventually(lambda: c.frames["red"] >= 5 and c.frames["green"] >= 5,
                             what="C sees A and B")
            a_ssrcs = {s for s, user in c.ssrc_owner.items() if user == A}
            b_ssrcs = {s for s, user in c.ssrc_owner.items() if user == B}
            assert a_ssrcs and b_ssrcs

            # A caucus without C: C's offer drops A; the cut-off is at once, before C answers.
            offer = await relay.set_sources(C, {B})
            assert offer is not None
            sdp, tracks = offer
            assert set(tracks.values()) == {B}
            await asyncio.sleep(0.2)  # packets already on the wire
            packets, frames = await snapshot_window(c, 1.0)
            assert sum(packets.get(s, 0) for s in a_ssrcs) == 0
            assert frames.get("red", 0) == 0
            assert frames.get("green", 0) > 0
            assert sum(packets.values()) == sum(packets.get(s, 0) for s in b_ssrcs)

            await relay.subscribe_answer(C, await c.subscribe_offer(sdp, tracks))
            packets, frames = await snapshot_window(c, 1.0)
            assert sum(packets.get(s, 0) for s in a_ssrcs) == 0 and frames.get("red", 0) == 0
            # A, in the caucus, still receives B and C.
            a_frames = dict(a.frames)
            await eventually(lambda: a.frames["green"] > a_frames["green"]
                             and a.frames["blue"] > a_frames["blue"])

            # Recall: C receives A again, on the m-lines it had.
            assert await receive(relay, c, {A, B})
            assert set(c.tracks.values()) == {A, B}
            assert {s for s, user in c.ssrc_owner.items() if user == A} == a_ssrcs
            red = c.frames["red"]
            await eventually(lambda: c.frames["red"] >= red + 5, what="A's video again")
        finally:
            await relay.close()
            for client in (a, b, c):
                await client.close()

    run(scenario)


def is_estimate(packet: Any) -> bool:
    return isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP


def watch_video_rtcp(client: MediaClient, seen: Callable[[Any], bool]) -> None:
    """Show ``seen`` each RTCP packet ``client``'s video sender gets; it returns whether the
    sender handles it too."""
    sender = next(s for s in client.publisher.getSenders() if s.kind == "video")
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if seen(packet):
            await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def ignore_bitrate_estimates(client: MediaClient) -> None:
    watch_video_rtcp(client, lambda packet: not is_estimate(packet))


def watch_keyframe_requests(client: MediaClient, ignore: int = 0) -> list[float]:
    """Record when ``client``'s video sender is asked for a keyframe (PLI/FIR); the first
    ``ignore`` requests are dropped, as Chromium drops one within 300 ms of the last."""
    sender = next(s for s in client.publisher.getSenders() if s.kind == "video")
    original = sender._send_keyframe
    requests: list[float] = []

    def recording() -> None:
        requests.append(asyncio.get_running_loop().time())
        if len(requests) > ignore:
            original()

    sender._send_keyframe = recording  # type: ignore[method-assign]
    return requests


def test_late_subscriber_decodes_at_once_thanks_to_keyframe_requests() -> None:
    async def scenario() -> None:
        relay = new_relay()
        a, b, d = MediaClient(A, "red"), MediaClient(B, "green"), MediaClient(D, "white")

        try:
            await publish(relay, a)
            keyframe_requests = watch_keyframe_requests(a)
            await publish(relay, b)
            await receive(relay, b, {A})
            await eventually(lambda: b.frames["red"] >= 30, what="B sees A")
            requests_before = len(keyframe_requests)

            loop = asyncio.get_running_loop()
            started = loop.time()
            await publish(relay, d)
            await receive(relay, d, {A})
            await eventually(lambda: d.frames["red"] >= 1, within=5, what="late joiner frame")
            # Within a second, and because the relay asked A for a keyframe.
            assert loop.time() - started < 1.0
            assert len(keyframe_requests) > requests_before
        finally:
            await relay.close()
            for client in (a, b, d):
                await client.close()

    run(scenario)


def test_late_subscriber_gets_video_when_the_publisher_ignores_a_keyframe_request() -> None:
    """A publisher ignored the relay's request (Chromium does within 300 ms of the previous
    one; a PLI can be lost on the way): the relay asks again, spaced out, until it comes."""

    async def scenario() -> None:
        relay = new_relay()
        a, b, d = MediaClient(A, "red"), MediaClient(B, "green"), MediaClient(D, "white")

        try:
            await publish(relay, a)
            await publish(relay, b)
            await receive(relay, b, {A})
            await eventually(lambda: b.frames["red"] >= 30, what="B sees A")

            keyframe_requests = watch_keyframe_requests(a, ignore=1)
            # aiortc's encoder starts over with a keyframe when told a new bitrate: keep the
            # relay's estimates from making the keyframe this test waits for.
            ignore_bitrate_estimates(a)
            await publish(relay, d)
            await receive(relay, d, {A})
            # aiortc's own encoder makes a keyframe only every 3000 frames or when asked.
            await eventually(lambda: d.frames["red"] >= 1, within=5, what="late joiner frame")
            assert len(keyframe_requests) >= 2
            gaps = [t2 - t1 for t1, t2 in itertools.pairwise(keyframe_requests)]
            assert min(gaps) > 0.3, gaps  # never inside the publisher's own 300 ms throttle
        finally:
            await relay.close()
            for client in (a, b, d):
                await client.close()

    run(scenario)


def test_publisher_leaving_stops_its_relays_and_subscribers_get_a_new_offer() -> None:
    async def scenario() -> None:
        relay = new_relay()
        notified: list[int] = []

        async def on_tracks(user_id: int) -> None:
            notified.append(user_id)

        relay.on_publisher_tracks = on_tracks
        a, b = MediaClient(A, "red"), MediaClient(B, "green")
        try:
            await publish(relay, a)
            await publish(relay, b)
            await eventually(lambda: notified == [A, B] or sorted(notified) == [A, B])
            await receive(relay, b, {A})
            await eventually(lambda: b.frames["red"] >= 3)
            await relay.remove(A)
            a_ssrcs = {s for s, user in b.ssrc_owner.items() if user == A}
            await asyncio.sleep(0.2)
            packets, _ = await snapshot_window(b, 0.5)
            assert sum(packets.get(s, 0) for s in a_ssrcs) == 0
            offer = await relay.set_sources(B, {A})  # A is gone: the offer drops its tracks
            assert offer is not None and offer[1] == {}
            assert relay.stats()["forwarded"] == 0
        finally:
            await relay.close()
            await a.close()
            await b.close()

    run(scenario)


def test_many_joins_and_leaves_leak_nothing() -> None:
    async def scenario() -> None:
        relay = new_relay()
        host = MediaClient(A, "red", send_audio=False)
        try:
            await publish(relay, host)
            baseline_tasks = baseline_threads = 0
            baseline_names: list[str] = []
            for round_ in range(12):
                if round_ == 1:  # the host's subscriber connection now exists, idle
                    # No event says aiortc's background tasks of the first guest have ended:
                    # let them, so that the baseline holds only what stays.
                    await asyncio.sleep(0.5)
                    baseline_tasks = len(asyncio.all_tasks())
                    baseline_threads = decoder_threads()
                    baseline_names = task_names()
                guest = MediaClient(100 + round_, "green", send_audio=False)
                await publish(relay, guest)
                await receive(relay, guest, {A})
                await receive(relay, host, {guest.user_id})
                await eventually(lambda g=guest: g.frames["red"] >= 1, what="guest sees host")
                await relay.remove(guest.user_id)
                await guest.close()
                await receive(relay, host, set())
            stats = relay.stats()
            assert stats["publishers"] == 1 and stats["subscribers"] == 1
            assert stats["forwarded"] == 0 and stats["sources"] == 1
            try:
                await eventually(lambda: len(asyncio.all_tasks()) <= baseline_tasks
                                 and decoder_threads() <= baseline_threads,
                                 what="tasks and decoder threads back to the baseline")
            except AssertionError as timed_out:  # say what stayed, to tell a leak from noise
                extra = Counter(task_names()) - Counter(baseline_names)
                raise AssertionError(f"{timed_out}: tasks beyond it {dict(extra)}, decoder "
                                     f"threads {decoder_threads()} of {baseline_threads}"
                                     ) from None
            await relay.close()
            await host.close()

            def open_connections() -> list[RTCPeerConnection]:
                gc.collect()
                alive = [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection)]
                return [pc for pc in alive if pc.connectionState != "closed"]

            await eventually(lambda: open_connections() == [], what="every connection closed")
            assert relay.stats() == {
                "publishers": 0, "subscribers": 0, "sources": 0, "forwarded": 0, "tasks": 0,
            }
        finally:
            await relay.close()
            await host.close()

    run(scenario)


def test_a_viewer_s_nack_is_answered_from_the_cache_not_by_the_publisher() -> None:
    async def scenario() -> None:
        relay = new_relay()
        a, b = MediaClient(A, "red"), MediaClient(B, "green")
        try:
            await publish(relay, a)
            await receive(relay, b, {A})
            await eventually(lambda: b.frames["red"] >= 10, what="B sees A")
            video_sender = next(s for s in a.publisher.getSenders() if s.kind == "video")
            asked: list[int] = []
            original = video_sender._retransmit

            async def recording(seq: int) -> None:
                asked.append(seq)
                await original(seq)

            video_sender._retransmit = recording  # type: ignore[method-assign,assignment]
            keyframe_requests = watch_keyframe_requests(a)
            ssrc = next(s for s, kind in b.ssrc_kind.items()
                        if kind == "video" and s in b.last_seq)
            lost = (b.last_seq[ssrc] - 2) & 0xFFFF
            receiver = next(t.receiver for t in b.subscriber.getTransceivers()
                            if t.kind == "video")
            await receiver._send_rtcp_nack(ssrc, [lost])
            await eventually(lambda: any(seq == lost for _, seq in b.retransmissions),
                             within=3, what="the retransmission")
            rtx_ssrc = next(s for s, seq in b.retransmissions if seq == lost)
            assert rtx_ssrc != ssrc  # as RTX (RFC 4588), on its own SSRC
            await asyncio.sleep(0.3)  # room for a request to the publisher, were one made
            assert asked == [] and keyframe_requests == []
        finally:
            await relay.close()
            for client in (a, b):
                await client.close()

    run(scenario)


def test_the_publisher_s_bitrate_is_capped_by_who_watches() -> None:
    async def scenario() -> None:
        relay = new_relay()
        a, b = MediaClient(A, "red"), MediaClient(B, "green")
        try:
            await publish(relay, a)
            estimates: list[int] = []

            def recording(packet: Any) -> bool:
                if is_estimate(packet):
                    estimates.append(unpack_remb_fci(packet.fci)[0])
                return True

            watch_video_rtcp(a, recording)
            await receive(relay, b, {A})
            await eventually(lambda: b.frames["red"] >= 10, what="B sees A")
            await eventually(lambda: len(estimates) >= 2, within=10, what="estimates")
            assert max(estimates) <= PUBLISH_CAPS[1] * 1.01
            # Nobody watches any more: the cap drops to a trickle at once.
            await receive(relay, b, set())
            count = len(estimates)
            await eventually(lambda: len(estimates) > count, within=3, what="a lower cap")
            assert estimates[-1] <= PUBLISH_CAPS[0] * 1.01
        finally:
            await relay.close()
            for client in (a, b):
                await client.close()

    run(scenario)
