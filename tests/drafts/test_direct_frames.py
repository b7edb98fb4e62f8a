"""The draft rooms' shortcut for sending frames (documents/direct_frames.py) against a real uvicorn
server: it is taken under uvicorn's default WebSocket protocol, its frames are what a client
library parses, and on a connection with permessage-deflate it mixes with compressed messages."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
import websockets
from starlette.websockets import WebSocket
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from documents.direct_frames import COMPRESS_FROM, binary_frame
from documents.routes import SocketConnection

# Each length encoding and its edges, and the compression threshold's; the large ones twice,
# so that a compressed message follows a compressed one (context takeover).
SIZES = (0, 1, 125, 126, 1023, 1024, 65_535, 65_536, 300_000, 1023, 300_000)


@pytest.mark.parametrize("size", SIZES)
def test_frames_parse_as_unmasked_binary_frames(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    reader = StreamReader()
    reader.feed_data(binary_frame(payload))
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
        raise AssertionError("frame incomplete")
    except StopIteration as done:
        frame = done.value
    assert frame.opcode is Opcode.BINARY and frame.fin
    assert frame.data == payload


async def _app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
               send: Callable[[Any], Awaitable[None]]) -> None:
    """Sends one message of each size, then which of them went straight to the socket."""
    websocket = WebSocket(scope, receive, send)
    await websocket.accept()
    direct = SocketConnection(websocket, user_id=1, can_write=True).direct
    straight = []
    for size in SIZES:
        payload = bytes([size % 256]) * size
        if direct is not None and direct.send(payload):
            straight.append(size)
        else:
            await websocket.send_bytes(payload)
    await websocket.send_text(json.dumps(straight))
    await websocket.receive()  # until the client leaves


async def _exchange(ws: str, compression: str | None) -> tuple[list[int], list[bytes]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, ws=ws, log_level="warning",
                            ws_per_message_deflate=True, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                assert not serving.done(), "uvicorn did not start"
                await asyncio.sleep(0.01)
        async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=compression,
                                      max_size=None) as client:
            received = [await asyncio.wait_for(client.recv(), 10) for _ in SIZES]
            straight = await asyncio.wait_for(client.recv(), 10)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
    assert isinstance(straight, str)
    return json.loads(straight), [m if isinstance(m, bytes) else m.encode() for m in received]


@pytest.mark.parametrize(("ws", "compression", "straight"), [
    ("auto", None, list(SIZES)),  # what the service runs with: every message
    # Small messages go out uncompressed, large ones compressed through websockets: both kinds
    # arrive intact and in order on one connection, the compression state unharmed.
    ("auto", "deflate", [s for s in SIZES if s < COMPRESS_FROM]),
])
def test_each_message_arrives_intact_whichever_way_it_went(ws: str, compression: str | None,
                                                           straight: list[int]) -> None:
    went_straight, received = asyncio.run(_exchange(ws, compression))
    assert went_straight == straight
    assert received == [bytes([size % 256]) * size for size in SIZES]
