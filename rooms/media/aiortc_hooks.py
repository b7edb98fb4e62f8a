"""Every use of aiortc's (and aioice's) private internals by the media relay, in one place.

aiortc is built to terminate media: its receiver always decodes and its sender always encodes.
A selective forwarding unit needs neither, and aiortc has no public switch for that, so the
relay reaches into a few internals. Each hook here says why it exists and what it relies on;
``tests/rooms/test_aiortc_hooks.py`` exercises each one against the pinned aiortc, so an upgrade
that moves an internal fails there loudly instead of silently decoding, leaking or mixing media.

Hooks:

- ``pass_through``: the receiver hands each reassembled *encoded* frame to a callback on the
  event loop instead of a decoder thread.
- ``low_latency_reassembly``: the receiver emits a video frame as soon as its last packet is in
  (aiortc waits for the first packet of the next frame) and an audio frame at once (aiortc
  holds four), so the relay adds no frame of delay.
- ``on_keyframe_request``: a subscriber's PLI/FIR reaches the relay (aiortc would only set a flag
  for an encoder that a relay does not run).
- ``request_keyframe``: the relay sends a PLI to the publisher of a stream.
- ``silence_sender``: cutting a subscriber off drops anything already in flight, including
  packets kept for retransmission of the old stream.
- ``set_stream_id``: the msid stream of each forwarded track names its publisher, so a browser
  groups a person's audio and video into one ``MediaStream``.
- ``restrict_codecs``: the answer to a publisher offers only codecs the relay can forward as is.
- ``offered_addresses``: which local addresses aioice gathers host candidates on (it leaves out
  loopback, which tests and a laptop need).
- ``ntp_time`` / ``ms_since_ntp_epoch``: the same clock readings as ``aiortc.clock``'s, without
  building a ``datetime`` for each: the sender stamps every RTP packet it forwards with the
  time, and that was a tenth of the relay's CPU in an 8-person room.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import aioice.ice
import aiortc
import aiortc.clock
import aiortc.rtcrtpreceiver
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

logger = logging.getLogger(__name__)

#: The aiortc release these hooks were written and tested against (pinned in pyproject.toml).
AIORTC_VERSION = "1.16.0"

FrameCallback = Callable[[RTCRtpCodecParameters, JitterFrame], None]

_installed = False
_original_decoder_worker = aiortc.rtcrtpreceiver.decoder_worker
_original_get_host_addresses = aioice.ice.get_host_addresses
_host_addresses: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "odr_media_host_addresses", default=None
)


def install() -> None:
    """Apply the module-level patches (idempotent). Raises on an unexpected aiortc."""
    global _installed
    if _installed:
        return
    if aiortc.__version__ != AIORTC_VERSION:
        raise RuntimeError(
            f"rooms.media was written against aiortc {AIORTC_VERSION}, found "
            f"{aiortc.__version__}: check rooms/media/aiortc_hooks.py and its tests"
        )
    aiortc.rtcrtpreceiver.decoder_worker = _decoder_worker
    aioice.ice.get_host_addresses = _get_host_addresses
    _set(aiortc.clock, "current_ntp_time", ntp_time)
    _set(aiortc.clock, "current_ms", ms_since_ntp_epoch)
    _installed = True


# --- The clock --------------------------------------------------------------------------------

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


def ntp_time() -> int:
    """``aiortc.clock.current_ntp_time``: now as 32.32 fixed-point NTP, to the microsecond."""
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    return ((seconds + NTP_UNIX_OFFSET) << 32) | ((micros << 32) // 1_000_000)


def ms_since_ntp_epoch() -> int:
    """``aiortc.clock.current_ms``: milliseconds since the NTP epoch."""
    return time.time_ns() // 1_000_000 + NTP_UNIX_OFFSET * 1000


def _require(obj: object, name: str) -> Any:
    """Read a private attribute, failing clearly if aiortc renamed it."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise RuntimeError(
            f"aiortc internals changed: {type(obj).__name__} has no {name} "
            "(see rooms/media/aiortc_hooks.py)"
        ) from None


def _set(obj: object, name: str, value: object) -> None:
    _require(obj, name)
    setattr(obj, name, value)


# --- Receiving: encoded frames instead of decoded ones ----------------------------------------


