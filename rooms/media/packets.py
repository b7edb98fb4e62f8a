"""Forwarding RTP packets as they came, rewritten for each viewer: no reassembly, no packetising.

Each viewer's copy of a stream (one sender of the viewer's subscriber connection) is an
``Egress``: the publisher's packets go out with the viewer's own SSRC, payload type, mid and
header extensions, and with sequence numbers, timestamps and VP8 picture ids that stay
continuous when the relay starts, pauses, resumes or switches what it forwards there (RFC 3550
section 5.1; RFC 7741 section 4.2 for the picture id). Video starts and resumes at a keyframe,
so the viewer can decode from its first packet. A viewer's NACK is answered from the
publisher's ``PacketCache``, as RTX when the viewer negotiated it (RFC 4588), without asking
the publisher.

The wire format is written here (RFC 3550 5.1 fixed header, RFC 8285 one-byte extensions)
because aiortc's ``RtpPacket.serialize`` builds objects for every packet and every viewer.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RtpPacket

from rooms.media import aiortc_hooks as hooks

if TYPE_CHECKING:
    from aiortc import RTCRtpSender

#: Packets of a publisher's stream kept for retransmission: about 4 s of 900 kbit/s video,
#: far more than the round trip of a NACK. A power of two, so that the slots follow the
#: 16-bit sequence numbers across their wrap.
CACHE_SIZE = 512

HEADER = struct.Struct("!BBHII")
RTX_OSN = struct.Struct("!H")
PADDING = [b"\x00" * n for n in range(4)]
EXTENSION_WORDS = [n.to_bytes(2, "big") for n in range(64)]  # RFC 8285: length in words
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


class PacketCache:
    """The newest ``CACHE_SIZE`` packets of one publisher's stream, by sequence number."""

    def __init__(self) -> None:
        self._slots: list[RtpPacket | None] = [None] * CACHE_SIZE
        self.newest: RtpPacket | None = None

    def put(self, packet: RtpPacket) -> None:
        self._slots[packet.sequence_number % CACHE_SIZE] = packet
        self.newest = packet

    def get(self, sequence_number: int) -> RtpPacket | None:
        packet = self._slots[sequence_number % CACHE_SIZE]
        if packet is None or packet.sequence_number != sequence_number:
            return None
        return packet


# --- VP8 payload descriptor (RFC 7741 section 4.2) -----------------------------------------


#: Where a VP8 payload's picture id is (offset, width in bits), and its value.
PictureId = tuple[tuple[int, int], int]


def read_picture_id(payload: bytes) -> PictureId | None:
    """The picture id of a VP8 payload, if its descriptor carries one (7 or 15 bits)."""
    if len(payload) < 3 or not payload[0] & 0x80 or not payload[1] & 0x80:
        return None
    if payload[2] & 0x80:
        if len(payload) < 4:
            return None
        return (2, 15), (payload[2] & 0x7F) << 8 | payload[3]
    return (2, 7), payload[2] & 0x7F


