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
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    unpack_remb_fci,
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


def test_tap_packets_hands_over_each_packet_rtx_undone_and_ends() -> None:
    async def scenario() -> None:
        transport = FakeTransport()
        receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
        packets: list[RtpPacket] = []
        ended: list[bool] = []
        receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack(kind="video")
        hooks.tap_packets(receiver, packets.append, lambda: ended.append(True))
        await receiver.receive(RTCRtpReceiveParameters(
            codecs=[VP8, RTX],
            encodings=[RTCRtpDecodingParameters(
                ssrc=1234, payloadType=96, rtx=RTCRtpRtxParameters(ssrc=5678))],
        ))
        with pytest.raises(RuntimeError):
            hooks.tap_packets(receiver, packets.append, lambda: None)
        assert decoder_threads() == 0  # a tapped receiver's decoder thread ended at once
        await receiver._handle_rtp_packet(
            vp8_packet(1, 1000, marker=False, start=True, data=b"\x10ab"), arrival_time_ms=0)
        # Packet 2 is lost, then comes back as RTX (RFC 4588: the original sequence number
        # leads the payload).
        rtx = RtpPacket(payload_type=97, sequence_number=70, timestamp=1000, ssrc=5678,
                        payload=b"\x00\x02" + b"\x00cd")
        await receiver._handle_rtp_packet(
            vp8_packet(3, 1000, marker=True, start=False, data=b"ef"), arrival_time_ms=0)
        await receiver._handle_rtp_packet(rtx, arrival_time_ms=0)
        assert [(p.sequence_number, p.ssrc, p.payload) for p in packets] == [
            (1, 1234, b"\x10\x10ab"), (3, 1234, b"\x00ef"), (2, 1234, b"\x00cd")]
        assert receiver._track._queue.empty()  # nothing assembled, nothing decoded
        await receiver.stop()
        assert ended == [True]

    run(scenario)


def decoder_threads() -> int:
    import threading

    return sum(1 for t in threading.enumerate() if t.name.endswith("-decoder") and t.is_alive())


def test_bitrate_estimates_to_the_publisher_are_capped() -> None:
    async def scenario() -> None:
        transport = FakeTransport()
        receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
        receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack(kind="video")
        receiver._set_rtcp_ssrc(42)
        cap = [300_000]
        hooks.tap_packets(receiver, lambda p: None, lambda: None)
        hooks.cap_bitrate_estimates(receiver, lambda: cap[0])
        assert hooks.send_bitrate_estimate(receiver, 1_000_000) is None  # nothing received
        await receiver.receive(RTCRtpReceiveParameters(
            codecs=[VP8], encodings=[RTCRtpDecodingParameters(ssrc=1234, payloadType=96)]))
        await receiver._handle_rtp_packet(
            vp8_packet(1, 0, marker=True, start=True, data=b"\x10k"), arrival_time_ms=0)
        for bitrate in (1_000_000, 200_000):
            coroutine = hooks.send_bitrate_estimate(receiver, bitrate)
            assert coroutine is not None
            await coroutine
        rembs = [unpack_remb_fci(p.fci) for p in transport.rtcp()
                 if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_APP]
        assert [(round(b, -3), ssrcs) for b, ssrcs in rembs] == [
            (300_000, [1234]), (200_000, [1234])]
        await receiver.stop()

    run(scenario)


def test_a_viewer_s_reports_and_nacks_reach_the_relay() -> None:
    async def scenario() -> None:
        sender = RTCRtpSender("video", FakeTransport())  # type: ignore[arg-type]
        seen: list[Any] = []
        nacked: list[int] = []
        hooks.on_sender_rtcp(sender, seen.append)
        hooks.on_retransmit_request(sender, nacked.append)
        hooks.check_sender(sender)
        report = RtcpRrPacket(ssrc=9, reports=[RtcpReceiverInfo(
            ssrc=sender._ssrc, fraction_lost=26, packets_lost=3, highest_sequence=100,
            jitter=0, lsr=0, dlsr=0)])
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=9, media_ssrc=sender._ssrc)
        nack.lost = [17, 18]
        for packet in (report, nack):
            await sender._handle_rtcp_packet(packet)
        assert seen == [report, nack]
        assert nacked == [17, 18]
        assert hooks.rtx_ssrc(sender) == sender._rtx_ssrc != sender._ssrc

    run(scenario)


