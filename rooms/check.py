"""The device check's echo: a short call in which the server sends back the sound it receives,
so that the page can tell whether media reaches the platform's relay from this network, and
how fast and how whole it comes back (camera, microphone and speaker are checked in the page).

The echo uses the relay's own connection settings (ICE servers, offered addresses), so it
checks the path a session's media takes. One echo per person, ended after ``ECHO_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from rooms.media import aiortc_hooks as hooks
from rooms.media.relay import rtc_ice_servers
from rooms.signalling import SignallingRefused

log = logging.getLogger(__name__)
ECHO_SECONDS = 30.0


class Echoes:
    def __init__(self, *, ice_servers: list[dict[str, Any]], media_addresses: list[str]
                 ) -> None:
        self._ice_servers = rtc_ice_servers(ice_servers)
        self._media_addresses = media_addresses
        self._calls: dict[int, RTCPeerConnection] = {}
        self._ends: dict[int, asyncio.TimerHandle] = {}

    async def answer(self, user_id: int, offer_sdp: str) -> str:
        """Answer the page's offer with a connection that returns its audio as it came."""
        await self.end(user_id)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self._ice_servers),
                                                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._calls[user_id] = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                pc.addTrack(track)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            if not any(t.kind == "audio" for t in pc.getTransceivers()):
                raise ValueError("the offer has no audio")
            with hooks.offered_addresses(self._media_addresses):
                await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, AssertionError) as exc:
            await self.end(user_id)
            raise SignallingRefused(f"echo offer refused: {exc}") from exc
        loop = asyncio.get_running_loop()
        self._ends[user_id] = loop.call_later(
            ECHO_SECONDS, lambda: loop.create_task(self.end(user_id)))
        return str(pc.localDescription.sdp)

    async def end(self, user_id: int) -> None:
        pc = self._calls.pop(user_id, None)
        if (timer := self._ends.pop(user_id, None)) is not None:
            timer.cancel()
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()

    async def close(self) -> None:
        for user_id in list(self._calls):
            await self.end(user_id)
