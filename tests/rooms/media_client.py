"""A headless participant for media tests: aiortc peer connections that publish a marked
picture and count what they receive.

Each participant's video is a solid colour of its own, so a receiver can tell whose frames it
decoded. Packets are counted per source at the subscriber connection's transport, after
decryption and before any receiver logic, so a test sees every RTP packet the relay sent.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from aiortc.rtp import RtpPacket

from rooms.media import aiortc_hooks

WIDTH, HEIGHT = 160, 120

# YUV of the picture each test participant sends; far apart so decoding noise cannot blur them.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (81, 90, 240),
    "green": (145, 54, 34),
    "blue": (41, 240, 110),
    "grey": (128, 128, 128),
    "yellow": (210, 16, 146),
    "white": (235, 128, 128),
    "black": (16, 128, 128),
    "purple": (70, 180, 190),
}


def picture(colour: str) -> av.VideoFrame:
    y, u, v = COLOURS[colour]
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    for plane, value in zip(frame.planes, (y, u, v), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


def colour_of(frame: av.VideoFrame) -> str:
    """The participant colour nearest to the middle of a decoded frame."""
    frame = frame.reformat(format="yuv420p")
    values = []
    for plane in frame.planes:
        data = bytes(plane)
        middle = plane.line_size * (plane.height // 2) + plane.width // 2
        values.append(data[middle])
    return min(
        COLOURS,
        key=lambda name: sum((a - b) ** 2 for a, b in zip(COLOURS[name], values, strict=True)),
    )


class MarkedVideoTrack(VideoStreamTrack):
    """A camera that shows one solid colour."""

    def __init__(self, colour: str) -> None:
        super().__init__()
        self._frame = picture(colour)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for source, target in zip(self._frame.planes, frame.planes, strict=True):
            target.update(bytes(source))
        frame.pts = pts
        frame.time_base = time_base
        return frame


def ssrc_sources(sdp: str, tracks: dict[str, int]) -> dict[int, int]:
    """Map each sending SSRC in a subscriber offer to the user whose track it carries."""
    mapping: dict[int, int] = {}
    for section in sdp.split("\r\nm=")[1:]:
        if "a=sendonly" not in section and "a=sendrecv" not in section:
            continue
        msid = re.search(r"^a=msid:\S+ (\S+)", section, re.M)
        if msid is None or msid[1] not in tracks:
            continue
        for ssrc in re.findall(r"^a=ssrc:(\d+) ", section, re.M):
            mapping[int(ssrc)] = tracks[msid[1]]
    return mapping


def ssrc_kinds(sdp: str) -> dict[int, str]:
    """The kind (audio, video) of every SSRC an offer lists."""
    return {int(ssrc): section.split(" ", 1)[0]
            for section in sdp.split("\r\nm=")[1:]
            for ssrc in re.findall(r"^a=ssrc:(\d+) ", section, re.M)}


def all_ssrcs(sdp: str) -> set[int]:
    return {int(s) for s in re.findall(r"^a=ssrc:(\d+) ", sdp, re.M)}


@dataclass(eq=False)
class MediaClient:
    """One participant's two peer connections, as a browser would hold them."""

    user_id: int
    colour: str
    addresses: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    send_audio: bool = True
    publisher: RTCPeerConnection = field(init=False)
    subscriber: RTCPeerConnection = field(init=False)
    # RTP packets received per SSRC, and per source user as mapped by the latest offer.
    packets_by_ssrc: Counter[int] = field(default_factory=Counter)
    ssrc_owner: dict[int, int] = field(default_factory=dict)
    ssrc_kind: dict[int, str] = field(default_factory=dict)  # of every offer so far
    offered_ssrcs: set[int] = field(default_factory=set)
    # Decoded video frames per colour, and when the first of each colour was decoded.
    frames: Counter[str] = field(default_factory=Counter)
    first_frame_at: dict[str, float] = field(default_factory=dict)
    tracks: dict[str, int] = field(default_factory=dict)
    # The newest sequence number per SSRC, and retransmissions: (RTX SSRC, original seq).
    last_seq: dict[int, int] = field(default_factory=dict)
    retransmissions: list[tuple[int, int]] = field(default_factory=list)
    rtx_payload_types: set[int] = field(default_factory=set)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _hooked: bool = False

    def __post_init__(self) -> None:
        config = RTCConfiguration(iceServers=[])
        self.publisher = RTCPeerConnection(config)
        self.subscriber = RTCPeerConnection(config)
        self.subscriber.on("track", self._on_track)

    async def publish_offer(self) -> str:
        self.publisher.addTrack(MarkedVideoTrack(self.colour))
        if self.send_audio:
            self.publisher.addTrack(AudioStreamTrack())
        offer = await self.publisher.createOffer()
        with aiortc_hooks.offered_addresses(self.addresses):
            await self.publisher.setLocalDescription(offer)
        return self.publisher.localDescription.sdp

    async def publish_answer(self, sdp: str) -> None:
        await self.publisher.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    async def subscribe_offer(self, sdp: str, tracks: dict[str, int]) -> str:
        """Apply a subscriber offer from the relay; return the answer."""
        self.tracks = dict(tracks)
        self.ssrc_owner = ssrc_sources(sdp, tracks)
        self.offered_ssrcs = all_ssrcs(sdp)
        self.ssrc_kind |= ssrc_kinds(sdp)
        self.rtx_payload_types = {int(pt) for pt in re.findall(r"^a=rtpmap:(\d+) rtx/", sdp, re.M)}
        await self.subscriber.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        self._hook_transport()
        answer = await self.subscriber.createAnswer()
        with aiortc_hooks.offered_addresses(self.addresses):
            await self.subscriber.setLocalDescription(answer)
        return self.subscriber.localDescription.sdp

    def packets_from(self, user_id: int) -> int:
        return sum(n for ssrc, n in self.packets_by_ssrc.items() if self._owner(ssrc) == user_id)

    def packets_of(self, kind: str) -> int:
        return sum(n for ssrc, n in self.packets_by_ssrc.items()
                   if self.ssrc_kind.get(ssrc) == kind)

    def packets_total(self) -> int:
        return sum(self.packets_by_ssrc.values())

    def _owner(self, ssrc: int) -> int | None:
        return self.ssrc_owner.get(ssrc)

    def _hook_transport(self) -> None:
        if self._hooked or not self.subscriber.getTransceivers():
            return
        self._hooked = True
        transport: Any = self.subscriber.getTransceivers()[0].receiver.transport
        original = transport._handle_rtp_data

        async def counting(data: bytes, arrival_time_ms: int) -> None:
            ssrc = int.from_bytes(data[8:12], "big")
            self.packets_by_ssrc[ssrc] += 1
            if data[1] & 0x7F in self.rtx_payload_types:
                # RFC 4588: the original sequence number leads the payload (after any header
                # extensions, which RtpPacket.parse skips).
                self.retransmissions.append((ssrc, int.from_bytes(
                    RtpPacket.parse(data).payload[:2], "big")))
            else:
                self.last_seq[ssrc] = int.from_bytes(data[2:4], "big")
            await original(data, arrival_time_ms)

        transport._handle_rtp_data = counting

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                colour = colour_of(frame)
                self.frames[colour] += 1
                self.first_frame_at.setdefault(colour, time.monotonic())
        except MediaStreamError:
            pass

    async def close(self) -> None:
        await self.publisher.close()
        await self.subscriber.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def eventually(condition: Any, within: float = 10.0, what: str = "condition") -> None:
    """Wait until ``condition()`` is true, polling; fail with ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)