def abs_send_time(ntp: int) -> bytes:
    """The abs-send-time header extension's value: 6.18 fixed-point seconds of ``ntp``."""
    return ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether a VP8 payload is the first packet of a keyframe: start of partition 0 (S bit,
    PID 0) whose VP8 frame tag has the inter-frame bit clear (RFC 6386 section 9.1)."""
    if not payload or payload[0] & 0x17 != 0x10:
        return False
    offset = 1
    if payload[0] & 0x80:
        if len(payload) < 2:
            return False
        extensions = payload[1]
        offset = 2
        if extensions & 0x80:
            offset += 2 if len(payload) > 2 and payload[2] & 0x80 else 1
        if extensions & 0x40:
            offset += 1
        if extensions & 0x30:
            offset += 1
    return len(payload) > offset and payload[offset] & 0x01 == 0


def _with_picture_id(payload: bytes, place: tuple[int, int], picture_id: int) -> bytes:
    offset, bits = place
    if bits == 15:
        field = bytes((0x80 | (picture_id >> 8) & 0x7F, picture_id & 0xFF))
        return payload[:offset] + field + payload[offset + 2:]
    return payload[:offset] + bytes((picture_id & 0x7F,)) + payload[offset + 1:]


# --- One viewer's copy of a stream ---------------------------------------------------------


class Egress:
    """What one viewer's sender sends: the packets of the source it is bound to, rewritten.

    ``bind`` a source (the relay's ``SourceTrack``, which holds the ``PacketCache``), then
    ``forward`` each of its packets; ``unbind`` stops at once. ``paused`` holds video back
    (a weak link) and ``restart`` makes the egress wait for the next keyframe.
    """

    def __init__(self, sender: RTCRtpSender, kind: str) -> None:
        hooks.check_sender(sender)
        self.sender = sender
        self.kind = kind
        self.video = kind == "video"
        self.source: object | None = None
        self.cache: PacketCache | None = None
        self.waiting = True  # for the first packet (video: of a keyframe)
        self.paused = False
        self.sent_bytes = 0
        self._rate_mark = 0
        self._started = False
        self._ssrc = sender._ssrc
        self._rtx_ssrc = hooks.rtx_ssrc(sender)
        self._rtx_seq = 0
        self._pt = 0
        self._rtx_pt: int | None = None
        self._clock = 90000
        self._extension_head = b""  # mid element, then the abs-send-time element's id byte
        self._abs_send_time = False
        self._audio_level_id = 0
        # Continuity of the viewer's stream.
        self._seq_offset = 0
        self._ts_offset = 0
        self._pid_offset = 0
        self._first_seq = 0  # source sequence number where the current run began
        self._last_seq = -1  # newest viewer sequence number sent (-1: none yet)
        self._last_ts = 0
        self._last_pid: int | None = None
        self._last_ntp = 0
        self._last_source: object | None = None

    # --- set up -----------------------------------------------------------------------------

    def start(self, parameters: RTCRtpSendParameters) -> None:
        """The sender started (its transport connected): learn how the viewer's packets look."""
        codec = parameters.codecs[0]
        self._pt = codec.payloadType or 0
        self._clock = codec.clockRate or 90000
        self._rtx_pt = next(
            (c.payloadType for c in parameters.codecs
             if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == self._pt),
            None,
        )
        ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        head = b""
        mid = (parameters.muxId or "").encode()
        if MID_URI in ids and 0 < len(mid) <= 16:
            head += bytes((ids[MID_URI] << 4 | (len(mid) - 1),)) + mid
        if ABS_SEND_TIME_URI in ids:
            head += bytes((ids[ABS_SEND_TIME_URI] << 4 | 2,))
            self._abs_send_time = True
        self._extension_head = head
        self._audio_level_id = ids.get(AUDIO_LEVEL_URI, 0)
        self._out = hooks.DirectSend(self.sender.transport)
        self._started = True

    @property
    def started(self) -> bool:
        return self._started

    @property
    def clock_rate(self) -> int:
        return self._clock

    def bind(self, source: object, cache: PacketCache) -> None:
        self.source, self.cache = source, cache
        self.waiting = True

    def unbind(self) -> None:
        self.source = self.cache = None
        self.waiting = True

    def take_rate(self, interval: float) -> float:
        """Bits per second sent since the last call, ``interval`` seconds ago."""
        rate = (self.sent_bytes - self._rate_mark) * 8 / interval
        self._rate_mark = self.sent_bytes
        return rate

    def restart(self) -> None:
        """Forward again from the next keyframe (audio: the next packet)."""
        self.waiting = True

    # --- forwarding -------------------------------------------------------------------------

    def forward(self, packet: RtpPacket, keyframe_start: bool, ntp: int, stamp: bytes,
                picture_id: PictureId | None) -> bool:
        """Send ``packet`` of the bound source to the viewer; True while waiting for a keyframe.

        The caller reads what is the same for every viewer once per packet: whether it starts
        a keyframe, the time (``ntp``, and ``stamp``: its 3-byte abs-send-time), the picture id.
        """
        if not self._started or self.paused:
            return False
        seq = packet.sequence_number
        if self.waiting:
            if self.video and not keyframe_start:
                return True
            self._begin(packet, picture_id)
        elif (seq - self._first_seq) & 0xFFFF >= 0x8000:
            return False  # a late packet from before this run began
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        payload = self._payload(packet.payload, picture_id, newest=True)
        data = self._wire(packet, self._pt, out_seq, out_ts, self._ssrc, payload, stamp)
        if not self._out.send(data):
            self.waiting = True  # nothing reached the viewer: start again at a keyframe
            return self.video
        if (out_seq - self._last_seq) & 0xFFFF < 0x8000:
            self._last_seq, self._last_ts, self._last_ntp = out_seq, out_ts, ntp
        hooks.note_sent(self.sender, ntp, out_ts, len(payload))
        self.sent_bytes += len(data)
        return False

    def retransmit(self, out_seq: int) -> bool:
        """Send again the packet the viewer knows as ``out_seq`` (its NACK), from the cache."""
        if self.waiting or self.paused:
            return False
        return self._resend(out_seq) > 0

    @property
    def can_probe(self) -> bool:
        return self._rtx_pt is not None and self._last_seq >= 0 and self.cache is not None

    def probe(self) -> int:
        """Send the source's newest packet as RTX under the sequence number the viewer got
        last, which the viewer drops as a copy: padding to measure its link with while video
        is held back. Returns the bytes sent."""
        if not self.can_probe or self.cache is None or (packet := self.cache.newest) is None:
            return 0
        return self._resend(self._last_seq, packet)

    def _resend(self, out_seq: int, packet: RtpPacket | None = None) -> int:
        if self.cache is None or not self._started:
            return 0
        if packet is None:
            seq = (out_seq - self._seq_offset) & 0xFFFF
            if (seq - self._first_seq) & 0xFFFF >= 0x8000:
                return 0
            packet = self.cache.get(seq)
            if packet is None:
                return 0
        out_ts = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        picture_id = read_picture_id(packet.payload) if self.video else None
        payload = self._payload(packet.payload, picture_id, newest=False)
        stamp = abs_send_time(hooks.ntp_time())
        if self._rtx_pt is None:
            data = self._wire(packet, self._pt, out_seq, out_ts, self._ssrc, payload, stamp)
        else:
            data = self._wire(packet, self._rtx_pt, self._rtx_seq, out_ts, self._rtx_ssrc,
                              RTX_OSN.pack(out_seq) + payload, stamp)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        if not self._out.send(data):
            return 0
        return len(data)

    def _begin(self, packet: RtpPacket, picture_id: PictureId | None) -> None:
        """Start a run at ``packet``: the viewer's numbering carries on from what it last got."""
        self.waiting = False
        seq = packet.sequence_number
        self._first_seq = seq
        if self._last_seq < 0:
            self._seq_offset = self._ts_offset = self._pid_offset = 0
            self._last_seq = (seq - 1) & 0xFFFF
        else:
            self._seq_offset = (self._last_seq + 1 - seq) & 0xFFFF
            if self.source is not self._last_source:
                elapsed = max(1, ((hooks.ntp_time() - self._last_ntp) * self._clock) >> 32)
                self._ts_offset = (self._last_ts + elapsed - packet.timestamp) & 0xFFFFFFFF
                if picture_id is not None and self._last_pid is not None:
                    (_, bits), first = picture_id
                    self._pid_offset = (self._last_pid + 1 - first) & ((1 << bits) - 1)
                else:
                    self._pid_offset = 0
        self._last_source = self.source

    def _payload(self, payload: bytes, picture_id: PictureId | None, *, newest: bool) -> bytes:
        """``payload`` with its picture id carried into the viewer's numbering; ``newest``:
        it is the newest packet sent (a resent one does not move the numbering on)."""
        if picture_id is None:
            return payload
        place, value = picture_id
        value = (value + self._pid_offset) & ((1 << place[1]) - 1)
        if newest:
            self._last_pid = value
        return _with_picture_id(payload, place, value) if self._pid_offset else payload

    def _wire(self, packet: RtpPacket, pt: int, seq: int, ts: int, ssrc: int, payload: bytes,
              stamp: bytes) -> bytes:
        extensions = self._extension_head
        if self._abs_send_time:
            extensions += stamp
        if self._audio_level_id and (level := packet.extensions.audio_level) is not None:
            extensions += bytes((self._audio_level_id << 4, level[0] << 7 | (level[1] & 0x7F)))
        if not extensions:
            return HEADER.pack(0x80, packet.marker << 7 | pt, seq, ts, ssrc) + payload
        extensions += PADDING[-len(extensions) % 4]
        return b"".join((
            HEADER.pack(0x90, packet.marker << 7 | pt, seq, ts, ssrc),
            b"\xbe\xde", EXTENSION_WORDS[len(extensions) // 4], extensions, payload,
        ))
