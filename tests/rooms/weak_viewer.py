"""A viewer on the far side of a weak link, run in its own network namespace by
``test_weak_link.py``: ``ip netns exec NS python -m tests.rooms.weak_viewer ADDRESS [LOSS DELAY]``.

Speaks JSON lines on stdin/stdout: ``{"offer": sdp}`` → ``{"answer": sdp}``, ``{"stats": true}``
→ the RTP packets received per kind, and for audio the sequence numbers it expected (from the
first to the newest) and got. Audio is decoded as a browser would (so its receiver reports go
back to the relay); video is counted, not decoded (the test's video is not a real picture).
Given LOSS and DELAY (for kernels without netem), each incoming datagram is dropped with that
probability or else delivered DELAY seconds late.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections import Counter
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rooms.media import aiortc_hooks
from tests.rooms.media_client import ssrc_kinds


class Viewer:
    def __init__(self, address: str, loss: float, delay: float) -> None:
        self.address = address
        self.loss, self.delay = loss, delay
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.on("track", self._on_track)
        self.kinds: dict[int, str] = {}
        self.packets: Counter[str] = Counter()
        self.audio_seqs: dict[int, set[int]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.hooked = False

    async def answer(self, sdp: str) -> str:
        self.kinds |= ssrc_kinds(sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        self._hook()
        with aiortc_hooks.offered_addresses([self.address]):
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    def _hook(self) -> None:
        if self.hooked:
            return
        self.hooked = True
        dtls: Any = self.pc.getTransceivers()[0].receiver.transport
        original = dtls._handle_rtp_data

        async def counting(data: bytes, arrival_time_ms: int) -> None:
            if 192 <= data[1] <= 223:
                await original(data, arrival_time_ms)  # RTCP (sender reports)
                return
            ssrc = int.from_bytes(data[8:12], "big")
            kind = self.kinds.get(ssrc, "rtx")
            self.packets[kind] += 1
            if kind == "audio":
                seq = int.from_bytes(data[2:4], "big")
                self.audio_seqs.setdefault(ssrc, set()).add(seq)
                await original(data, arrival_time_ms)

        dtls._handle_rtp_data = counting
        if self.loss or self.delay:
            self._impair(dtls.transport._connection)

    def _impair(self, connection: Any) -> None:
        """Drop or delay every datagram the ICE connection receives (a userspace netem)."""
        loop = asyncio.get_running_loop()
        for protocol in connection._protocols:
            deliver = protocol.datagram_received

            def impaired(data: bytes, addr: Any, deliver: Any = deliver) -> None:
                if random.random() < self.loss:
                    return
                loop.call_later(self.delay, deliver, data, addr)

            protocol.datagram_received = impaired

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self.tasks.append(asyncio.ensure_future(self._drain(track)))

    @staticmethod
    async def _drain(track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    def stats(self) -> dict[str, Any]:
        expected = got = 0
        for seqs in self.audio_seqs.values():
            ordered = sorted(seqs)
            expected += ordered[-1] - ordered[0] + 1
            got += len(ordered)
        return {"packets": dict(self.packets), "audio_expected": expected, "audio_got": got}


async def main() -> None:
    address = sys.argv[1]
    loss = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    viewer = Viewer(address, loss, delay)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        request = json.loads(line)
        if "offer" in request:
            reply: dict[str, Any] = {"answer": await viewer.answer(request["offer"])}
        elif "stats" in request:
            reply = viewer.stats()
        else:
            break
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    await viewer.pc.close()


if __name__ == "__main__":
    asyncio.run(main())
