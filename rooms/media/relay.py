"""The media relay: a selective forwarding unit over aiortc that never decodes or re-encodes.

Each participant has two peer connections to the relay (DESIGN.md section 6): a *publisher*
connection on which the browser offers its microphone and camera, and a *subscriber* connection
on which the relay offers the tracks the participant may receive and offers again whenever that
set changes. Each RTP packet from a publisher's receiver is forwarded, as it came, to one
``Egress`` per viewer (``rooms/media/packets.py``), which rewrites it into the viewer's stream.
Keyframe requests from viewers go on to the publisher; their NACKs are answered from the
publisher's packet cache. Cutting a subscriber off a source (a caucus it is not in) takes
effect at once, without waiting for the browser's answer: no further RTP packet of that source
leaves for that subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)
from aiortc.sdp import candidate_from_sdp

from rooms.media import aiortc_hooks as hooks
from rooms.media.links import PROBE_SECONDS, LinkMonitor
from rooms.media.packets import (
    Egress,
    PacketCache,
    abs_send_time,
    read_picture_id,
    vp8_keyframe_start,
)
from rooms.signalling import SignallingRefused

logger = logging.getLogger(__name__)


#: Codecs forwarded as they are: every browser decodes these.
FORWARDED_CODECS = {"audio": {"audio/opus"}, "video": {"video/vp8"}}
#: Keyframe requests to one publisher are at least this far apart (seconds). Chromium's
#: encoder ignores a request that comes within 300 ms of the one before (libwebrtc's
#: ``EncoderRtcpFeedback``), so a request sent sooner would be lost. While any viewer still
#: waits for a keyframe, the source asks again at this pace: that also covers a request
#: that the publisher ignored or the network lost.
KEYFRAME_REQUEST_INTERVAL = 0.4
#: How long a new subscriber offer waits for the answer to the previous one (seconds).
ANSWER_WAIT = 5.0
#: How often the relay looks at every viewer's link and every publisher's cap (seconds).
LINK_CHECK_INTERVAL = 0.5
#: The most a publisher's video may take (bit/s), by how many people see it in full: one
#: viewer may show it large, eight people see small tiles; nobody watching: keep it alive at
#: a trickle, ready for the next viewer. A browser publisher keeps under the REMB it is sent.
PUBLISH_CAPS = {0: 150_000, 1: 1_500_000, 2: 1_200_000, 3: 1_000_000}
PUBLISH_CAP_MANY = 600_000
#: How fast a probe of a viewer's link sends (bit/s): the video it was sent, within these.
PROBE_MIN_RATE, PROBE_MAX_RATE = 300_000, 1_500_000


def publish_cap(viewers: int) -> int:
    return PUBLISH_CAPS.get(viewers, PUBLISH_CAP_MANY)


@dataclass(eq=False)
class SourceTrack:
    """One track a publisher sends, forwarded packet by packet to the ``Egress`` of each viewer."""

    publisher: int
    kind: str
    receiver: RTCRtpReceiver
    id: str
    outlets: list[Egress] = field(default_factory=list)
    cache: PacketCache = field(default_factory=PacketCache)
    ended: bool = False
    cap: int = PUBLISH_CAPS[1]  # the bitrate estimates sent to the publisher are capped here
    _keyframe_requested: float = -1e9
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def on_packet(self, packet: RtpPacket) -> None:
        self.cache.put(packet)
        if not self.outlets:
            return
        payload = packet.payload
        video = self.kind == "video"
        keyframe = video and vp8_keyframe_start(payload)
        picture_id = read_picture_id(payload) if video else None
        ntp = hooks.ntp_time()
        stamp = abs_send_time(ntp)
        waiting = False
        for outlet in self.outlets:
            waiting |= outlet.forward(packet, keyframe, ntp, stamp, picture_id)
        if waiting:
            self.request_keyframe()

    def end(self) -> None:
        self.ended = True

    def set_cap(self, viewers: int) -> None:
        """Cap the publisher's bitrate for ``viewers`` who see this video; a lower cap goes
        out at once (aiortc's own estimates go out about once a second)."""
        cap = publish_cap(viewers)
        lower, self.cap = cap < self.cap, cap
        if lower and (coroutine := hooks.send_bitrate_estimate(self.receiver, cap)):
            self._spawn(coroutine)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, unless the last request is too recent.

        A request held back here is not lost: the outlets that wait for a keyframe make the
        next packet ask again (``on_packet``).
        """
        if self.kind != "video" or self.ended:
            return
        now = time.monotonic()
        if now - self._keyframe_requested < KEYFRAME_REQUEST_INTERVAL:
            return
        coroutine = hooks.request_keyframe(self.receiver)
        if coroutine is None:
            return  # nothing received yet: the first frame a publisher sends is a keyframe
        self._keyframe_requested = now
        self._spawn(coroutine)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@dataclass(eq=False)
class Publisher:
    user_id: int
    pc: RTCPeerConnection
    tracks: dict[RTCRtpReceiver, SourceTrack] = field(default_factory=dict)

    def live_tracks(self) -> list[SourceTrack]:
        return [t for t in self.tracks.values() if not t.ended]


@dataclass(eq=False)
class Slot:
    """One m-line of a subscriber connection: a source's track, or idle for reuse."""

    transceiver: RTCRtpTransceiver
    egress: Egress
    source: SourceTrack | None = None
    last_source: str | None = None
    fresh: bool = False  # attached since the last answer: wants a keyframe once active

    @property
    def sender(self) -> RTCRtpSender:
        return self.transceiver.sender


@dataclass(eq=False)
class Subscriber:
    user_id: int
    sources: set[int] = field(default_factory=set)
    video: bool = True  # False: the subscriber asked for sound only (a weak link)
    pc: RTCPeerConnection | None = None
    slots: list[Slot] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stable: asyncio.Event = field(default_factory=asyncio.Event)
    dirty: bool = False  # a track was cut off outside a negotiation: the next call re-offers
    link: LinkMonitor = field(default_factory=LinkMonitor)
    last_estimate: object = None

    def detach(self, slot: Slot) -> None:
        """Stop forwarding to ``slot`` now; it stays negotiated (idle) until the next offer."""
        source = slot.source
        if source is None:
            return
        with contextlib.suppress(ValueError):
            source.outlets.remove(slot.egress)
        slot.egress.unbind()
        slot.sender.replaceTrack(hooks.ParkedTrack(slot.transceiver.kind))
        slot.source = None
        slot.last_source = source.id
        slot.fresh = False
        slot.transceiver.direction = "inactive"


def rtc_ice_servers(servers: list[dict[str, Any]]) -> list[RTCIceServer]:
    """The configured STUN/TURN servers (``Settings.ice_servers``) as aiortc takes them."""
    return [RTCIceServer(urls=server["urls"], username=server.get("username"),
                         credential=server.get("credential")) for server in servers]


class MediaRelay:
    """Forwards each participant's audio and video to the participants allowed to receive it.

    The room decides who receives whom (``set_sources``); the relay carries it out on the
    subscriber connections and tells the room when a publisher's tracks change
    (``on_publisher_tracks``) so that the room can re-offer to subscribers.
    """

    def __init__(self, *, ice_servers: list[dict[str, Any]], media_addresses: list[str]) -> None:
        hooks.install()
        self._ice_servers = rtc_ice_servers(ice_servers)
        self._media_addresses = list(media_addresses)
        self._publishers: dict[int, Publisher] = {}
        self._subscribers: dict[int, Subscriber] = {}
        self._early_candidates: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self.on_publisher_tracks: Callable[[int], Awaitable[None]] | None = None
        #: Called with (user_id, video_paused) when the relay holds video back from a viewer
        #: whose link cannot carry it, and when it sends video again.
        self.on_link: Callable[[int, bool], Awaitable[None]] | None = None
        self._link_task: asyncio.Task[None] | None = None

    # --- Publishing ----------------------------------------------------------------------------

    async def publish(self, user_id: int, offer_sdp: str) -> str:
        """Apply a participant's publisher offer (microphone and camera); return the answer.

        A second offer from the same participant renegotiates the same connection (tracks
        added or removed). Raises SignallingRefused for an offer the relay cannot take.
        """
        publisher = self._publishers.get(user_id)
        if publisher is not None and publisher.pc.connectionState in ("failed", "closed"):
            await self._drop_publisher(user_id)
            publisher = None
        if publisher is None:
            publisher = Publisher(user_id, self._new_pc())
            self._publishers[user_id] = publisher
            self._watch(publisher.pc, user_id, "publish")
        pc = publisher.pc
        before = {t.id for t in publisher.live_tracks()}
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            # Synchronously after applying the offer, before the connection can start the
            # receivers: hook every new receiver.
            for transceiver in pc.getTransceivers():
                receiver = transceiver.receiver
                if receiver.track is not None and receiver not in publisher.tracks:
                    hooks.restrict_codecs(transceiver, FORWARDED_CODECS[transceiver.kind])
                    self._add_source(publisher, transceiver)
            await self._apply_early_candidates(user_id, "publish", pc)
            answer = await pc.createAnswer()
            with hooks.offered_addresses(self._media_addresses):
                await pc.setLocalDescription(answer)
        except Exception as exc:
            if not before:
                await self._drop_publisher(user_id)
            if isinstance(exc, ValueError | AssertionError):
                raise SignallingRefused(f"publisher offer refused: {exc}") from exc
            raise
        for transceiver in pc.getTransceivers():
            source = publisher.tracks.get(transceiver.receiver)
            if source is not None and transceiver.currentDirection not in ("recvonly", "sendrecv"):
                self._end_source(source)
        if {t.id for t in publisher.live_tracks()} != before:
            self._notify_tracks(user_id)
        return pc.localDescription.sdp

    def _add_source(self, publisher: Publisher, transceiver: RTCRtpTransceiver) -> None:
        receiver = transceiver.receiver
        source = SourceTrack(
            publisher=publisher.user_id,
            kind=transceiver.kind,
            receiver=receiver,
            id=f"u{publisher.user_id}-{transceiver.kind}-{next(self._ids)}-{uuid.uuid4().hex[:8]}",
        )
        hooks.tap_packets(receiver, source.on_packet, lambda: self._end_source(source))
        if source.kind == "video":
            hooks.cap_bitrate_estimates(receiver, lambda: source.cap)
        publisher.tracks[receiver] = source

    def _end_source(self, source: SourceTrack) -> None:
        """A publisher's track is gone: stop every relay it feeds."""
        if source.ended:
            return
        source.end()
        for subscriber in self._subscribers.values():
            for slot in subscriber.slots:
                if slot.source is source:
                    subscriber.detach(slot)
                    subscriber.dirty = True
        source.outlets.clear()

    def _notify_tracks(self, user_id: int) -> None:
        callback = self.on_publisher_tracks
        if callback is not None:
            self._spawn(callback(user_id))

    # --- Subscribing ---------------------------------------------------------------------------

    async def set_sources(
        self, user_id: int, sources: set[int], *, video: bool = True
    ) -> tuple[str, dict[str, int]] | None:
        """Set whose tracks ``user_id`` receives (with ``video`` false: their sound only);
        return a new subscriber offer if that changed.

        Sources taken away stop at once (no RTP packet of theirs reaches the participant
        afterwards, whatever the browser answers). The offer comes with ``{track_id: user_id}``
        for every track it carries (the msid track ids). When an earlier offer is still
        unanswered this waits for its answer (``subscribe_answer``, up to ANSWER_WAIT seconds),
        so do not hold anything ``subscribe_answer`` needs while awaiting it.
        """
        subscriber = self._subscribers.get(user_id)
        if subscriber is None:
            subscriber = self._subscribers[user_id] = Subscriber(user_id)
            subscriber.stable.set()
        async with subscriber.lock:
            subscriber.sources = set(sources) - {user_id}
            subscriber.video = video
            return await self._renegotiate(subscriber)

    def _plan(self, subscriber: Subscriber) -> tuple[list[SourceTrack], bool]:
        """Cut off the tracks ``subscriber`` may no longer receive; return those to add."""
        wanted = [
            track
            for publisher_id in sorted(subscriber.sources)
            if (publisher := self._publishers.get(publisher_id)) is not None
            for track in publisher.live_tracks()
            if subscriber.video or track.kind == "audio"
        ]
        wanted_ids = {t.id for t in wanted}
        changed = subscriber.dirty
        for slot in subscriber.slots:
            if slot.source is not None and slot.source.id not in wanted_ids:
                subscriber.detach(slot)
                changed = True
        attached = {s.source.id for s in subscriber.slots if s.source is not None}
        return [t for t in wanted if t.id not in attached], changed

    async def _renegotiate(self, subscriber: Subscriber) -> tuple[str, dict[str, int]] | None:
        to_add, changed = self._plan(subscriber)
        if not to_add and not changed:
            return None
        if subscriber.pc is None:
            if not to_add:
                subscriber.dirty = False
                return None
            subscriber.pc = self._new_pc()
            self._watch(subscriber.pc, subscriber.user_id, "subscribe")
        pc = subscriber.pc
        if pc.signalingState != "stable":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscriber.stable.wait(), ANSWER_WAIT)
            if subscriber.pc is not pc or pc.signalingState == "closed":
                return None
            to_add, _ = self._plan(subscriber)  # sources may have changed meanwhile
        for source in to_add:
            self._attach(subscriber, pc, source)
        for slot in subscriber.slots:
            slot.transceiver.direction = "sendonly" if slot.source is not None else "inactive"
        offer = await pc.createOffer()
        with hooks.offered_addresses(self._media_addresses):
            await pc.setLocalDescription(offer)
        subscriber.stable.clear()
        subscriber.dirty = False
        tracks = {s.source.id: s.source.publisher for s in subscriber.slots if s.source}
        return pc.localDescription.sdp, tracks

    def _attach(self, subscriber: Subscriber, pc: RTCPeerConnection, source: SourceTrack) -> None:
        idle = [
            s for s in subscriber.slots if s.source is None and s.transceiver.kind == source.kind
        ]
        slot = next((s for s in idle if s.last_source == source.id), idle[0] if idle else None)
        if slot is None:
            transceiver = pc.addTransceiver(source.kind, direction="sendonly")
            capabilities = RTCRtpSender.getCapabilities(source.kind).codecs
            transceiver.setCodecPreferences(
                [
                    c for c in capabilities
                    if c.mimeType.lower() in FORWARDED_CODECS[source.kind]
                    or c.mimeType.lower() == f"{source.kind}/rtx"
                ]
            )
            slot = self._new_slot(subscriber, transceiver)
            subscriber.slots.append(slot)
        hooks.set_stream_id(slot.sender, f"odr-user-{source.publisher}")
        slot.sender.replaceTrack(hooks.ParkedTrack(source.kind, source.id))
        slot.source = source
        slot.fresh = True
        slot.egress.bind(source, source.cache)
        slot.egress.paused = source.kind == "video" and subscriber.link.video_paused
        source.outlets.append(slot.egress)
        self._watch_links()

    def _new_slot(self, subscriber: Subscriber, transceiver: RTCRtpTransceiver) -> Slot:
        sender = transceiver.sender
        slot = Slot(transceiver, Egress(sender, transceiver.kind))

        def wants_keyframe() -> None:
            if slot.source is not None:
                slot.source.request_keyframe()

        def started(parameters: Any) -> None:
            slot.egress.start(parameters)
            wants_keyframe()  # the first keyframe may have gone by before the link was up

        hooks.on_keyframe_request(sender, wants_keyframe)
        hooks.on_sender_start(sender, started)
        hooks.on_retransmit_request(sender, slot.egress.retransmit)
        hooks.on_sender_rtcp(sender, lambda packet: self._viewer_report(subscriber, slot, packet))
        return slot

    # --- Viewers' links and publishers' caps --------------------------------------------------

    @staticmethod
    def _viewer_report(subscriber: Subscriber, slot: Slot, packet: Any) -> None:
        """Feed a viewer's RTCP about one of its streams to its ``LinkMonitor``."""
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            ssrc = slot.sender._ssrc
            for block in packet.reports:
                if block.ssrc != ssrc:
                    continue
                rtt = sent_at = None
                # A held-back stream's sender reports are old: only a flowing one's time it.
                if block.lsr and slot.source is not None and not slot.egress.paused:
                    # RFC 3550 6.4.1: LSR is the (middle of the) NTP time of the sender
                    # report, i.e. when it was sent; DLSR how long the viewer held it.
                    since_report = (((hooks.ntp_time() >> 16) - block.lsr) & 0xFFFFFFFF) / 65536
                    rtt = since_report - block.dlsr / 65536
                    sent_at = time.monotonic() - since_report
                subscriber.link.report(block.fraction_lost / 256, rtt, sent_at)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            with contextlib.suppress(ValueError):
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                if packet is not subscriber.last_estimate:  # once, not once per sender named
                    subscriber.last_estimate = packet
                    subscriber.link.estimate(bitrate, ssrcs)

    def _probe(self, subscriber: Subscriber, video: list[Slot]) -> int:
        """Send PROBE_SECONDS of the viewer's video rate as padding (``Egress.probe``) at once
        (the link's queue spreads it out), then a sender report on each flowing stream: the
        first report the viewer answers after it shows whether the padding queued. Returns
        the bytes sent."""
        rate = max(PROBE_MIN_RATE, min(PROBE_MAX_RATE, subscriber.link.video_rate))
        budget = rate * PROBE_SECONDS / 8
        probing = [s.egress for s in video if s.egress.can_probe]
        sent = 0
        while probing and sent < budget:
            sent_now = sum(egress.probe() for egress in probing)
            if not sent_now:
                break
            sent += sent_now
        if sent:
            for slot in subscriber.slots:
                if slot.source is not None and not slot.egress.paused and slot.egress.started:
                    self._spawn(hooks.send_sender_report(slot.sender, slot.egress.clock_rate))
        return sent

    def _watch_links(self) -> None:
        if self._link_task is None or self._link_task.done():
            self._link_task = asyncio.ensure_future(self._check_links())

    async def _check_links(self) -> None:
        while self._subscribers:
            await asyncio.sleep(LINK_CHECK_INTERVAL)
            try:
                self.check_links(LINK_CHECK_INTERVAL)
            except Exception:
                logger.exception("media relay: link check failed")

    def check_links(self, interval: float) -> None:
        """Hold video back from viewers whose link cannot carry it, or send it again; cap each
        publisher's video by how many see it."""
        for subscriber in list(self._subscribers.values()):
            video = [s for s in subscriber.slots if s.source is not None and s.egress.video]
            rates = {s.sender._ssrc: s.egress.take_rate(interval) for s in video}
            if not video and not subscriber.link.video_paused:
                continue
            action = subscriber.link.decide(rates)
            if action == "probe" and not self._probe(subscriber, video):
                subscriber.link.resume()  # nothing to probe with: try the video itself
                action = "resume"
            if action is None:
                continue
            if action == "hold":
                logger.debug("media: video to user %s: still held back", subscriber.user_id)
                continue
            logger.info("media: video to user %s: %s (%s, %.0f kbit/s)", subscriber.user_id,
                        action, subscriber.link.reason, subscriber.link.video_rate / 1000)
            if action == "probe":
                continue

            paused = action == "pause"
            for slot in video:
                slot.egress.paused = paused
                if not paused and slot.source is not None:
                    slot.egress.restart()
                    slot.source.request_keyframe()
            if (callback := self.on_link) is not None:
                self._spawn(callback(subscriber.user_id, paused))
        for publisher in self._publishers.values():
            for source in publisher.live_tracks():
                if source.kind == "video":
                    source.set_cap(sum(1 for e in source.outlets if not e.paused))

    async def subscribe_answer(self, user_id: int, sdp: str) -> None:
        """Apply the participant's answer to the latest subscriber offer.

        Raises SignallingRefused when no offer waits for an answer or the answer is invalid.
        """
        subscriber = self._subscribers.get(user_id)
        if subscriber is None or subscriber.pc is None:
            raise SignallingRefused("no subscriber offer to answer")
        pc = subscriber.pc
        if pc.signalingState != "have-local-offer":
            raise SignallingRefused("no subscriber offer to answer")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        except (ValueError, AssertionError) as exc:
            raise SignallingRefused(f"subscriber answer refused: {exc}") from exc
        await self._apply_early_candidates(user_id, "subscribe", pc)
        subscriber.stable.set()
        for slot in subscriber.slots:
            if slot.fresh and slot.source is not None:
                slot.fresh = False
                slot.egress.restart()
                if slot.egress.started:  # else the sender's start asks (``_new_slot``)
                    slot.source.request_keyframe()

    # --- ICE, leaving, closing ---------------------------------------------------------------

    async def add_ice_candidate(self, user_id: int, pc: str, candidate: dict[str, Any]) -> None:
        """Add a candidate the browser trickled (``RTCIceCandidateInit``) to one connection.

        Candidates that arrive before their connection has a remote description are kept
        until it has one. Raises SignallingRefused for a malformed candidate or unknown ``pc``.
        """
        if pc not in ("publish", "subscribe"):
            raise SignallingRefused(f"unknown peer connection {pc!r}")
        connection = self._connection(user_id, pc)
        if connection is None or connection.remoteDescription is None:
            pending = self._early_candidates.setdefault((user_id, pc), [])
            if len(pending) < 64:
                pending.append(candidate)
            return
        await self._add_candidate(connection, candidate)

    def _connection(self, user_id: int, pc: str) -> RTCPeerConnection | None:
        if pc == "publish":
            publisher = self._publishers.get(user_id)
            return publisher.pc if publisher else None
        subscriber = self._subscribers.get(user_id)
        return subscriber.pc if subscriber else None

    async def _apply_early_candidates(
        self, user_id: int, kind: str, pc: RTCPeerConnection
    ) -> None:
        for candidate in self._early_candidates.pop((user_id, kind), []):
            with contextlib.suppress(ValueError):
                await self._add_candidate(pc, candidate)

    @staticmethod
    async def _add_candidate(pc: RTCPeerConnection, init: dict[str, Any]) -> None:
        text = init.get("candidate")
        if not isinstance(text, str):
            raise SignallingRefused("candidate must be a string")
        if not text:
            await pc.addIceCandidate(None)  # end of candidates
            return
        try:
            candidate = candidate_from_sdp(text.removeprefix("candidate:"))
        except (AssertionError, ValueError, IndexError) as exc:
            raise SignallingRefused(f"malformed candidate: {text!r}") from exc
        mid, index = init.get("sdpMid"), init.get("sdpMLineIndex")
        candidate.sdpMid = mid if isinstance(mid, str) else None
        candidate.sdpMLineIndex = index if isinstance(index, int) else None
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        await pc.addIceCandidate(candidate)

    async def remove(self, user_id: int) -> None:
        """Close both of a participant's connections and stop every relay feeding or fed by them.

        Subscribers that received them get a new offer at their next ``set_sources``.
        """
        self._early_candidates.pop((user_id, "publish"), None)
        self._early_candidates.pop((user_id, "subscribe"), None)
        subscriber = self._subscribers.pop(user_id, None)
        if subscriber is not None:
            for slot in subscriber.slots:
                subscriber.detach(slot)
            subscriber.stable.set()
            if subscriber.pc is not None:
                await subscriber.pc.close()
        await self._drop_publisher(user_id)

    async def _drop_publisher(self, user_id: int) -> None:
        publisher = self._publishers.pop(user_id, None)
        if publisher is None:
            return
        for source in publisher.tracks.values():
            self._end_source(source)
        await publisher.pc.close()

    async def close(self) -> None:
        """Close every connection (application shutdown)."""
        for user_id in list(self._subscribers.keys() | self._publishers.keys()):
            await self.remove(user_id)
        tasks = list(self._tasks)
        if self._link_task is not None:
            tasks.append(self._link_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- Helpers -----------------------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        # An explicit (possibly empty) server list: aiortc's default is a public STUN server.
        return RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self._ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )

    def _watch(self, pc: RTCPeerConnection, user_id: int, kind: str) -> None:
        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState != "failed":
                return
            logger.info("media: %s connection of user %s failed", kind, user_id)
            if kind == "publish" and (p := self._publishers.get(user_id)) and p.pc is pc:
                for source in p.tracks.values():
                    self._end_source(source)
                self._notify_tracks(user_id)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coroutine
            except Exception:
                logger.exception("media relay callback failed")

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- Introspection (tests, benchmark) ----------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts of what the relay holds: connections, sources, forwarded tracks."""
        return {
            "publishers": len(self._publishers),
            "subscribers": len(self._subscribers),
            "sources": sum(len(p.live_tracks()) for p in self._publishers.values()),
            "forwarded": sum(
                1 for s in self._subscribers.values() for slot in s.slots if slot.source
            ),
            "tasks": len(self._tasks),
        }
