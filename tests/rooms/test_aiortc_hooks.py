"""Each private aiortc hook the media relay uses, against the pinned aiortc.

If an aiortc (or aioice) upgrade moves an internal, these fail, naming the hook.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
import aiortc
import aiortc.clock
import aiortc.rtcrtpreceiver
import av
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPacket,
    RtcpPsfbPacket,
    RtpPacket,
)

from rooms.media import aiortc_hooks as hooks

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


class FakeTransport:
    """The little of RTCDtlsTransport a lone receiver or sender touches; records what it sends."""

    state = "connected"
    _stats_id = "transport"

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def _register_rtp_receiver(self, *args: Any) -> None: ...
    def _unregister_rtp_receiver(self, *args: Any) -> None: ...
    def _register_rtp_sender(self, *args: Any) -> None: ...
    def _unregister_rtp_sender(self, *args: Any) -> None: ...

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)

    def rtp(self) -> list[RtpPacket]:
        return [RtpPacket.parse(d) for d in self.sent if not 192 <= d[1] <= 223]

    def rtcp(self) -> list[Any]:
        return [p for d in self.sent if 192 <= d[1] <= 223 for p in RtcpPacket.parse(d)]


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


def vp8_packet(seq: int, timestamp: int, *, marker: bool, start: bool, data: bytes,
               ssrc: int = 1234) -> RtpPacket:
    descriptor = bytes([0x10 if start else 0x00])
    return RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq,
                     timestamp=timestamp, ssrc=ssrc, payload=descriptor + data)


def test_pinned_version_and_module_patches() -> None:
    hooks.install()
    assert aiortc.__version__ == hooks.AIORTC_VERSION
    assert aiortc.rtcrtpreceiver.decoder_worker is hooks._decoder_worker
    assert aioice.ice.get_host_addresses is hooks._get_host_addresses


def test_the_fast_clock_reads_what_aiortc_s_clock_reads() -> None:
    hooks.install()
    assert aiortc.clock.current_ntp_time is hooks.ntp_time
    assert aiortc.clock.current_ms is hooks.ms_since_ntp_epoch

    def theirs_ntp() -> int:
        return aiortc.clock.datetime_to_ntp(aiortc.clock.current_datetime())

    def theirs_ms() -> int:
        delta = aiortc.clock.current_datetime() - aiortc.clock.NTP_EPOCH
        return int(delta.total_seconds() * 1000)

    for _ in range(1000):  # each reading lies between two of aiortc's, a microsecond apart
        before, ours, after = theirs_ntp(), hooks.ntp_time(), theirs_ntp()
        one_us = (1 << 32) // 1_000_000 + 1
        assert before - one_us <= ours <= after + one_us
        before_ms, ours_ms, after_ms = theirs_ms(), hooks.ms_since_ntp_epoch(), theirs_ms()
        assert before_ms - 1 <= ours_ms <= after_ms + 1
    stamp = aiortc.clock.datetime_from_ntp(hooks.ntp_time())
    assert abs((stamp - aiortc.clock.current_datetime()).total_seconds()) < 0.1


def test_pass_through_hands_encoded_frames_to_the_loop_and_ends() -> None:
    async def scenario() -> None:
        transport = FakeTransport()
        receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
        frames: list[tuple[str, JitterFrame]] = []
        ended: list[bool] = []
        receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack(kind="video")
        hooks.pass_through(receiver, lambda c, f: frames.append((c.mimeType, f)),
                           lambda: ended.append(True))
        await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
        with pytest.raises(RuntimeError):
            hooks.pass_through(receiver, lambda c, f: None, lambda: None)
        await receiver._handle_rtp_packet(
            vp8_packet(1, 1000, marker=True, start=True, data=b"\x10key"), arrival_time_ms=0)
        await receiver._handle_rtp_packet(
            vp8_packet(2, 4000, marker=True, start=True, data=b"\x11delta"), arrival_time_ms=0)
        # aiortc's own buffer emits a frame once the next one starts: the first is out.
        assert [(m, f.data, f.timestamp) for m, f in frames] == [("video/VP8", b"\x10key", 0)]
        assert receiver._track._queue.empty()  # nothing decoded
        await receiver.stop()
        assert ended == [True]

    run(scenario)


def test_low_latency_reassembly_emits_a_frame_on_its_last_packet() -> None:
    async def scenario() -> None:
        receiver = RTCRtpReceiver("video", FakeTransport())  # type: ignore[arg-type]
        receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack(kind="video")
        frames: list[JitterFrame] = []
        hooks.low_latency_reassembly(receiver)
        hooks.pass_through(receiver, lambda c, f: frames.append(f), lambda: None)
        await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8]))
        await receiver._handle_rtp_packet(
            vp8_packet(10, 1000, marker=False, start=True, data=b"\x10ab"), arrival_time_ms=0)
        assert frames == []
        await receiver._handle_rtp_packet(
            vp8_packet(11, 1000, marker=True, start=False, data=b"cd"), arrival_time_ms=0)
        assert [f.data for f in frames] == [b"\x10abcd"]
        await receiver.stop()

    run(scenario)


def frame_packets(seq: int, timestamp: int, parts: list[bytes]) -> list[RtpPacket]:
    packets = []
    for i, part in enumerate(parts):
        packet = RtpPacket(payload_type=96, marker=int(i == len(parts) - 1),
                           sequence_number=(seq + i) & 0xFFFF, timestamp=timestamp)
        packet._data = part  # type: ignore[attr-defined]
        packets.append(packet)
    return packets


def feed(assembler: hooks.FrameAssembler, packets: list[RtpPacket]) -> list[bytes]:
    out = []
    for packet in packets:
        _, frame = assembler.add(packet)
        if frame is not None:
            out.append(frame.data)
    return out


def test_frame_assembler_in_order_reordered_and_retransmitted() -> None:
    assembler = hooks.FrameAssembler(is_video=True)
    f1 = frame_packets(65534, 0, [b"a", b"b", b"c"])  # wraps the sequence number
    f2 = frame_packets(1, 3000, [b"d", b"e"])
    assert feed(assembler, f1) == [b"abc"]
    assert feed(assembler, [f2[1]]) == []  # first packet late
    assert feed(assembler, [f2[0]]) == [b"de"]
    f3 = frame_packets(3, 6000, [b"f", b"g"])
    f4 = frame_packets(5, 9000, [b"h"])
    assert feed(assembler, [f3[0], f4[0]]) == []  # f3's last packet lost, f4 waits
    assert feed(assembler, [f3[1]]) == [b"fg"]  # retransmitted
    assert feed(assembler, [f4[0]]) == [b"h"]
    assert feed(assembler, f3[:1]) == []  # a late copy of an emitted frame is ignored


def test_frame_assembler_gives_up_on_a_frame_that_cannot_complete() -> None:
    assembler = hooks.FrameAssembler(is_video=True)
    assert feed(assembler, frame_packets(100, 0, [b"a"])) == [b"a"]
    lost = frame_packets(101, 3000, [b"b", b"c"])
    feed(assembler, lost[1:])  # the frame's first packet never comes
    out: list[bytes] = []
    pli = False
    for n in range(1, 20):
        for packet in frame_packets(102 + n, 3000 + n * 3000, [bytes([n])]):
            flag, frame = assembler.add(packet)
            pli = pli or flag
            if frame is not None:
                out.append(frame.data)
    assert pli
    assert out and out[-1] == bytes([19])
    audio = hooks.FrameAssembler(is_video=False)
    assert feed(audio, frame_packets(7, 0, [b"x"])) == [b"x"]


def test_request_keyframe_sends_a_pli_for_the_media_ssrc() -> None:
    async def scenario() -> None:
        transport = FakeTransport()
        receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
        receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack(kind="video")
        receiver._set_rtcp_ssrc(42)
        hooks.pass_through(receiver, lambda c, f: None, lambda: None)
        assert hooks.request_keyframe(receiver) is None  # nothing received yet
        await receiver.receive(RTCRtpReceiveParameters(
            codecs=[VP8, RTX],
            encodings=[RTCRtpDecodingParameters(
                ssrc=1234, payloadType=96, rtx=RTCRtpRtxParameters(ssrc=5678))],
        ))
        await receiver._handle_rtp_packet(
            vp8_packet(1, 0, marker=True, start=True, data=b"\x10k"), arrival_time_ms=0)
        coroutine = hooks.request_keyframe(receiver)
        assert coroutine is not None
        await coroutine
        plis = [p for p in transport.rtcp() if isinstance(p, RtcpPsfbPacket)]
        assert [(p.fmt, p.ssrc, p.media_ssrc) for p in plis] == [(RTCP_PSFB_PLI, 42, 1234)]
        await receiver.stop()

    run(scenario)


def test_keyframe_requests_from_viewers_reach_the_callback() -> None:
    async def scenario() -> None:
        sender = RTCRtpSender("video", FakeTransport())  # type: ignore[arg-type]
        calls: list[int] = []
        hooks.on_keyframe_request(sender, lambda: calls.append(1))
        for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            await sender._handle_rtcp_packet(
                RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
        assert calls == [1, 1]

    run(scenario)


class PacketTrack(MediaStreamTrack):
    """Yields pre-encoded packets; when stopped while waited on, an empty one (as RelayTrack)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[av.Packet[Any]] = asyncio.Queue()

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        return await self.queue.get()

    def put(self, data: bytes, pts: int, clock: int) -> None:
        packet = av.Packet(data)
        packet.pts = pts
        from fractions import Fraction

        packet.time_base = Fraction(1, clock)
        self.queue.put_nowait(packet)


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_a_silenced_sender_sends_nothing_more_of_its_old_track(kind: str) -> None:
    async def scenario() -> None:
        transport = FakeTransport()
        codec = OPUS if kind == "audio" else VP8
        clock = codec.clockRate
        track = PacketTrack(kind)
        sender = RTCRtpSender(track, transport)  # type: ignore[arg-type]
        await sender.send(RTCRtpSendParameters(codecs=[codec], rtcp=RTCRtcpParameters(cname="x")))
        track.put(b"\x10" * 50, 0, clock)  # passed through as is: no encoder involved
        for _ in range(50):
            if transport.rtp():
                break
            await asyncio.sleep(0.01)
        sent = transport.rtp()
        assert len(sent) == 1 and sent[0].payload.endswith(b"\x10" * 50)
        # Cut off: silence, replace, stop; the sender is waiting on the track meanwhile.
        hooks.silence_sender(sender)
        sender.replaceTrack(None)
        track.put(b"", 3000, clock)  # what RelayTrack hands a waiting sender when stopped
        track.stop()
        await asyncio.sleep(0.1)
        await sender._retransmit(sent[0].sequence_number)  # a NACK for the old stream
        assert len(transport.rtp()) == 1
        # The sender's loop survived and can carry another track once enabled again.
        other = PacketTrack(kind)
        sender.replaceTrack(other)
        sender._enabled = True
        other.put(b"\x10" * 20, 6000, clock)
        for _ in range(50):
            if len(transport.rtp()) > 1:
                break
            await asyncio.sleep(0.01)
        assert len(transport.rtp()) == 2
        await sender.stop()

    run(scenario)