class EncodedFrameSink:
    """Stands in for a receiver's decoder input queue (``queue.Queue``).

    aiortc's receiver puts ``(codec, JitterFrame)`` on that queue from the event loop for a
    decoder thread, and ``None`` when it stops. The sink hands both straight to the relay on the
    event loop: no thread hop, no decoding.
    """

    def __init__(self, on_frame: FrameCallback, on_end: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._on_end = on_end
        self._ended = False

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            if not self._ended:
                self._ended = True
                self._on_end()
            return
        if not self._ended:
            codec, frame = item
            self._on_frame(codec, frame)


def _decoder_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any] | EncodedFrameSink,
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    # aiortc starts this in a thread for every receiver (looked up by name at ``receive()``).
    # A pass-through receiver has nothing to decode, so its thread ends at once; every other
    # receiver in the process (e.g. test clients) decodes as usual.
    if isinstance(input_q, EncodedFrameSink):
        return
    _original_decoder_worker(loop, input_q, output_q, decode_error)


def pass_through(
    receiver: RTCRtpReceiver, on_frame: FrameCallback, on_end: Callable[[], None]
) -> None:
    """Make ``receiver`` hand encoded frames to ``on_frame`` instead of decoding them.

    ``on_frame(codec, frame)`` runs on the event loop for each reassembled frame
    (``frame.data``: the depayloaded codec frame, ``frame.timestamp``: RTP timestamp relative
    to the first frame); ``on_end()`` when the receiver stops. Must be called before the
    receiver starts, i.e. before the answer that negotiates it is applied and connected.
    """
    install()
    if _require(receiver, "_RTCRtpReceiver__started"):
        raise RuntimeError("pass_through() must be applied before the receiver starts")
    _set(receiver, "_RTCRtpReceiver__decoder_queue", EncodedFrameSink(on_frame, on_end))


class FrameAssembler:
    """Reassembles frames from RTP packets without waiting for the next frame.

    Same interface as aiortc's ``JitterBuffer`` as the receiver uses it
    (``add(packet) -> (pli_flag, frame | None)`` and ``capacity``). Audio: one packet is one
    frame. Video: a frame is complete when the packets from the one after the previous frame's
    end up to a packet with the marker bit are all in; a retransmitted packet completes it
    late. A frame still incomplete when a frame half a second newer has ended is given up
    (reported with a PLI, as aiortc does).
    """

    capacity = 512
    GIVE_UP_TICKS = 45_000  # half a second of the 90 kHz video clock

    def __init__(self, *, is_video: bool) -> None:
        self._is_video = is_video
        self._packets: dict[int, RtpPacket] = {}
        self._start: int | None = None  # sequence number where the next frame starts

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        data: bytes = packet._data  # type: ignore[attr-defined]
        if not self._is_video:
            return False, JitterFrame(data=data, timestamp=packet.timestamp)
        seq = packet.sequence_number
        if self._start is None:
            self._start = seq
        elif uint16_gt(self._start, seq):
            return False, None  # late copy of a packet of a frame already emitted or given up
        self._packets[seq] = packet
        frame = self._take_frame()
        if frame is not None or not packet.marker:
            return False, frame
        if len(self._packets) > self.capacity or self._stalled(packet):
            self._skip_gap()
            return True, self._take_frame()
        return False, None

    def _take_frame(self) -> JitterFrame | None:
        start = self._start
        if start is None or (first := self._packets.get(start)) is None:
            return None
        seq, packet, count = start, first, 0
        while True:
            if packet.timestamp != first.timestamp:
                # The frame's marker packet never came but the next frame began: drop it.
                self._drop(count)
                return self._take_frame()
            count += 1
            if packet.marker:
                parts = [self._packets.pop(uint16_add(start, i))._data for i in range(count)]  # type: ignore[attr-defined]
                self._start = uint16_add(seq, 1)
                return JitterFrame(data=b"".join(parts), timestamp=first.timestamp)
            seq = uint16_add(seq, 1)
            nxt = self._packets.get(seq)
            if nxt is None:
                return None
            packet = nxt

    def _drop(self, count: int) -> None:
        assert self._start is not None
        for i in range(count):
            self._packets.pop(uint16_add(self._start, i), None)
        self._start = uint16_add(self._start, count)

    def _ordered(self) -> list[int]:
        assert self._start is not None
        start = self._start
        return sorted(self._packets, key=lambda s: (s - start) & 0xFFFF)

    def _stalled(self, newest: RtpPacket) -> bool:
        oldest = self._packets[self._ordered()[0]]
        return (newest.timestamp - oldest.timestamp) & 0xFFFFFFFF > self.GIVE_UP_TICKS

    def _skip_gap(self) -> None:
        """Drop what cannot complete and resume at the newest frame start.

        Frames between a lost one and the next keyframe cannot be decoded by the viewers
        anyway (the relay asks for that keyframe), so catching up beats delivering them late.
        """
        newest_start = None
        for seq in self._ordered():
            previous = self._packets.get(uint16_add(seq, -1))
            if previous is not None and (
                previous.marker or previous.timestamp != self._packets[seq].timestamp
            ):
                newest_start = seq
        if newest_start is None:
            self._packets.clear()
            self._start = None
            return
        start = self._start
        assert start is not None
        keep_from = (newest_start - start) & 0xFFFF
        for seq in list(self._packets):
            if (seq - start) & 0xFFFF < keep_from:
                del self._packets[seq]
        self._start = newest_start


