"""Relaying a room or draft WebSocket to the process that owns it (``odr.cluster``).

The relay is a plain pipe: the owner sees the client's own handshake headers (cookie, origin,
token, language), so it authorises the connection and enforces every rule itself; this process
only copies frames both ways and passes the owner's close code back. Media does not pass here:
the owner's relay offers its own addresses (or TURN) in the SDP it sends through the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from odr.cluster import Cluster, ClusterDown, Owner

log = logging.getLogger("odr.cluster")

# Marks a relayed handshake: its receiver serves it or refuses it, never relays it again.
FORWARDED = "x-odr-forwarded"
CLOSE_POLICY = 1008
CLOSE_RESTARTING = 1012  # the owner went away: reconnect (to its successor)
CLOSE_TRY_AGAIN = 1013
# The handshake headers the relay's own client makes.
OWN_HEADERS = frozenset({
    "host", "upgrade", "connection", "content-length", "sec-websocket-key",
    "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept", FORWARDED,
})
Refuse = Callable[[WebSocket], Awaitable[None]]


class OwnerGone(Exception):
    """Nothing listens at the owner's address any more."""


async def serve_here(websocket: WebSocket, cluster: Cluster | None, kind: str, ident: int,
                     unavailable: Refuse) -> bool:
    """Whether this process serves the socket. If not, the socket was relayed to the owner until
    it ended, or refused with ``unavailable`` (Redis down, or the room moving right now)."""
    if cluster is None:
        return True
    relayed = FORWARDED in websocket.headers
    for _ in range(3):
        try:
            owner = await cluster.claim(kind, ident)
        except ClusterDown:
            await unavailable(websocket)
            return False
        if owner == cluster.me:
            return True
        if relayed:
            # The relaying process took this one for the owner, and ownership has moved since:
            # the client comes back and is sent to the new owner.
            await unavailable(websocket)
            return False
        try:
            await relay(websocket, owner, unavailable)
            return False
        except OwnerGone:
            try:
                await cluster.evict(kind, ident, owner)
            except ClusterDown:
                break
    await unavailable(websocket)
    return False


def _upstream_url(websocket: WebSocket, owner: Owner) -> str:
    base = owner.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    query = websocket.url.query
    return f"{base}{websocket.url.path}" + (f"?{query}" if query else "")


async def relay(websocket: WebSocket, owner: Owner, unavailable: Refuse) -> None:
    headers = [(k, v) for k, v in websocket.headers.items() if k not in OWN_HEADERS]
    headers.append((FORWARDED, "1"))
    try:
        upstream = await connect(
            _upstream_url(websocket, owner), additional_headers=headers, user_agent_header=None,
            compression=None, max_size=None, open_timeout=5, close_timeout=5)
    except InvalidStatus:
        await websocket.close(code=CLOSE_POLICY)  # the owner refused the client itself
        return
    except ConnectionRefusedError as exc:
        raise OwnerGone(owner.url) from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        # Alive perhaps, but not answering: its lease runs out if it is gone.
        log.warning("owner %s not reachable: %s", owner.url, exc)
        await unavailable(websocket)
        return
    await websocket.accept()
    async with upstream:
        to_client = asyncio.create_task(_owner_to_client(upstream, websocket))
        to_owner = asyncio.create_task(_client_to_owner(websocket, upstream))
        done, _ = await asyncio.wait({to_client, to_owner}, return_when=asyncio.FIRST_COMPLETED)
        for task in (to_client, to_owner):
            if task not in done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        client_code = (to_owner.result() if to_owner in done and to_owner.exception() is None
                       else None)
        if client_code is not None:  # the client left: tell the owner the same way
            with contextlib.suppress(Exception):
                await upstream.close(code=client_code if client_code in (1000, 1001) else 1000)
            return
    code = upstream.close_code
    if code is None or code in (1005, 1006):
        code = CLOSE_RESTARTING
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await websocket.close(code=code, reason=upstream.close_reason or "")


async def _owner_to_client(upstream: ClientConnection, websocket: WebSocket) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in upstream:
            if isinstance(message, bytes):
                await websocket.send_bytes(message)
            else:
                await websocket.send_text(message)


async def _client_to_owner(websocket: WebSocket, upstream: ClientConnection) -> int | None:
    """Copies the client's frames; returns the client's close code when it goes, None when the
    owner's side closed first."""
    try:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return int(frame.get("code") or 1000)
            data = frame.get("bytes")
            await upstream.send(data if data is not None else frame.get("text") or "")
    except (WebSocketDisconnect, RuntimeError):
        return 1000
    except ConnectionClosed:
        return None
