"""One case's live session at run time: the ``Room`` state, the connected seats, the database
(chat, notes, membership, audit) and the media relay, joined together.

The WebSocket adapter (``rooms.routes``) hands each text frame to ``LiveRoom.handle`` and tells it
when a socket ends; everything a client may see goes out through its ``Seat.send``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from odr import cases, neutrality
from odr.access import Subject
from odr.errors import N_, Conflict, Forbidden, NotFound, Refused
from odr.i18n import Translator
from odr.models import CaseStatus, NeutralityRecord, User
from odr.neutrality import Tally
from odr.services import Services
from rooms import messages as m
from rooms import store
from rooms.signalling import SignallingRefused
from rooms.state import Change, Room

log = logging.getLogger("odr.rooms")

CLOSE_NORMAL = 1000
CLOSE_REPLACED = 4000
CLOSE_CASE_ENDED = 4001  # the browser shows why and does not reconnect
CLOSE_MOVED = 1012  # another process owns the room now: the browser reconnects
# How long a room's saved state outlives its last change (a quiet session changes nothing).
STATE_TTL_SECONDS = 24 * 3600


class MediaRelay(Protocol):
    """What the rooms need of the media relay (``rooms.media.MediaRelay``)."""

    on_publisher_tracks: Callable[[int], Awaitable[None]] | None
    on_link: Callable[[int, bool], Awaitable[None]] | None

    async def publish(self, user_id: int, offer_sdp: str) -> str: ...

    async def set_sources(
        self, user_id: int, sources: set[int], *, video: bool = True
    ) -> tuple[str, dict[str, int]] | None: ...

    async def subscribe_answer(self, user_id: int, sdp: str) -> None: ...

    async def add_ice_candidate(self, user_id: int, pc: str, candidate: dict[str, Any]) -> None:
        ...

    async def remove(self, user_id: int) -> None: ...

    async def close(self) -> None: ...


class MediaUnavailable(Conflict):
    pass


@dataclass(eq=False)
class Seat:
    """One participant's open connection, as the transport made it (already authorised)."""

    user_id: int
    name: str
    role: str
    side: str | None
    tr: Translator
    send: Callable[[dict[str, Any]], None]
    close: Callable[[int], Awaitable[None]]
    joined: bool = False
    closed: bool = False

    def error(self, code: str, message: str, about: str | None = None,
              **params: Any) -> None:
        self.send({"type": "error", "code": code, "message": self.tr.gettext(message, **params),
                   "about": about})


# What a participant is told when the relay cannot take their signalling message.
SIGNALLING_REFUSALS = {
    "publish.offer": N_("Your camera and microphone could not be connected: the offer was not "
                        "accepted."),
    "subscribe.answer": N_("There is no video offer waiting for this answer, or the answer is "
                           "not valid."),
    "ice": N_("The connection details the browser sent are not valid."),
}

ERROR_CODES: list[tuple[type[Refused], str]] = [
    (MediaUnavailable, "media_unavailable"),
    (Forbidden, "forbidden"),
    (NotFound, "not_found"),
    (Conflict, "conflict"),
]


