"""Benchmark of the media relay (rooms.media.MediaRelay): CPU, latency, late join, rejoin.

Rooms of 3, 5 and 8 participants each publish VP8 640x480 at 30 fps and receive everyone else
(n * (n - 1) forwarded video streams); ``--rooms`` runs that many such rooms on the relay at
once. The clips are encoded once before the run and sent as packets, so the clients cost
little; clients do not decode (they count frames and read the send time appended to each
frame), except the late joiner and the rejoiner, who decode to time their first picture.
The relay runs in its own process, whose CPU time (os.times) is the figure.

    .venv/bin/python bench/relay_bench.py                 # 3, 5, 8 participants, 3 runs each
    .venv/bin/python bench/relay_bench.py --sizes 8 --runs 1 --profile
    .venv/bin/python bench/relay_bench.py --sizes 3 --rooms 10      # ten 3-person rooms at once
    BENCH_SORT=cumulative BENCH_ROWS=45 .venv/bin/python bench/relay_bench.py --sizes 8 --profile

After the measured window, a late joiner subscribes to one participant, and one participant
rejoins (both connections anew, as a reloaded page does): the time to their first decoded
picture is printed. Targets (issue 12): 400 streams per core for 8-person rooms, p99 latency
under 5 ms, late joiner under 300 ms, rejoin under 1 s.

Prints, per room size, the median over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import multiprocessing
import os
import pstats
import statistics
import struct
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from rooms.media import MediaRelay
from rooms.media import aiortc_hooks as hooks

WIDTH, HEIGHT, FPS = 640, 480, 30
BITRATE = 1_000_000
CLIP_FRAMES = 90
MAGIC = b"ODRB"
TRAILER = struct.Struct("!4sq")
ADDRESSES = ["127.0.0.1"]


# --- The clip -------------------------------------------------------------------------------


def encode_clip() -> tuple[list[bytes], list[bytes]]:
    """A moving picture encoded twice: as a stream (one keyframe) and each frame as a keyframe
    (sent when a viewer asks for one)."""
    def encoder() -> Any:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        codec.bit_rate = BITRATE
        codec.time_base = Fraction(1, FPS)
        codec.gop_size = 3000
        codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                         "minrate": str(BITRATE), "maxrate": str(BITRATE)}
        return codec

    row = bytes(x * 255 // WIDTH for x in range(WIDTH)) * 2
    stream, keys = encoder(), encoder()
    deltas, keyframes = [], []
    for i in range(CLIP_FRAMES):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        shift = (i * 8) % WIDTH
        luma = bytearray(row[shift:shift + WIDTH] * HEIGHT)
        noise = os.urandom(96 * 96)
        top = (i * 5) % (HEIGHT - 96)
        for y in range(96):
            start = (top + y) * WIDTH + 200
            luma[start:start + 96] = noise[y * 96:(y + 1) * 96]
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(bytes([90 + i % 60]) * frame.planes[1].buffer_size)
        frame.planes[2].update(bytes([160]) * frame.planes[2].buffer_size)
        frame.pts = i
        deltas.append(b"".join(bytes(p) for p in stream.encode(frame)))
        frame.pict_type = av.video.frame.PictureType.I
        keyframes.append(b"".join(bytes(p) for p in keys.encode(frame)))
    return deltas, keyframes


class ClipTrack(MediaStreamTrack):
    """Sends the pre-encoded clip in a loop at 30 fps, a keyframe when asked for one."""

    kind = "video"

    def __init__(self, deltas: list[bytes], keyframes: list[bytes]) -> None:
        super().__init__()
        self.deltas, self.keyframes = deltas, keyframes
        self.index = 0
        self.want_keyframe = False
        self.start: float | None = None

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.index / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        i = self.index % CLIP_FRAMES
        data = self.keyframes[i] if self.want_keyframe or i == 0 else self.deltas[i]
        if i == 0:
            # The stream restarts from its own keyframe (frame 0 of the clip).
            data = self.deltas[0]
        self.want_keyframe = False
        packet = av.Packet(data + TRAILER.pack(MAGIC, time.monotonic_ns()))
        packet.pts = self.index * (90000 // FPS)
        packet.time_base = Fraction(1, 90000)
        self.index += 1
        return packet


# --- The relay, in its own process -------------------------------------------------------------


def relay_process(conn: Connection, loop: str) -> None:
    # In the service the relay runs on uvicorn's loop, which is uvloop (uvicorn[standard]).
    if loop == "uvloop":
        import uvloop

        uvloop.run(serve(conn))
    else:
        asyncio.run(serve(conn))


async def serve(conn: Connection) -> None:
    relay = MediaRelay(ice_servers=[], media_addresses=ADDRESSES)
    loop = asyncio.get_running_loop()
    profiler: cProfile.Profile | None = None
    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        if command == "publish":
            conn.send(await relay.publish(*args))
        elif command == "set_sources":
            conn.send(await relay.set_sources(*args))
        elif command == "remove":
            await relay.remove(*args)
            conn.send(None)
        elif command == "answer":
            await relay.subscribe_answer(*args)
            conn.send(None)
        elif command == "cpu":
            times = os.times()
            conn.send((times.user, times.system))
        elif command == "profile":
            profiler = cProfile.Profile()
            profiler.enable()
            conn.send(None)
        elif command == "profile_stop":
            assert profiler is not None
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(os.environ.get("BENCH_SORT", "tottime"))
            stats.print_stats(int(os.environ.get("BENCH_ROWS", "22")))
            conn.send(out.getvalue())
        elif command == "quit":
            await relay.close()
            conn.send(None)
            return


class RelayHandle:
    def __init__(self, loop: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=relay_process, args=(child, loop), daemon=True)
        self.process.start()
        self._lock = asyncio.Lock()

    async def call(self, *message: Any) -> Any:
        async with self._lock:
            self.conn.send(message)
            return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    async def stop(self) -> None:
        await self.call("quit")
        self.process.join(10)


# --- Participants ----------------------------------------------------------------------------


@dataclass(eq=False)
class Participant:
    user_id: int
    clip: tuple[list[bytes], list[bytes]] | None
    decode: bool = False
    publisher: RTCPeerConnection = field(init=False)
    subscriber: RTCPeerConnection = field(init=False)
    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    measuring: bool = False
    first_decoded: float | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.subscriber.on("track", self._on_track)

    async def publish(self, relay: RelayHandle) -> None:
        assert self.clip is not None
        track = ClipTrack(*self.clip)
        sender = self.publisher.addTrack(track)
        hooks.on_keyframe_request(sender, lambda: setattr(track, "want_keyframe", True))
        video = self.publisher.getTransceivers()[0]
        video.setCodecPreferences([c for c in sender.getCapabilities("video").codecs
                                   if c.mimeType in ("video/VP8", "video/rtx")])
        with hooks.offered_addresses(ADDRESSES):
            await self.publisher.setLocalDescription(await self.publisher.createOffer())
        answer = await relay.call("publish", self.user_id, self.publisher.localDescription.sdp)
        await self.publisher.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def receive(self, relay: RelayHandle, sources: set[int]) -> None:
        offer = await relay.call("set_sources", self.user_id, sources)
        if offer is None:
            return
        await self.subscriber.setRemoteDescription(RTCSessionDescription(offer[0], "offer"))
        with hooks.offered_addresses(ADDRESSES):
            await self.subscriber.setLocalDescription(await self.subscriber.createAnswer())
        await relay.call("answer", self.user_id, self.subscriber.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self.decode:
            self.tasks.append(asyncio.ensure_future(self._decode(track)))
            return
        # The other participants do not run aiortc's receivers at all (their cost would swamp
        # the client process): the decrypted RTP packets are read at the transport. Each
        # frame's last packet (marker bit) ends with the send time the publisher appended.
        transport: Any = self.subscriber.getTransceivers()[0].receiver.transport
        if getattr(transport, "_bench_hooked", False):
            return
        transport._bench_hooked = True

        async def on_rtp(data: bytes, arrival_time_ms: int) -> None:
            if data[1] & 0x80:
                self.frames += 1
                if self.measuring and data[-TRAILER.size:-TRAILER.size + 4] == MAGIC:
                    sent = TRAILER.unpack_from(data, len(data) - TRAILER.size)[1]
                    self.latencies.append((time.monotonic_ns() - sent) / 1e6)

        transport._handle_rtp_data = on_rtp

    async def _decode(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                if self.first_decoded is None:
                    self.first_decoded = time.monotonic()
        except MediaStreamError:
            pass

    async def close(self) -> None:
        await self.publisher.close()
        await self.subscriber.close()
        for task in self.tasks:
            task.cancel()


# --- One run --------------------------------------------------------------------------------


@dataclass
class Result:
    size: int
    streams: int
    cores: float
    latency_median_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    late_first_frame_ms: float
    rejoin_first_frame_ms: float
    frames_per_stream_s: float
    client_cores: float
    system_share: float
    profile: str = ""


async def first_picture(person: Participant, since: float) -> float:
    """Milliseconds from ``since`` to ``person``'s first decoded picture (NaN after 10 s)."""
    while person.first_decoded is None and time.monotonic() - since < 10:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    return ((person.first_decoded or float("nan")) - since) * 1000