def test_the_relay_writes_a_parked_sender_s_packets_and_its_reports_count_them() -> None:
    """Over a real loopback connection: the sender's own loop sends nothing, the packets
    written with DirectSend arrive (decrypted) and the sender reports count them."""

    async def scenario() -> None:
        offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        started: list[RTCRtpSendParameters] = []
        arrived: list[bytes] = []
        try:
            track = hooks.ParkedTrack("video", "named-track")
            sender = offerer.addTrack(track)
            hooks.on_sender_start(sender, started.append)
            with hooks.offered_addresses(["127.0.0.1"]):
                await offerer.setLocalDescription(await offerer.createOffer())
            assert "named-track" in offerer.localDescription.sdp
            await answerer.setRemoteDescription(offerer.localDescription)
            with hooks.offered_addresses(["127.0.0.1"]):
                await answerer.setLocalDescription(await answerer.createAnswer())
            transport: Any = answerer.getTransceivers()[0].receiver.transport

            async def record(data: bytes, arrival_time_ms: int) -> None:
                if not 192 <= data[1] <= 223:
                    arrived.append(data)

            transport._handle_rtp_data = record
            await offerer.setRemoteDescription(answerer.localDescription)
            for _ in range(500):
                if started:
                    break
                await asyncio.sleep(0.01)
            assert len(started) == 1 and started[0].muxId == "0"
            await asyncio.sleep(0.1)
            assert arrived == []  # the parked sender sends nothing of its own
            direct = hooks.DirectSend(sender.transport)
            pt = started[0].codecs[0].payloadType
            assert pt is not None
            for seq in range(3):
                packet = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=90 * seq,
                                   ssrc=sender._ssrc, payload=b"\x10\x00" + bytes(100))
                assert direct.send(packet.serialize())
                hooks.note_sent(sender, hooks.ntp_time(), 90 * seq, 102)
            for _ in range(200):
                if len(arrived) == 3:
                    break
                await asyncio.sleep(0.01)
            assert [RtpPacket.parse(d).sequence_number for d in arrived] == [0, 1, 2]
            stats = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
            assert (stats[0].packetsSent, stats[0].bytesSent) == (3, 306)
            await offerer.close()
            assert not direct.send(b"\x80" + bytes(20))  # closed: nothing sent, no error
        finally:
            await offerer.close()
            await answerer.close()

    run(scenario)


def test_request_keyframe_sends_a_pli_for_the_media_ssrc() -> None:
    async def scenario() -> None:
        transport = FakeTransport()
        receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
        receiver._track = aiortc.rtcrtpreceiver.RemoteStreamTrack(kind="video")
        receiver._set_rtcp_ssrc(42)
        hooks.tap_packets(receiver, lambda p: None, lambda: None)
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


def test_grouped_bitrate_samples_estimate_what_per_packet_samples_estimate() -> None:
    from aiortc.rate import RemoteBitrateEstimator

    def estimate(grouped: bool) -> int | None:
        estimator: Any = RemoteBitrateEstimator()
        feed = hooks.GroupedBitrateSamples(estimator) if grouped else estimator
        newest = None
        for frame in range(30 * 8):  # 8 s of 30 fps, three 830-byte packets a frame
            sent_ms = frame * 1000 / 30
            for i in range(3):
                at = sent_ms + i * 0.5
                remb = feed.add(abs_send_time=int(at * (1 << 18) / 1000) & 0xFFFFFF,
                                arrival_time_ms=int(at + 20), payload_size=830, ssrc=7)
                if remb is not None:
                    newest = remb[0]
        return newest

    per_packet, grouped = estimate(False), estimate(True)
    assert per_packet is not None and grouped is not None
    assert abs(grouped - per_packet) / per_packet < 0.2, (grouped, per_packet)