@dataclass(eq=False)
class LiveRoom:
    """A case's room while anyone is in it (or holds a place in it)."""

    case_id: int
    services: Services
    relay: MediaRelay | None = None
    on_empty: Callable[[LiveRoom], None] | None = None
    clock: Callable[[], float] = time.monotonic
    room: Room = field(init=False)
    seats: dict[int, Seat] = field(default_factory=dict)
    # The set of publishers last given to the relay for each member.
    sources: dict[int, set[int]] = field(default_factory=dict)
    # Members who asked for sound only (``media.receive``), for as long as they are connected.
    sound_only: set[int] = field(default_factory=set)
    _media_dirty: bool = False
    _media_task: asyncio.Task[None] | None = None
    _refresh: set[int] = field(default_factory=set)
    _timer: asyncio.TimerHandle | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # With several processes: the room's state to hand over is written by one task at a time.
    _state_dirty: bool = False
    _state_task: asyncio.Task[None] | None = None
    # Neutrality records being written: shutting down waits for them.
    _records: set[asyncio.Task[None]] = field(default_factory=set)
    # Closed here (shut down, or owned by another process now): changes are no longer saved.
    closed: bool = False

    def __post_init__(self) -> None:
        self.room = Room(self.case_id,
                         grace_seconds=self.services.settings.room_grace_seconds)

    def take_over(self, snapshot: dict[str, Any]) -> None:
        """Start from the state the previous owner saved (everyone holds their place)."""
        self.room = Room.restore(self.case_id, snapshot,
                                 grace_seconds=self.services.settings.room_grace_seconds,
                                 now=self.clock())
        self._schedule_expiry()

    # --- connections ----------------------------------------------------------------------

    async def attach(self, seat: Seat) -> None:
        """A new connection; an older one of the same user is closed (the newer tab wins)."""
        old = self.seats.get(seat.user_id)
        self.seats[seat.user_id] = seat
        if old is not None:
            old.error("replaced", N_("You joined the session from another window."))
            old.closed = True
            await self._forget_media(seat.user_id)
            await old.close(CLOSE_REPLACED)

    async def detach(self, seat: Seat) -> None:
        """The connection ended; a joined member keeps their place for the grace period."""
        seat.closed = True
        if self.closed or self.seats.get(seat.user_id) is not seat:
            return
        del self.seats[seat.user_id]
        await self._forget_media(seat.user_id)
        if seat.joined:
            change = self.room.drop(seat.user_id, now=self.clock())
            await self._apply(change)
            self._schedule_expiry()
        self._discard_if_empty()

    async def end(self, message: str) -> None:
        """The case no longer has a session: tell everyone why, close every connection, and
        drop the room (places kept for reconnecting go too)."""
        self._cancel_timer()
        self._keep_neutrality()
        for seat in list(self.seats.values()):
            seat.error("case_ended", message)
            seat.closed = True
            await self._forget_media(seat.user_id)
            await seat.close(CLOSE_CASE_ENDED)
        self.seats.clear()
        self.room = Room(self.case_id, grace_seconds=self.services.settings.room_grace_seconds)
        self._discard_if_empty()

    async def expel(self, user_id: int, code: int, message: str) -> None:
        """The person may no longer be in the case: their connection is told why and closed
        with ``code``, and their place goes at once (no grace period to come back in)."""
        seat = self.seats.pop(user_id, None)
        if seat is not None:
            seat.error("removed", message)
            seat.closed = True
            await self._forget_media(user_id)
            await seat.close(code)
        await self._apply(self.room.leave(user_id))
        self._discard_if_empty()

    async def close(self, code: int = 1001) -> None:
        """Shut down (or hand over): stop timers and close every connection. The state saved
        last stays as it was, so whoever takes the room over seats everyone where they were.
        Browsers reconnect on both codes (1001 going away, 1012 moved)."""
        self.closed = True
        self._cancel_timer()
        if self.services.cluster is None:
            # The count so far is kept now (nobody may come back); the state left for after
            # the restart counts afresh from there, so nothing is counted twice.
            self._keep_neutrality()
            if self._state_task is not None:
                await asyncio.wait({self._state_task}, timeout=5)
            await self._store_state()
        for seat in list(self.seats.values()):
            seat.closed = True
            await seat.close(code)
        for task in list(self._tasks):
            if task is not self._state_task and task not in self._records:
                task.cancel()
        if self._records:
            await asyncio.wait(self._records, timeout=5)

    # --- messages ---------------------------------------------------------------------------

    async def handle(self, seat: Seat, raw: str) -> None:
        """One client frame: parsed, checked and carried out, or answered with ``error``."""
        about: str | None = None
        try:
            message = m.parse(raw)
            about = message.type
            if not seat.joined and not isinstance(message, m.Join | m.Leave):
                raise Conflict(N_("Join the session first."))
            await self._dispatch(seat, message)
        except m.Malformed as exc:
            seat.error(exc.code, exc.message, about)
        except Refused as exc:
            code = next((c for kind, c in ERROR_CODES if isinstance(exc, kind)), "refused")
            if isinstance(exc, Forbidden):
                await self._audit_refusal(seat, about, exc.message)  # recorded before told
            seat.error(code, exc.message, about, **exc.params)
        except SignallingRefused as exc:
            # The browser's mistake or a message out of order, not ours: no traceback.
            log.info("room %s: %s from user %s refused: %s", self.case_id, about, seat.user_id,
                     exc)
            seat.error("invalid", SIGNALLING_REFUSALS[about or "ice"], about)
        except Exception:
            # A fault of ours (or of the relay) ends this message, not the connection.
            log.exception("room %s: %s from user %s failed", self.case_id, about, seat.user_id)
            seat.error("failed", N_("Something went wrong on our side. Nothing was changed; "
                                    "please try again."), about)

    async def _dispatch(self, seat: Seat, msg: m.Message) -> None:
        uid = seat.user_id
        match msg:
            case m.Join():
                await self._join(seat)
            case m.Leave():
                await self._leave(seat)
            case m.Admit(user_id=user_id):
                await self._apply(self.room.admit(uid, user_id))
            case m.CaucusOpen(members=members):
                await self._apply(self.room.open_caucus(uid, members))
            case m.CaucusMove(user_id=user_id, channel=channel):
                await self._apply(self.room.move(uid, user_id, channel))
            case m.CaucusClose(channel=channel):
                await self._apply(self.room.close_caucus(uid, channel))
            case m.Recall():
                await self._apply(self.room.recall(uid))
            case m.Chat(channel=channel, text=text):
                await self._chat(seat, channel, text)
            case m.Broadcast(text=text):
                await self._broadcast_chat(seat, text)
            case m.TimerSet(channel=channel, seconds=seconds):
                await self._apply(self.room.set_timer(uid, channel, seconds, now=time.time()))
            case m.History(channel=channel):
                await self._history(seat, channel, asked=True)
            case m.Note(text=text):
                await self._note(seat, text)
            case m.Notes():
                self.room.require_mediator(uid, N_("Only the mediators read the notes."))
                await self._send_notes(seat)
            case m.CallMediator():
                self._call_mediator(seat)
            case m.MediaReceive(video=video):
                (self.sound_only.discard if video else self.sound_only.add)(uid)
                self._refresh.add(uid)
                await self._update_media()
            case m.PublishOffer(sdp=sdp):
                relay = self._relay_for(seat, publishing=True)
                answer = await relay.publish(uid, sdp)
                seat.send({"type": "publish.answer", "sdp": answer})
                await self._update_media()
            case m.SubscribeAnswer(sdp=sdp):
                await self._relay_for(seat).subscribe_answer(uid, sdp)
            case m.Ice(pc=pc, candidate=candidate):
                await self._relay_for(seat).add_ice_candidate(uid, pc, dict(candidate))

    # --- joining ----------------------------------------------------------------------------

    async def _join(self, seat: Seat) -> None:
        if seat.joined:
            raise Conflict(N_("You have already joined."))
        if seat.role in ("mediator", "co_mediator"):
            await self._start_session(seat)
        change = self.room.join(seat.user_id, name=seat.name, role=seat.role, side=seat.side)
        seat.joined = True
        await self._apply(change)
        if self.room.member(seat.user_id).is_mediator:
            await self._send_notes(seat)

    async def _start_session(self, seat: Seat) -> None:
        """The mediator's first entry into a consented case starts the mediation (in_session)."""
        svc = self.services
        async with svc.maker() as session:
            case = await cases.get_case(self.case_id, session=session)
            if case.status != CaseStatus.consented:
                return
            user = await session.get(User, seat.user_id)
            participant = await cases.participant_of(self.case_id, seat.user_id,
                                                     session=session)
            try:
                await svc.cases.change_status(case, CaseStatus.in_session,
                                              subject=Subject(user, participant),
                                              session=session)
            except Refused:
                return  # another mediator started it at the same moment
            await session.commit()

    async def _leave(self, seat: Seat) -> None:
        if seat.joined:
            await self._apply(self.room.leave(seat.user_id))
        seat.closed = True
        if self.seats.get(seat.user_id) is seat:
            del self.seats[seat.user_id]
            await self._forget_media(seat.user_id)
        await seat.close(CLOSE_NORMAL)
        self._discard_if_empty()

    # --- chat, notes, alerts ---------------------------------------------------------------

    async def _chat(self, seat: Seat, channel: str, text: str) -> None:
        self.room.require_in_channel(seat.user_id, channel)
        if self.room.member(seat.user_id).silent:
            raise Forbidden(N_("Observers do not write in the chat."))
        async with self.services.maker() as session:
            row = await store.add_chat(self.case_id, channel, seat.user_id, text,
                                       session=session)
            await session.commit()
        out = store.chat_json(row, seat.name)
        for uid in self.room.channels().get(channel, []):
            if (target := self._seat(uid)) is not None:
                target.send(out)

    async def _broadcast_chat(self, seat: Seat, text: str) -> None:
        """The same message in the chat of every meeting (joint and each caucus), stored in each
        as any chat is, so a caucus learns nothing of the others but that the mediator wrote."""
        self.room.require_mediator(seat.user_id,
                                   N_("Only the mediators write to every meeting at once."))
        channels = self.room.channels()
        async with self.services.maker() as session:
            rows = {channel: await store.add_chat(self.case_id, channel, seat.user_id, text,
                                                  session=session)
                    for channel in channels}
            await session.commit()
        for channel, members in channels.items():
            out = store.chat_json(rows[channel], seat.name) | {"broadcast": True}
            for uid in members:
                if (target := self._seat(uid)) is not None:
                    target.send(out)

    async def _history(self, seat: Seat, channel: str, *, asked: bool = False) -> None:
        async with self.services.maker() as session:
            rows = await store.chat_history(self.case_id, channel, seat.user_id,
                                            session=session)
        if rows is None:
            raise Forbidden(N_("You were never in this meeting, so you cannot read its chat."))
        seat.send({"type": "history", "channel": channel,
                   "messages": [store.chat_json(row, name) for row, name in rows]})

    async def _note(self, seat: Seat, text: str) -> None:
        self.room.require_mediator(seat.user_id, N_("Only the mediators keep notes."))
        async with self.services.maker() as session:
            note = await store.add_note(self.case_id, seat.user_id, text, session=session)
            await session.commit()
        out = store.note_json(note, seat.name)
        for member in self.room.mediators():
            if (target := self._seat(member.user_id)) is not None:
                target.send(out)

    async def _send_notes(self, seat: Seat) -> None:
        async with self.services.maker() as session:
            rows = await store.notes(self.case_id, session=session)
        seat.send({"type": "notes", "notes": [store.note_json(n, name) for n, name in rows]})

    def _call_mediator(self, seat: Seat) -> None:
        alert = {"type": "call_mediator", "from": seat.user_id, "name": seat.name,
                 "channel": self.room.channel_of(seat.user_id)}
        for member in self.room.mediators():
            if member.user_id != seat.user_id and (target := self._seat(member.user_id)):
                target.send(alert)

    async def _audit_refusal(self, seat: Seat, about: str | None, reason: str) -> None:
        svc = self.services
        async with svc.maker() as session:
            await svc.audit.append(
                session, "room.refused", actor_id=seat.user_id, case_id=self.case_id,
                detail={"message": about, "reason": reason,
                        "channel": self.room.channel_of(seat.user_id)},
            )
            await session.commit()

    # --- applying a change -----------------------------------------------------------------

    async def _apply(self, change: Change) -> None:
        """After any change: count the mediator's time, record who entered which channel, send
        every member their state, alert the mediators to knocks, send the new channel's chat,
        and re-route the media."""
        self.room.tally(time.time())
        entered = {uid: ch for uid in change.entered
                   if (ch := self.room.channel_of(uid)) is not None}
        if entered:
            async with self.services.maker() as session:
                for uid, channel in entered.items():
                    await store.enter_channel(self.case_id, channel, uid, session=session)
                await session.commit()
        self._broadcast_state()
        self._save_state()
        for uid in change.knocked:
            member = self.room.members.get(uid)
            if member is None:
                continue
            knock = {"type": "knock", "user_id": uid, "name": member.name,
                     "role": member.role, "side": member.side}
            for mediator in self.room.mediators():
                if (target := self._seat(mediator.user_id)) is not None:
                    target.send(knock)
        for uid in change.entered:
            seat = self._seat(uid)
            now_in = self.room.channel_of(uid)
            if seat is not None and now_in is not None:
                await self._history(seat, now_in)
        await self._update_media()

    def _save_state(self) -> None:
        """Each change's state is kept for whoever serves the room next: with several
        processes in Redis, for the process that takes the room over if this one dies
        (``odr.cluster``); with one, in the database, for the process after a restart. One task
        writes, the latest wins."""
        if self.closed:
            return
        self._state_dirty = True
        if self._state_task is None or self._state_task.done():
            self._state_task = self._spawn(self._write_state())

    async def _write_state(self) -> None:
        while self._state_dirty and not self.closed:
            self._state_dirty = False
            await self._store_state()

    async def _store_state(self) -> None:
        data = json.dumps(self.room.snapshot())
        if (cluster := self.services.cluster) is not None:
            await cluster.save_state("room", self.case_id, data, ttl_seconds=STATE_TTL_SECONDS)
            return
        async with self.services.maker() as session:
            if self.room.empty:  # the session is over: the next one starts afresh
                await store.forget_snapshot(self.case_id, session=session)
            else:
                await store.save_snapshot(self.case_id, data, session=session)
            await session.commit()

    def _broadcast_state(self) -> None:
        for uid in list(self.room.members):
            if (seat := self._seat(uid)) is not None:
                seat.send(self.room.view(uid))

    def _seat(self, user_id: int) -> Seat | None:
        seat = self.seats.get(user_id)
        return seat if seat is not None and seat.joined and not seat.closed else None

    # --- media ------------------------------------------------------------------------------

    def _relay_for(self, seat: Seat, *, publishing: bool = False) -> MediaRelay:
        if self.relay is None:
            raise MediaUnavailable(N_("Video and sound are not available on this server; "
                                      "use the chat."))
        member = self.room.member(seat.user_id)
        if member.channel is None:
            raise Conflict(N_("Your camera and microphone are used once the mediator lets "
                              "you in."))
        if publishing and member.silent:
            raise Forbidden(N_("Observers do not send sound or video."))
        return self.relay

    async def _update_media(self) -> None:
        """Have the relay route media after a change, in the background.

        The relay may wait for a member's answer to an earlier offer before it offers again,
        and that answer arrives on the member's own connection: so no message handler waits
        for routing, and one task per room does it, in order.
        """
        if self.relay is None:
            return
        self._media_dirty = True
        if self._media_task is None or self._media_task.done():
            self._media_task = self._spawn(self._route_media())

    async def publisher_changed(self, publisher: int) -> None:
        """A publisher's tracks arrived or changed: re-offer everyone who receives them."""
        self._refresh |= {uid for uid, wanted in self.sources.items() if publisher in wanted}
        await self._update_media()

    async def _route_media(self) -> None:
        """Give the relay each member's new set of publishers; send any new offer."""
        while self._media_dirty:
            self._media_dirty = False
            changes: list[tuple[Seat, set[int]]] = []
            for uid in list(self.seats):
                seat = self._seat(uid)
                if seat is None:
                    continue
                wanted = self.room.sources(uid)
                if self.sources.get(uid) == wanted and uid not in self._refresh:
                    continue
                self._refresh.discard(uid)
                self.sources[uid] = wanted
                changes.append((seat, wanted))
            # All at once: the relay may wait for one member's pending answer, and nobody's
            # cut-off should wait behind a slow browser.
            await asyncio.gather(*(self._offer(seat, wanted) for seat, wanted in changes))

    async def _offer(self, seat: Seat, wanted: set[int]) -> None:
        assert self.relay is not None
        try:
            offer = await self.relay.set_sources(seat.user_id, set(wanted),
                                                 video=seat.user_id not in self.sound_only)
        except Exception:
            log.exception("relay: set_sources failed for user %s", seat.user_id)
            return
        if offer is not None:
            sdp, tracks = offer
            seat.send({"type": "subscribe.offer", "sdp": sdp, "tracks": tracks})

    async def _forget_media(self, user_id: int) -> None:
        self.sources.pop(user_id, None)
        self.sound_only.discard(user_id)
        if self.relay is not None:
            try:
                await self.relay.remove(user_id)
            except Exception:
                log.exception("relay: remove failed for user %s", user_id)

    # --- grace periods and the end of the room ----------------------------------------------

    def _schedule_expiry(self) -> None:
        """One timer, for the earliest held place to run out."""
        self._cancel_timer()
        due = self.room.next_expiry()
        if due is None:
            return
        delay = max(0.0, due - self.clock()) + 0.01
        self._timer = asyncio.get_running_loop().call_later(delay, self._expire_soon)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire_soon(self) -> None:
        self._spawn(self._expire())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _expire(self) -> None:
        self._timer = None
        change = self.room.expire(now=self.clock())
        if change.removed:
            await self._apply(change)
        self._schedule_expiry()
        self._discard_if_empty()

    def _discard_if_empty(self) -> None:
        if self.room.empty and not self.seats and self.on_empty is not None:
            self._cancel_timer()
            self._keep_neutrality()
            self._save_state()  # an empty room: its kept state goes
            self.on_empty(self)

    def _keep_neutrality(self) -> None:
        """The session is over (everyone left, the case ended, the service stops): its
        neutrality record goes into the case record, once."""
        now = time.time()
        self.room.tally(now)
        if not self.room.neutrality.counted:
            return
        record = neutrality.record_of(self.case_id, self.room.neutrality, now)
        self.room.neutrality = Tally()
        task = self._spawn(self._write_record(record))
        self._records.add(task)
        task.add_done_callback(self._records.discard)

    async def _write_record(self, record: NeutralityRecord) -> None:
        async with self.services.maker() as session:
            await neutrality.keep(record, session=session)
            await session.commit()
