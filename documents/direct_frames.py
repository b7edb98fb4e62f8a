"""Writing draft-room frames straight to the socket under uvicorn (the hook kept in one place).

A draft room forwards every edit to every other client of the room, so sending a small binary
message is the server's hottest path. Through Starlette and uvicorn each send builds an ASGI
message, waits on the protocol's flow-control event, asks the ``websockets`` state machine
to serialise a frame and joins its output before the one ``write`` that matters; the profile of
``bench/drafts_bench.py`` put that wrapping at about a tenth of the server's CPU.

Server-to-client frames need no mask, so an uncompressed frame is two to ten bytes of header in
front of the payload. ``DirectFrames`` writes it to the transport itself whenever the protocol
is plainly open and not paused, and tells the caller to take the ordinary path otherwise
(another WebSocket implementation, a closing connection, a full write buffer, a large message
on a compressed connection), so behaviour never depends on the shortcut.

With permessage-deflate each message says by itself whether it is compressed (RFC 7692
section 6: the RSV1 bit), and a message sent as it is touches neither side's compression
window. So, like the `ws` package's default threshold, messages under ``COMPRESS_FROM`` bytes go
out uncompressed: a typical Yjs update is tens of bytes, which deflate cannot shrink but costs a
compression here and an inflation in every browser.
It reads uvicorn's ``WebSocketsSansIOProtocol`` attributes; uvicorn is pinned in
``pyproject.toml`` and ``tests/drafts/test_direct_frames.py`` checks them.
"""

from __future__ import annotations

import struct
from typing import Any

from starlette.websockets import WebSocket

try:  # the shortcut exists only for this implementation; anything else takes the ASGI path
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.protocol import State
except ImportError:  # pragma: no cover - uvicorn is a dependency
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

BINARY = 0x82  # FIN + opcode 2
COMPRESS_FROM = 1024  # bytes: smaller messages are sent uncompressed on deflate connections


def binary_frame(data: bytes) -> bytes:
    """An unmasked, unfragmented binary frame (RFC 6455 section 5.2)."""
    n = len(data)
    if n < 126:
        return bytes((BINARY, n)) + data
    if n < 1 << 16:
        return struct.pack("!BBH", BINARY, 126, n) + data
    return struct.pack("!BBQ", BINARY, 127, n) + data


class DirectFrames:
    """Binary frames for one accepted WebSocket, written to its transport when that is safe."""

    def __init__(self, protocol: Any, *, below: int | None = None) -> None:
        self.protocol = protocol
        self.below = below  # only messages shorter than this, when set

    def send(self, data: bytes) -> bool:
        """Write ``data`` as one frame; False when the caller must use the ASGI path instead."""
        p = self.protocol
        if ((self.below is not None and len(data) >= self.below)
                or p.close_sent or p.disconnected or not p.writable.is_set()
                or p.conn.state is not State.OPEN or p.transport.is_closing()):
            return False
        p.transport.write(binary_frame(data))
        return True


def direct_frames(websocket: WebSocket) -> DirectFrames | None:
    """The shortcut for an accepted WebSocket served by uvicorn's sans-I/O protocol, or None."""
    if WebSocketsSansIOProtocol is None:  # pragma: no cover
        return None
    protocol = getattr(getattr(websocket, "_send", None), "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol):
        return None
    if not protocol.handshake_complete:
        return None
    extensions = protocol.conn.extensions
    if not extensions:
        return DirectFrames(protocol)
    if all(isinstance(e, PerMessageDeflate) for e in extensions):
        return DirectFrames(protocol, below=COMPRESS_FROM)
    return None  # an extension we do not know may need every frame
