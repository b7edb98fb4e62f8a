"""The state of one live room: who waits in the lobby, who is in the joint session and in each
caucus, and who has dropped out but keeps their place for a grace period.

Plain classes, no web framework and no database: the transport asks a ``Room`` to change and
sends every connected member the ``view`` that the change produced for them. A refused change
raises ``odr.errors.Refused`` (``Forbidden`` when the member may never do it) and leaves the room
as it was.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from odr.errors import N_, Conflict, Forbidden, NotFound
from odr.neutrality import Tally

JOINT = "joint"
MEDIATOR_ROLES = frozenset({"mediator", "co_mediator"})
# Read-only participants (trainees, supervisors): they watch, they do not speak or write.
SILENT_ROLES = frozenset({"observer"})


def new_caucus_id() -> str:
    """Caucus ids are never reused in a case, so an old caucus's chat cannot reach a new one."""
    return "caucus-" + secrets.token_hex(4)


@dataclass
class Member:
    """A participant of the case who has joined the room (now or within the grace period)."""

    user_id: int
    name: str
    role: str
    side: str | None
    channel: str | None = None  # None: waiting in the lobby
    connected: bool = True
    dropped_at: float | None = None

    @property
    def is_mediator(self) -> bool:
        return self.role in MEDIATOR_ROLES

    @property
    def silent(self) -> bool:
        return self.role in SILENT_ROLES

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "side": self.side,
                "online": self.connected}


@dataclass
class Change:
    """What one change did: who entered a channel (they need its history and new media), who
    now waits in the lobby (the mediators are alerted), and who left the room for good."""

    entered: set[int] = field(default_factory=set)
    knocked: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    channel: str | None = None  # the caucus a ``caucus.open`` created

    def merge(self, other: Change) -> Change:
        self.entered |= other.entered
        self.knocked |= other.knocked
        self.removed |= other.removed
        self.channel = self.channel or other.channel
        return self