def test_stream_id_and_codec_restriction_show_in_sdp() -> None:
    async def scenario() -> None:
        offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            transceiver = offerer.addTransceiver("video", direction="sendonly")
            hooks.set_stream_id(transceiver.sender, "odr-user-5")
            offerer.addTransceiver("audio", direction="sendonly")
            with hooks.offered_addresses(["127.0.0.1"]):
                await offerer.setLocalDescription(await offerer.createOffer())
            offer = offerer.localDescription.sdp
            assert re.search(r"^a=msid:odr-user-5 \S+", offer, re.M)
            assert "H264" in offer
            await answerer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            video, audio = answerer.getTransceivers()
            hooks.restrict_codecs(video, {"video/vp8"})
            hooks.restrict_codecs(audio, {"audio/opus"})
            with pytest.raises(ValueError):
                hooks.restrict_codecs(audio, {"audio/unknown"})
            with hooks.offered_addresses(["127.0.0.1"]):
                await answerer.setLocalDescription(await answerer.createAnswer())
            answer = answerer.localDescription.sdp
            assert "VP8/90000" in answer and "rtx/90000" in answer
            assert "H264" not in answer and "PCMU" not in answer
        finally:
            await offerer.close()
            await answerer.close()

    run(scenario)


def test_offered_addresses_choose_host_candidates() -> None:
    async def gather(addresses: list[str] | None) -> set[str]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            pc.addTransceiver("audio")
            with hooks.offered_addresses(addresses):
                await pc.setLocalDescription(await pc.createOffer())
            return set(re.findall(r"^a=candidate:\S+ \d \S+ \d+ (\S+) ", pc.localDescription.sdp,
                                  re.M))
        finally:
            await pc.close()

    async def scenario() -> None:
        assert await gather(["127.0.0.1"]) == {"127.0.0.1"}
        assert "127.0.0.1" not in await gather(None)  # aioice's own choice leaves loopback out
        assert aioice.ice.get_host_addresses(True, False) == hooks._original_get_host_addresses(
            use_ipv4=True, use_ipv6=False)

    run(scenario)
