"""The live rooms of the process, by case id: made on the first join, dropped once empty."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from odr.access import SESSION_STATES
from odr.cluster import ClusterDown, Holder
from odr.errors import N_
from odr.models import CaseStatus, utcnow
from odr.services import Services
from rooms import store
from rooms.check import Echoes
from rooms.live import CLOSE_MOVED, STATE_TTL_SECONDS, LiveRoom, MediaRelay, Seat

log = logging.getLogger("odr.rooms")


class RoomManager:
    """Holds every ``LiveRoom`` and the media relay they share (None: chat and control only)."""

    def __init__(self, services: Services, *, relay: MediaRelay | None = None,
                 echoes: Echoes | None = None) -> None:
        self.services = services
        self.relay = relay
        # The device check's echo calls (rooms.check), with the relay's connection settings.
        self.echoes = echoes
        self.rooms: dict[int, LiveRoom] = {}
        if relay is not None:
            relay.on_publisher_tracks = self._publisher_tracks
            relay.on_link = self._link
        if services.cluster is not None:
            services.cluster.holders["room"] = Holder(held=lambda: list(self.rooms),
                                                      lost=self._moved)

    async def room(self, case_id: int) -> LiveRoom:
        """The case's room, made when the first person connects: with several processes, from
        the state its previous owner saved, if it had one."""
        live = self.rooms.get(case_id)
        if live is not None:
            return live
        if (cluster := self.services.cluster) is not None:
            try:
                saved = await cluster.load_state("room", case_id)
            except ClusterDown:
                saved = None
        else:  # one process: the state it kept before a restart, if the session was going on
            async with self.services.reader() as session:
                saved = await store.load_snapshot(
                    case_id, utcnow() - timedelta(seconds=STATE_TTL_SECONDS), session=session)
        snapshot = json.loads(saved) if saved else None
        if (live := self.rooms.get(case_id)) is not None:
            return live  # made by another connection meanwhile
        live = LiveRoom(case_id, self.services, relay=self.relay, on_empty=self._discard)
        if snapshot:
            live.take_over(snapshot)
        self.rooms[case_id] = live
        log.info("room %s: held here", case_id)  # bench/cluster_bench.py reads these lines
        return live

    async def connect(self, case_id: int, seat: Seat) -> LiveRoom:
        """Seat a new connection. The relay knows a person once, so a connection of the same
        user in another case's room is closed (one live session per person at a time)."""
        for other in list(self.rooms.values()):
            if other.case_id != case_id and (old := other.seats.get(seat.user_id)):
                old.error("replaced", N_("You joined the session from another window."))
                await other.detach(old)
                await old.close(4000)
        live = await self.room(case_id)
        await live.attach(seat)
        return live

    async def case_status_changed(self, case_id: int, status: CaseStatus) -> None:
        """A case that leaves its session states (withdrawn, ended without agreement, signed)
        can no longer be joined: its room closes for everyone in it, not only for newcomers."""
        live = self.rooms.get(case_id)
        if live is not None and status not in SESSION_STATES:
            await live.end(N_("The mediation has ended, so the room is closed."))

    async def disconnect_user(self, case_id: int, user_id: int, code: int, reason: str) -> None:
        """Someone may no longer be in the case (``odr.cases.Disconnector``): their connection
        closes with ``code`` after an error saying ``reason``, and their place goes."""
        live = self.rooms.get(case_id)
        if live is not None:
            await live.expel(user_id, code, reason)

    async def _moved(self, case_id: int) -> None:
        """Another process owns the room now: everyone here reconnects, and is sent there."""
        live = self.rooms.pop(case_id, None)
        if live is not None:
            log.info("room %s: no longer held here (moved)", case_id)
            await live.close(CLOSE_MOVED)

    def _discard(self, live: LiveRoom) -> None:
        if self.rooms.get(live.case_id) is live:
            del self.rooms[live.case_id]
            log.info("room %s: no longer held here (empty)", live.case_id)

    async def _publisher_tracks(self, user_id: int) -> None:
        for live in list(self.rooms.values()):
            if user_id in live.seats:
                await live.publisher_changed(user_id)

    async def _link(self, user_id: int, video_paused: bool) -> None:
        """Tell a viewer that the relay holds video back from its weak link, or sends it again
        (the page says so: otherwise frozen pictures look like a fault)."""
        for live in list(self.rooms.values()):
            if (seat := live.seats.get(user_id)) is not None:
                seat.send({"type": "media.link", "video": "paused" if video_paused else "sent"})

    async def close(self) -> None:
        for live in list(self.rooms.values()):
            log.info("room %s: no longer held here (shutting down)", live.case_id)
            await live.close()
        self.rooms.clear()
        if self.echoes is not None:
            await self.echoes.close()
        if self.relay is not None:
            await self.relay.close()