class Room:
    """One case's live session: the lobby, the joint session and the caucuses.

    Only mediators (and co-mediators) admit, open, move and close; an interpreter follows the
    party of their side. Times are passed in (``now``) so that the grace period is testable.
    """

    def __init__(self, case_id: int, *, grace_seconds: float) -> None:
        self.case_id = case_id
        self.grace_seconds = grace_seconds
        self.members: dict[int, Member] = {}
        self.caucuses: dict[str, None] = {}  # ids in the order they were opened
        # Countdowns the mediator set, by channel: when each ends (Unix time, so that it ends
        # at the same moment in whichever process holds the room).
        self.timers: dict[str, float] = {}
        # The mediator's time in each kind of meeting (odr.neutrality): ``tally`` after
        # every change.
        self.neutrality = Tally()

    # --- reading ---------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self.members

    def channels(self) -> dict[str, list[int]]:
        """Every channel with its members (the joint session always exists)."""
        result: dict[str, list[int]] = {JOINT: []}
        for caucus in self.caucuses:
            result[caucus] = []
        for member in self.members.values():
            if member.channel is not None:
                result[member.channel].append(member.user_id)
        return result

    def lobby(self) -> list[int]:
        return [m.user_id for m in self.members.values() if m.channel is None]

    def channel_of(self, user_id: int) -> str | None:
        member = self.members.get(user_id)
        return member.channel if member else None

    def member(self, user_id: int) -> Member:
        member = self.members.get(user_id)
        if member is None:
            raise NotFound(N_("This person is not in the session."))
        return member

    def mediators(self) -> list[Member]:
        return [m for m in self.members.values() if m.is_mediator]

    def sources(self, user_id: int) -> set[int]:
        """Whose audio and video this member receives: the others connected in their channel.

        Nobody in the lobby sends or receives anything.
        """
        member = self.members.get(user_id)
        if member is None or member.channel is None or not member.connected:
            return set()
        return {
            m.user_id for m in self.members.values()
            if m.channel == member.channel and m.connected and m.user_id != user_id
        }

    def view(self, user_id: int) -> dict[str, Any]:
        """The ``state`` message for one member: only what they may know.

        A mediator sees every channel, the lobby and everyone in the room. Anyone else sees
        the channel they are in with its members, and in the lobby only themselves: not who is
        in which caucus, nor who else is waiting.
        """
        me = self.member(user_id)
        if me.is_mediator:
            channels = self.channels()
            lobby = self.lobby()
            people = list(self.members.values())
        else:
            channels = {}
            if me.channel is not None:
                channels = {me.channel: self.channels()[me.channel]}
            lobby = [user_id] if me.channel is None else []
            seen = set(lobby).union(*channels.values())
            people = [m for m in self.members.values() if m.user_id in seen]
        return {
            "type": "state",
            "you": {
                "user_id": me.user_id, "name": me.name, "role": me.role, "side": me.side,
                "channel": me.channel, "mediator": me.is_mediator,
            },
            "lobby": lobby,
            "channels": channels,
            "people": {str(m.user_id): m.public() for m in people},
            # Only the countdown of the member's own meeting: a caucus's is never seen outside.
            "timer": ({"channel": me.channel, "ends_at": self.timers[me.channel]}
                      if me.channel in self.timers else None),
            # The mediators watch their own balance; the parties see it after the session.
            "neutrality": ({"seconds": {k: round(v) for k, v in self.neutrality.seconds.items()},
                            "position": self.neutrality.position}
                           if me.is_mediator else None),
        }

    def tally(self, now: float) -> None:
        """Count the time since the last change where the mediator was; from now on, count it
        where the mediator is now."""
        self.neutrality.advance(self._mediator_place(), now)

    def _mediator_place(self) -> str | None:
        """Where the mediator (the lead one) is, as the neutrality record counts it: the joint
        session, a separate meeting with one side's people, or another meeting."""
        lead = next((m for m in self.members.values() if m.role == "mediator"), None)
        if lead is None or not lead.connected or lead.channel is None:
            return None
        if lead.channel == JOINT:
            return "joint"
        sides = {m.side for m in self.members.values()
                 if m.channel == lead.channel and not m.is_mediator and m.side is not None}
        return sides.pop() if len(sides) == 1 else "other"

    # --- handing the room to another process ----------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Who is where, for the process that takes the room over (``odr.cluster``)."""
        return {
            "caucuses": list(self.caucuses),
            "timers": dict(self.timers),
            "neutrality": self.neutrality.snapshot(),
            "members": [{"user_id": m.user_id, "name": m.name, "role": m.role,
                         "side": m.side, "channel": m.channel}
                        for m in self.members.values()],
        }

    @classmethod
    def restore(cls, case_id: int, data: dict[str, Any], *, grace_seconds: float,
                now: float) -> Room:
        """The room as its last owner left it. Everyone's connection went with that owner, so
        each holds their place (channel, caucus or lobby) for a grace period from ``now``."""
        room = cls(case_id, grace_seconds=grace_seconds)
        room.caucuses = dict.fromkeys(data.get("caucuses", []))
        room.timers = {channel: float(ends) for channel, ends in data.get("timers", {}).items()
                       if channel == JOINT or channel in room.caucuses}
        room.neutrality = Tally.restore(data.get("neutrality"))
        for m in data.get("members", []):
            channel = m.get("channel")
            if channel is not None and channel != JOINT and channel not in room.caucuses:
                channel = None  # a caucus the snapshot does not know: back to the lobby
            room.members[int(m["user_id"])] = Member(
                int(m["user_id"]), str(m["name"]), str(m["role"]), m.get("side"),
                channel=channel, connected=False, dropped_at=now)
        return room

    # --- joining and leaving ---------------------------------------------------------------

    def join(self, user_id: int, *, name: str, role: str, side: str | None) -> Change:
        """A participant connects. A mediator goes to the joint session, anyone else to the lobby,
        unless they still hold a place (a dropped connection within the grace period)."""
        change = Change()
        member = self.members.get(user_id)
        if member is not None:
            member.connected = True
            member.dropped_at = None
            member.name = name
            if member.channel is not None:
                change.entered.add(user_id)
            else:
                change.knocked.add(user_id)
            return change
        member = Member(user_id, name, role, side)
        self.members[user_id] = member
        if member.is_mediator:
            member.channel = JOINT
            change.entered.add(user_id)
        else:
            change.knocked.add(user_id)
        return change

    def drop(self, user_id: int, *, now: float) -> Change:
        """The connection broke: the member keeps their place until ``expire`` after the grace."""
        member = self.members.get(user_id)
        if member is None:
            return Change()
        if self.grace_seconds <= 0:
            return self.leave(user_id)
        member.connected = False
        member.dropped_at = now
        return Change()

    def leave(self, user_id: int) -> Change:
        """The member leaves for good (or their grace period ran out)."""
        member = self.members.pop(user_id, None)
        if member is None:
            return Change()
        change = Change(removed={user_id})
        self._close_empty_caucuses()
        return change

    def expire(self, *, now: float) -> Change:
        """Remove everyone whose connection has been gone longer than the grace period."""
        change = Change()
        for member in list(self.members.values()):
            if (not member.connected and member.dropped_at is not None
                    and now - member.dropped_at >= self.grace_seconds):
                change.merge(self.leave(member.user_id))
        return change

    def next_expiry(self) -> float | None:
        """When the earliest held place runs out (for the transport's timer)."""
        times = [m.dropped_at + self.grace_seconds for m in self.members.values()
                 if not m.connected and m.dropped_at is not None]
        return min(times) if times else None

    # --- the mediator's controls -----------------------------------------------------------

    def admit(self, by: int, user_id: int) -> Change:
        """The mediator lets someone in from the lobby into the joint session."""
        self._require_mediator(by, N_("Only the mediator can admit people from the lobby."))
        member = self.member(user_id)
        if member.channel is not None:
            raise Conflict(N_("This person is not waiting in the lobby."))
        return self._move(member, JOINT)

    def open_caucus(self, by: int, members: Iterable[int]) -> Change:
        """Open a caucus with the listed people and the mediator who opens it."""
        self._require_mediator(by, N_("Only the mediator can open a separate meeting."))
        wanted = [self.member(u) for u in dict.fromkeys(members) if u != by]
        if not wanted:
            raise Conflict(N_("Choose at least one person for the separate meeting."))
        for member in wanted:
            if member.channel is None:
                raise Conflict(N_("Admit this person from the lobby first."))
        caucus = new_caucus_id()
        self.caucuses[caucus] = None
        change = Change(channel=caucus)
        for member in [self.member(by), *wanted]:
            change.merge(self._move(member, caucus))
        self._close_empty_caucuses()
        return change

    def move(self, by: int, user_id: int, channel: str) -> Change:
        """Move someone (the mediator too: shuttling between caucuses) into another channel."""
        self._require_mediator(by, N_("Only the mediator can move people between meetings."))
        if channel != JOINT and channel not in self.caucuses:
            raise NotFound(N_("There is no such meeting."))
        member = self.member(user_id)
        change = self._move(member, channel)
        self._close_empty_caucuses()
        return change

    def close_caucus(self, by: int, channel: str) -> Change:
        """Close a caucus: its members return to the joint session."""
        self._require_mediator(by, N_("Only the mediator can close a separate meeting."))
        if channel == JOINT:
            raise Conflict(N_("The joint session cannot be closed."))
        if channel not in self.caucuses:
            raise NotFound(N_("There is no such meeting."))
        change = Change()
        for member in list(self.members.values()):
            if member.channel == channel:
                member.channel = JOINT
                change.entered.add(member.user_id)
        del self.caucuses[channel]
        self.timers.pop(channel, None)
        return change

    def set_timer(self, by: int, channel: str, seconds: int, *, now: float) -> Change:
        """Start (or with 0 seconds stop) the countdown of one meeting, from ``now``."""
        self._require_mediator(by, N_("Only the mediator can set a timer."))
        if channel != JOINT and channel not in self.caucuses:
            raise NotFound(N_("There is no such meeting."))
        if seconds:
            self.timers[channel] = now + seconds
        else:
            self.timers.pop(channel, None)
        return Change()

    def recall(self, by: int) -> Change:
        """Close every caucus: everyone returns to the joint session."""
        self._require_mediator(by, N_("Only the mediator can recall everyone."))
        change = Change()
        for caucus in list(self.caucuses):
            change.merge(self.close_caucus(by, caucus))
        return change

    # --- checks used by the transport ------------------------------------------------------

    def require_in_channel(self, user_id: int, channel: str) -> None:
        """Refuse anything about a channel the member is not in now (chat, media)."""
        if self.channel_of(user_id) != channel:
            raise Forbidden(N_("You are not in this meeting."))

    def require_mediator(self, user_id: int, message: str) -> None:
        self._require_mediator(user_id, message)

    # --- internals -------------------------------------------------------------------------

    def _require_mediator(self, user_id: int, message: str) -> None:
        member = self.members.get(user_id)
        if member is None or not member.is_mediator:
            raise Forbidden(message)

    def _move(self, member: Member, channel: str) -> Change:
        """Move a member; a party's interpreters (same side, not waiting) follow them."""
        change = Change()
        followers = []
        if member.role == "party" and member.side is not None:
            followers = [
                m for m in self.members.values()
                if m.role == "interpreter" and m.side == member.side and m.channel is not None
            ]
        for moving in [member, *followers]:
            if moving.channel != channel:
                moving.channel = channel
                change.entered.add(moving.user_id)
        return change

    def _close_empty_caucuses(self) -> None:
        occupied = {m.channel for m in self.members.values()}
        for caucus in list(self.caucuses):
            if caucus not in occupied:
                del self.caucuses[caucus]
                self.timers.pop(caucus, None)