def low_latency_reassembly(receiver: RTCRtpReceiver) -> None:
    """Replace the receiver's jitter buffer with a ``FrameAssembler``.

    aiortc's buffer releases a video frame only when a packet of the *next* frame arrives (one
    frame interval late) and holds four audio frames (80 ms). The browsers at the other end
    have jitter buffers of their own, so the relay forwards at once.
    """
    install()
    kind = _require(receiver, "_RTCRtpReceiver__kind")
    _set(receiver, "_RTCRtpReceiver__jitter_buffer", FrameAssembler(is_video=kind == "video"))


def request_keyframe(receiver: RTCRtpReceiver) -> Coroutine[Any, Any, None] | None:
    """A coroutine sending a PLI for the stream ``receiver`` gets, or None before any packet.

    aiortc sends PLIs only for its own decoder's needs (``_send_rtcp_pli``); the relay sends
    one when a viewer needs a keyframe. The media SSRC is the one packets arrive with, not
    the retransmission (RTX) one.
    """
    rtx_ssrcs: dict[int, int] = _require(receiver, "_RTCRtpReceiver__rtx_ssrc")
    sources = [
        s for s in receiver.getSynchronizationSources() if s.source not in rtx_ssrcs
    ]
    if not sources:
        return None
    newest = max(sources, key=lambda s: s.timestamp)
    send_pli: Callable[[int], Coroutine[Any, Any, None]] = _require(
        receiver, "_send_rtcp_pli"
    )
    return send_pli(newest.source)


# --- Sending: encoded frames, keyframe requests, cutting off -----------------------------------
#
# A sender given ``av.Packet``s instead of frames only packetises them (public behaviour of
# ``RTCRtpSender``): the relay's tracks yield av.Packet with pts = RTP timestamp and
# time_base = 1 / clock rate, so nothing is encoded.


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the remote viewer of ``sender`` sends a PLI or FIR.

    aiortc answers those by setting a flag read by its encoder (``_send_keyframe``); the relay
    runs no encoder, so the request has to go on to the publisher.
    """
    _require(sender, "_send_keyframe")
    sender._send_keyframe = callback  # type: ignore[method-assign]


def silence_sender(sender: RTCRtpSender) -> None:
    """Drop whatever ``sender`` would still send of its current track.

    With the track replaced by None and the relay track stopped, a frame the sender is already
    waiting for would still go out, and a NACK from the viewer would make it retransmit packets
    of the old stream from its history. The flag is the one the transceiver's negotiated
    direction drives; the next answer that makes the sender active sets it again.
    """
    _set(sender, "_enabled", False)
    _require(sender, "_RTCRtpSender__rtp_history").clear()


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """Set the msid stream id ``sender`` offers (aiortc uses one per peer connection)."""
    _set(sender, "_stream_id", stream_id)


def restrict_codecs(transceiver: RTCRtpTransceiver, mime_types: set[str]) -> None:
    """Keep only ``mime_types`` (lower case, plus their RTX) among the negotiated codecs.

    For an answer, aiortc negotiates codecs when the offer is applied, before the application
    can state preferences; the relay can forward only codecs every subscriber can take as is.
    Raises ValueError when nothing is left.
    """
    codecs: list[RTCRtpCodecParameters] = _require(transceiver, "_codecs")
    kept = [c for c in codecs if c.mimeType.lower() in mime_types]
    kept_types = {c.payloadType for c in kept}
    kept += [
        c for c in codecs
        if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in kept_types
    ]
    if not kept_types:
        raise ValueError(f"no codec the relay forwards among {[c.mimeType for c in codecs]}")
    _set(transceiver, "_codecs", [c for c in codecs if c in kept])


# --- ICE: which local addresses are offered ------------------------------------------------------


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    # aioice looks this up by name in ``Connection.gather_candidates``.
    chosen = _host_addresses.get()
    if chosen is None:
        return _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return list(chosen)


@contextmanager
def offered_addresses(addresses: list[str] | None) -> Iterator[None]:
    """Within this block (and tasks it starts), ICE gathers host candidates on ``addresses``.

    aiortc gathers when a local description is set; wrap ``setLocalDescription`` in this.
    None or an empty list keeps aioice's own choice (every non-loopback address).
    """
    install()
    token = _host_addresses.set(list(addresses) if addresses else None)
    try:
        yield
    finally:
        _host_addresses.reset(token)