async def one_run(size: int, clip: tuple[list[bytes], list[bytes]], *, window: float,
                  profile: bool, loop: str, rooms: int = 1) -> Result:
    relay = RelayHandle(loop)
    groups = [[Participant(r * 100 + i + 1, clip) for i in range(size)] for r in range(rooms)]
    people = [p for group in groups for p in group]
    late = Participant(1000, None, decode=True)
    rejoined = Participant(groups[0][1].user_id, clip, decode=True)
    try:
        for person in people:
            await person.publish(relay)
        for group in groups:
            everyone = {p.user_id for p in group}
            for person in group:
                await person.receive(relay, everyone - {person.user_id})
        await asyncio.sleep(3.0)  # connections up, first keyframes through
        for person in people:
            person.measuring = True
        frames_before = sum(p.frames for p in people)
        if profile:
            await relay.call("profile")
        (user_before, sys_before), wall_before = await relay.call("cpu"), time.monotonic()
        clients_before = sum(os.times()[:2])
        await asyncio.sleep(window)
        (user_after, sys_after), wall_after = await relay.call("cpu"), time.monotonic()
        clients = (sum(os.times()[:2]) - clients_before) / (wall_after - wall_before)
        profile_text = await relay.call("profile_stop") if profile else ""
        for person in people:
            person.measuring = False
        frames = sum(p.frames for p in people) - frames_before
        streams = rooms * size * (size - 1)
        latencies = sorted(x for p in people for x in p.latencies)

        joined = time.monotonic()
        await late.receive(relay, {people[0].user_id})
        first = await first_picture(late, joined)
        # A participant's page reloads: both its connections go, and come back anew.
        leaving = groups[0][1]
        await relay.call("remove", leaving.user_id)
        await leaving.close()
        back = time.monotonic()
        await rejoined.publish(relay)
        await rejoined.receive(relay, {p.user_id for p in groups[0]} - {leaving.user_id})
        rejoin = await first_picture(rejoined, back)
        return Result(
            size=size,
            streams=streams,
            cores=(user_after + sys_after - user_before - sys_before) / (wall_after - wall_before),
            system_share=(sys_after - sys_before)
            / max(1e-9, user_after + sys_after - user_before - sys_before),
            latency_median_ms=statistics.median(latencies) if latencies else float("nan"),
            latency_p95_ms=latencies[int(len(latencies) * 0.95)] if latencies else float("nan"),
            latency_p99_ms=latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
            late_first_frame_ms=first,
            rejoin_first_frame_ms=rejoin,
            frames_per_stream_s=frames / streams / (wall_after - wall_before),
            client_cores=clients,
            profile=profile_text,
        )
    finally:
        for person in [*people, late, rejoined]:
            await person.close()
        await relay.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 8])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rooms", type=int, default=1, help="rooms of each size at once")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--profile", action="store_true", help="cProfile the relay (last size)")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="the relay's event loop (the service runs uvloop)")
    args = parser.parse_args()

    started = time.monotonic()
    clip = encode_clip()
    sizes = [len(d) for d in clip[0]]
    print(f"clip: {CLIP_FRAMES} frames VP8 {WIDTH}x{HEIGHT}, mean {statistics.mean(sizes):.0f} "
          f"bytes/frame ({statistics.mean(sizes) * 8 * FPS / 1000:.0f} kbit/s), "
          f"keyframe {len(clip[1][0])} bytes; encoded in {time.monotonic() - started:.1f} s")
    print(f"{'people':>6} {'streams':>7} {'relay cores':>11} {'us/stream/s':>11} "
          f"{'streams/core':>12} {'fps/stream':>10} {'latency p50':>11} {'p95':>7} "
          f"{'p99':>7} {'late 1st frame':>14} {'rejoin':>8} {'client cores':>12} {'kernel':>6}")
    for size in args.sizes:
        results = []
        for run in range(args.runs):
            profile = args.profile and size == args.sizes[-1] and run == args.runs - 1
            results.append(asyncio.run(one_run(size, clip, window=args.window, profile=profile,
                                              loop=args.loop, rooms=args.rooms)))
        def med(name: str, results: list[Result] = results) -> float:
            return float(statistics.median(getattr(r, name) for r in results))
        cores = med("cores")
        streams = results[0].streams
        label = str(size) if args.rooms == 1 else f"{args.rooms}x{size}"
        print(f"{label:>6} {streams:>7} {cores:>11.3f} {cores / streams * 1e6:>11.0f} "
              f"{streams / cores if cores else float('inf'):>12.0f} "
              f"{med('frames_per_stream_s'):>10.1f} {med('latency_median_ms'):>9.1f}ms "
              f"{med('latency_p95_ms'):>5.1f}ms {med('latency_p99_ms'):>5.1f}ms "
              f"{med('late_first_frame_ms'):>12.0f}ms {med('rejoin_first_frame_ms'):>6.0f}ms "
              f"{med('client_cores'):>12.2f} {med('system_share'):>6.0%}",
              flush=True)
        for result in results:
            if result.profile:
                print(result.profile)


if __name__ == "__main__":
    main()
