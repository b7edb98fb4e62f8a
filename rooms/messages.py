"""The messages a client may send on the room WebSocket (DESIGN.md section 8), validated.

Anything that does not parse into one of these is refused with an ``error`` and changes nothing.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from odr.errors import N_, Refused
from odr.schemas import RowId

# Larger than any SDP a browser makes with a few tracks, small enough to bound the work.
MAX_MESSAGE_CHARS = 64_000
MAX_TEXT = 4000
# No message of the protocol nests deeper than 3; Python's JSON parser recurses per level and
# raises RecursionError (not ValueError) near 1,000, so depth is counted before it runs.
MAX_DEPTH = 8
# JSON strings (whose brackets are text, not nesting) and the brackets outside them.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_DEPTH_CHANGE = {"[": 1, "{": 1, "]": -1, "}": -1}

MAX_TIMER_SECONDS = 4 * 3600  # longer than any session
ChannelId = Annotated[str, Field(pattern=r"^(joint|caucus-[0-9a-f]{8})$")]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT),
    Field(pattern=r"^[^\x00]*$"),
]
Sdp = Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=r"^[^\x00]*$")]
CandidateValue = Annotated[str, Field(max_length=2000)] | int | None


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Join(ClientMessage):
    type: Literal["join"]


class Leave(ClientMessage):
    type: Literal["leave"]


class Admit(ClientMessage):
    type: Literal["admit"]
    user_id: RowId


class Chat(ClientMessage):
    type: Literal["chat"]
    channel: ChannelId
    text: Text


class Broadcast(ClientMessage):
    """The mediator writes to every meeting at once ("back to the joint session in 2 min")."""

    type: Literal["broadcast"]
    text: Text


class CaucusOpen(ClientMessage):
    type: Literal["caucus.open"]
    members: Annotated[list[RowId], Field(min_length=1, max_length=50)]


class CaucusMove(ClientMessage):
    type: Literal["caucus.move"]
    user_id: RowId
    channel: ChannelId


class TimerSet(ClientMessage):
    """The mediator starts a countdown for one meeting, seen only by its members (0: stop)."""

    type: Literal["timer.set"]
    channel: ChannelId
    seconds: Annotated[int, Field(ge=0, le=MAX_TIMER_SECONDS)]


class CaucusClose(ClientMessage):
    type: Literal["caucus.close"]
    channel: ChannelId


class Recall(ClientMessage):
    """Everyone back to the joint session (closes every caucus)."""

    type: Literal["recall"]


class Note(ClientMessage):
    type: Literal["note"]
    text: Text


class Notes(ClientMessage):
    """Ask for the mediators' notes again."""

    type: Literal["notes"]


class History(ClientMessage):
    """Ask for a channel's chat (only one the asker is or was a member of)."""

    type: Literal["history"]
    channel: ChannelId


class CallMediator(ClientMessage):
    type: Literal["call_mediator"]


class MediaReceive(ClientMessage):
    """What the participant's own connection should carry to them: ``video: false`` on a weak
    link (sound only), ``true`` to see the others again. Their own camera is another matter."""

    type: Literal["media.receive"]
    video: bool


class PublishOffer(ClientMessage):
    type: Literal["publish.offer"]
    sdp: Sdp


class SubscribeAnswer(ClientMessage):
    type: Literal["subscribe.answer"]
    sdp: Sdp


class Ice(ClientMessage):
    type: Literal["ice"]
    pc: Literal["publish", "subscribe"]
    candidate: Annotated[dict[Annotated[str, Field(max_length=40)], CandidateValue],
                         Field(max_length=8)]


Message = Annotated[
    Join | Leave | Admit | Chat | Broadcast | CaucusOpen | CaucusMove | CaucusClose | Recall
    | TimerSet | Note | Notes | History | CallMediator | MediaReceive | PublishOffer
    | SubscribeAnswer | Ice,
    Field(discriminator="type"),
]
MESSAGE = TypeAdapter[Message](Message)
TYPES = frozenset(
    m.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    for m in ClientMessage.__subclasses__()
)


class Malformed(Refused):
    """The text is not a message of the protocol."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


def parse(raw: str) -> Message:
    """A client's text frame as a message, or ``Malformed`` saying what is wrong."""
    if len(raw) > MAX_MESSAGE_CHARS:
        raise Malformed(N_("The message is too large."))
    if nested_deeper(raw, MAX_DEPTH):
        raise Malformed(N_("The message is nested too deeply."))
    try:
        data: Any = json.loads(raw)
    except ValueError as exc:
        raise Malformed(N_("The message is not valid JSON.")) from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise Malformed(N_("The message has no type."))
    if data["type"] not in TYPES:
        raise Malformed(N_("Unknown message type."), code="unknown_type")
    try:
        return MESSAGE.validate_python(data)
    except ValidationError as exc:
        raise Malformed(N_("The message is not valid.")) from exc


def nested_deeper(raw: str, limit: int) -> bool:
    """Whether ``raw`` opens more than ``limit`` arrays or objects inside one another.

    Brackets inside strings are not counted (a chat text may hold any). A message of the
    protocol opens only a few, which ``str.count`` tells at C speed; only text with more is
    walked bracket by bracket (at most about 15 ms, for 64,000 of them).
    """
    outside = _STRING.sub("", raw)
    if outside.count("[") + outside.count("{") <= limit:
        return False
    changes = map(_DEPTH_CHANGE.__getitem__, _BRACKETS.findall(outside))
    return max(accumulate(changes)) > limit
