"""Every use of aiortc's (and aioice's) private internals by the media relay, in one place.

aiortc is built to terminate media: its receiver always decodes and its sender always encodes.
A selective forwarding unit needs neither, and aiortc has no public switch for that, so the
relay reaches into a few internals. Each hook here says why it exists and what it relies on;
``tests/rooms/test_aiortc_hooks.py`` exercises each one against the pinned aiortc, so an upgrade
that moves an internal fails there loudly instead of silently decoding, leaking or mixing media.

Hooks:

- ``tap_packets``: the receiver hands each RTP packet (RTX undone) to the relay on the event
  loop, and never assembles or decodes a frame.
- ``cap_bitrate_estimates`` / ``send_bitrate_estimate``: the bitrate estimates (REMB) the relay
  sends a publisher are capped by what anybody watches.
- ``request_keyframe``: the relay sends a PLI to the publisher of a stream.
- ``ParkedTrack``, ``on_sender_start``, ``send_rtp_now``, ``note_sent``: a viewer's sender
  sends nothing itself; the relay writes the forwarded packets to its transport, and the
  sender's reports count them.
- ``on_keyframe_request``, ``on_retransmit_request``, ``on_sender_rtcp``: a viewer's PLI/FIR,
  NACK and reports reach the relay (aiortc would set a flag for an encoder the relay does not
  run, and look lost packets up in a history the relay does not fill).
- ``set_stream_id``: the msid stream of each forwarded track names its publisher, so a browser
  groups a person's audio and video into one ``MediaStream``.
- ``restrict_codecs``: the answer to a publisher offers only codecs the relay can forward as is.
- ``offered_addresses``: which local addresses aioice gathers host candidates on (it leaves out
  loopback, which tests and a laptop need).
- ``ntp_time`` / ``ms_since_ntp_epoch``: the same clock readings as ``aiortc.clock``'s, without
  building a ``datetime`` for each (aiortc reads the clock for every packet).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp._binding import ffi as srtp_ffi  # type: ignore[import-not-found]
from pylibsrtp._binding import lib as srtp_lib

logger = logging.getLogger(__name__)

#: The aiortc release these hooks were written and tested against (pinned in pyproject.toml).
AIORTC_VERSION = "1.16.0"

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


# --- Receiving: packets to the relay, no decoding ------------------------------------------


class EndSink:
    """Stands in for a receiver's decoder input queue (``queue.Queue``).

    aiortc's receiver puts ``(codec, JitterFrame)`` on that queue for a decoder thread, and
    ``None`` when it stops. A tapped receiver never completes a frame (``PacketTap``), so only
    the ``None`` arrives: the sink reports the end of the stream on the event loop.
    """

    def __init__(self, on_end: Callable[[], None]) -> None:
        self._on_end = on_end
        self._ended = False

    def put(self, item: object) -> None:
        if item is None and not self._ended:
            self._ended = True
            self._on_end()


class PacketTap:
    """Stands in for a receiver's jitter buffer: hands every packet on, assembles nothing.

    aiortc calls ``add(packet)`` on the event loop for each packet it accepted, after undoing
    RTX (a retransmission arrives with its original SSRC and sequence number), after sending
    its own NACKs to the publisher, and after depayloading (``packet._data``). It returns
    ``(pli_flag, frame)``: never a frame, so nothing is ever decoded.
    """

    capacity = 512

    def __init__(self, on_packet: Callable[[RtpPacket], None]) -> None:
        self._on_packet = on_packet

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self._on_packet(packet)
        return False, None


def _decoder_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any] | EndSink,
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    # aiortc starts this in a thread for every receiver (looked up by name at ``receive()``).
    # A tapped receiver has nothing to decode, so its thread ends at once; every other
    # receiver in the process (e.g. test clients) decodes as usual.
    if isinstance(input_q, EndSink):
        return
    _original_decoder_worker(loop, input_q, output_q, decode_error)


def tap_packets(
    receiver: RTCRtpReceiver, on_packet: Callable[[RtpPacket], None], on_end: Callable[[], None]
) -> None:
    """Make ``receiver`` hand each RTP packet to ``on_packet`` instead of decoding frames.

    ``on_packet(packet)`` runs on the event loop: ``packet.payload`` is the payload as sent
    (VP8 payload descriptor included), a retransmitted packet comes with its original sequence
    number. aiortc still keeps the receiver's statistics, receiver reports, NACKs and bitrate
    estimate towards the publisher. ``on_end()`` runs when the receiver stops. Must be called
    before the receiver starts, i.e. before the answer that negotiates it is applied.
    """
    install()
    if _require(receiver, "_RTCRtpReceiver__started"):
        raise RuntimeError("tap_packets() must be applied before the receiver starts")
    _set(receiver, "_RTCRtpReceiver__jitter_buffer", PacketTap(on_packet))
    _set(receiver, "_RTCRtpReceiver__decoder_queue", EndSink(on_end))


class GroupedBitrateSamples:
    """Feeds aiortc's receive-side bitrate estimator one sample per burst instead of per packet.

    The estimator (a port of libwebrtc's abs-send-time one) looks at packets in groups sent
    within 5 ms of each other (a frame's packets), and only at each group's size, last send
    time and last arrival; per packet it was a fifth of the relay's CPU. This adds up a
    group and hands it over when the next group starts (one group late: 5 to 33 ms).
    """

    GROUP_TICKS = 5 * (1 << 18) // 1000  # 5 ms in abs-send-time units (6.18 fixed point)

    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator
        self._first = self._last = self._arrival = self._size = self._ssrc = 0
        self._open = False

    def add(self, *, abs_send_time: int, arrival_time_ms: int, payload_size: int,
            ssrc: int) -> tuple[int, list[int]] | None:
        result = None
        if self._open and (
            (abs_send_time - self._first) & 0xFFFFFF >= self.GROUP_TICKS or ssrc != self._ssrc
        ):
            result = self._estimator.add(abs_send_time=self._last, arrival_time_ms=self._arrival,
                                         payload_size=self._size, ssrc=self._ssrc)
            self._open = False
        if not self._open:
            self._first, self._size, self._ssrc, self._open = abs_send_time, 0, ssrc, True
        self._last, self._arrival = abs_send_time, arrival_time_ms
        self._size += payload_size
        return result


def cap_bitrate_estimates(receiver: RTCRtpReceiver, cap: Callable[[], int]) -> None:
    """Lower every bitrate estimate (REMB) ``receiver`` sends its publisher to ``cap()``,
    and feed its estimator by bursts (``GroupedBitrateSamples``).

    aiortc's receiver tells the publisher how much it can receive; a browser publisher keeps
    its upload under that figure. The relay also knows how much anybody watches.
    """
    estimator = _require(receiver, "_RTCRtpReceiver__remote_bitrate_estimator")
    if estimator is not None:
        _set(receiver, "_RTCRtpReceiver__remote_bitrate_estimator",
             GroupedBitrateSamples(estimator))
    original: Callable[[Any], Coroutine[Any, Any, None]] = _require(receiver, "_send_rtcp")

    async def send_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            with contextlib.suppress(ValueError):
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                packet.fci = pack_remb_fci(min(bitrate, cap()), ssrcs)
        await original(packet)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]


def send_bitrate_estimate(
    receiver: RTCRtpReceiver, bitrate: int
) -> Coroutine[Any, Any, None] | None:
    """A coroutine sending the publisher a REMB of ``bitrate`` for the stream ``receiver``
    gets (goes through ``cap_bitrate_estimates``), or None before any packet."""
    ssrc = media_ssrc(receiver)
    rtcp_ssrc = _require(receiver, "_RTCRtpReceiver__rtcp_ssrc")
    if ssrc is None or rtcp_ssrc is None:
        return None
    packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                            fci=pack_remb_fci(bitrate, [ssrc]))
    send: Callable[[Any], Coroutine[Any, Any, None]] = _require(receiver, "_send_rtcp")
    return send(packet)


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC the newest packets of ``receiver`` came with (not the RTX one), if any."""
    rtx_ssrcs: dict[int, int] = _require(receiver, "_RTCRtpReceiver__rtx_ssrc")
    sources = [
        s for s in receiver.getSynchronizationSources() if s.source not in rtx_ssrcs
    ]
    if not sources:
        return None
    return max(sources, key=lambda s: s.timestamp).source


def request_keyframe(receiver: RTCRtpReceiver) -> Coroutine[Any, Any, None] | None:
    """A coroutine sending a PLI for the stream ``receiver`` gets, or None before any packet.

    aiortc sends PLIs only for its own decoder's needs (``_send_rtcp_pli``); the relay sends
    one when a viewer needs a keyframe. The media SSRC is the one packets arrive with, not
    the retransmission (RTX) one.
    """
    ssrc = media_ssrc(receiver)
    if ssrc is None:
        return None
    send_pli: Callable[[int], Coroutine[Any, Any, None]] = _require(
        receiver, "_send_rtcp_pli"
    )
    return send_pli(ssrc)


# --- Sending: packets written by the relay, the sender's own loop parked ----------------------
#
# A relay sender sends no frame of its own: the relay writes each forwarded packet to the
# sender's transport itself (``send_rtp_now``). The sender still negotiates, sends its RTCP
# (sender reports, from the counts ``note_sent`` keeps), and routes its viewer's RTCP to the
# relay (NACK, PLI, receiver reports, bitrate estimates).


class ParkedTrack(MediaStreamTrack):
    """The track a relay sender holds: names the stream in the SDP (msid), yields nothing.

    aiortc's sender loop waits on ``recv()`` for frames to encode; here it waits for good, at
    no cost, until the sender stops (a track of None would make it poll every 20 ms).
    """

    def __init__(self, kind: str, track_id: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._track_id = track_id

    @property
    def id(self) -> str:
        return self._track_id or super().id

    async def recv(self) -> Any:
        await asyncio.get_running_loop().create_future()


def on_sender_start(
    sender: RTCRtpSender, callback: Callable[[RTCRtpSendParameters], None]
) -> None:
    """Call ``callback(parameters)`` when ``sender`` starts (its transport is connected then).

    The parameters are what the relay needs to write the viewer's packets: payload types
    (``codecs``), the mid (``muxId``) and the header extension ids.
    """
    original: Callable[[RTCRtpSendParameters], Coroutine[Any, Any, None]] = _require(
        sender, "send"
    )

    async def send(parameters: RTCRtpSendParameters) -> None:
        started = _require(sender, "_RTCRtpSender__started")
        await original(parameters)
        if not started:
            callback(parameters)

    sender.send = send  # type: ignore[method-assign]


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the remote viewer of ``sender`` sends a PLI or FIR.

    aiortc answers those by setting a flag read by its encoder (``_send_keyframe``); the relay
    runs no encoder, so the request has to go on to the publisher.
    """
    _require(sender, "_send_keyframe")
    sender._send_keyframe = callback  # type: ignore[method-assign]


def on_sender_rtcp(sender: RTCRtpSender, callback: Callable[[Any], None]) -> None:
    """Show ``callback`` every RTCP packet the viewer sends about ``sender``'s stream.

    aiortc routes receiver reports, NACKs, PLIs and REMBs to the sender they name; the relay
    reads them to see the viewer's link (loss, round trip, bitrate estimate).
    """
    original: Callable[[Any], Coroutine[Any, Any, None]] = _require(
        sender, "_handle_rtcp_packet"
    )

    async def handle(packet: Any) -> None:
        callback(packet)
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def on_retransmit_request(sender: RTCRtpSender, callback: Callable[[int], object]) -> None:
    """Call ``callback(sequence_number)`` for each packet the viewer reports lost (NACK).

    aiortc would look the packet up in the sender's own history, which the relay does not
    fill: the relay serves it from the publisher's packet cache instead.
    """
    _require(sender, "_retransmit")

    async def retransmit(sequence_number: int) -> None:
        callback(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]


def rtx_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC ``sender`` announced for retransmissions (RTX) in its offers."""
    value: int = _require(sender, "_rtx_ssrc")
    return value


def note_sent(sender: RTCRtpSender, ntp: int, rtp_timestamp: int, octets: int) -> None:
    """Count a packet the relay sent for ``sender``, for its sender reports (RFC 3550 6.4.1):
    the viewer's browser lines up audio and video with them and measures the round trip."""
    s: Any = sender
    s._RTCRtpSender__ntp_timestamp = ntp
    s._RTCRtpSender__rtp_timestamp = rtp_timestamp
    s._RTCRtpSender__octet_count += octets
    s._RTCRtpSender__packet_count += 1


async def send_sender_report(sender: RTCRtpSender, clock_rate: int) -> None:
    """Send a sender report now, as aiortc's RTCP loop does every second or so.

    The relay wants one right behind a probe of the viewer's link: the viewer's answer to it
    tells how long it queued behind the probe. It is stamped now, its RTP timestamp carried
    on from the last packet's at ``clock_rate`` (RFC 3550 6.4.1 allows any instant).
    """
    s: Any = sender
    ntp = ntp_time()
    elapsed = ((ntp - s._RTCRtpSender__ntp_timestamp) * clock_rate) >> 32
    rtp_timestamp = (s._RTCRtpSender__rtp_timestamp + max(0, elapsed)) & 0xFFFFFFFF
    report = RtcpSrPacket(ssrc=sender._ssrc, sender_info=RtcpSenderInfo(
        ntp_timestamp=ntp, rtp_timestamp=rtp_timestamp,
        packet_count=s._RTCRtpSender__packet_count & 0xFFFFFFFF,
        octet_count=s._RTCRtpSender__octet_count & 0xFFFFFFFF))
    # What aiortc notes of its own reports, to time the round trip in its statistics.
    s._RTCRtpSender__lsr = (ntp >> 16) & 0xFFFFFFFF
    s._RTCRtpSender__lsr_time = time.time()
    send: Callable[[list[Any]], Coroutine[Any, Any, None]] = _require(sender, "_send_rtcp")
    await send([report])


def check_sender(sender: RTCRtpSender) -> None:
    """Fail loudly if ``note_sent`` would write attributes aiortc no longer reads."""
    for name in ("ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count", "lsr",
                 "lsr_time"):
        _require(sender, f"_RTCRtpSender__{name}")


class DirectSend:
    """The shortest path from an RTP packet to the wire, on one DTLS transport.

    aiortc's path (``RTCDtlsTransport._send_rtp``) is five coroutines deep for one
    ``sendto``, and pylibsrtp allocates a length cell for every packet; the relay sends every
    packet to every viewer. ``send`` encrypts with the transport's own SRTP session (its
    buffer, one length cell of ours) and sends on the datagram transport of the nominated ICE
    pair (a plain socket, or aioice's TURN transport: both send synchronously).
    """

    def __init__(self, transport: RTCDtlsTransport) -> None:
        self.transport = transport
        self.length = srtp_ffi.new("int *")
        self.session: Any = None
        self.pair: Any = None

    def send(self, data: bytes) -> bool:
        """Encrypt and send one RTP packet now; False when it cannot be sent (not connected
        yet, closed, or too long)."""
        transport = self.transport
        pair = transport.transport._connection._nominated.get(1)
        if (
            pair is not self.pair
            or transport._tx_srtp is not self.session
            or transport._state is not DtlsState.CONNECTED
        ) and not self._renew(pair):
            return False
        size = len(data)
        if size > self.room:
            return False
        self.buffer[0:size] = data
        self.length[0] = size
        if srtp_lib.srtp_protect(self.srtp, self.cdata, self.length) != 0:
            return False
        self.sendto(self.buffer[0:self.length[0]], self.addr)
        return True

    def _renew(self, pair: Any) -> bool:
        transport = self.transport
        self.pair = self.session = None
        if transport._state is not DtlsState.CONNECTED or pair is None:
            return False
        session = transport._tx_srtp
        self.srtp = _require(session, "_srtp")[0]
        self.cdata = _require(session, "_cdata")
        self.buffer = _require(session, "_buffer")
        self.room = len(self.cdata) - SRTP_MAX_TRAILER_LEN
        self.sendto = pair.protocol.transport.sendto
        self.addr = pair.remote_addr
        self.pair, self.session = pair, session
        return True


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
