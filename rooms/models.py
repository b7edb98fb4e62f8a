"""Tables of the live rooms: chat per channel, the mediators' private notes, and who has been in
which channel (a participant reads only the channels they are or were a member of)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from odr.models import utcnow


class ChatMessage(SQLModel, table=True):
    """One chat line, belonging to a case and one of its channels (``joint`` or a caucus)."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    channel: str = Field(max_length=40)
    author_id: int = Field(foreign_key="user.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow)


class RoomNote(SQLModel, table=True):
    """A mediator's private note, read only by the case's mediators."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    author_id: int = Field(foreign_key="user.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow)


class ChannelMembership(SQLModel, table=True):
    """That a user has been in a channel of a case, and since when (their first entry)."""

    __table_args__ = (UniqueConstraint("case_id", "channel", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    channel: str = Field(max_length=40)
    user_id: int = Field(foreign_key="user.id", index=True)
    since: datetime = Field(default_factory=utcnow)


class RoomSnapshot(SQLModel, table=True):
    """A live room's state (``Room.snapshot``) when one process serves: a restart seats everyone
    where they were, with the caucuses, countdowns and the neutrality count. With several
    processes the state lives in Redis instead (``odr.cluster``)."""

    case_id: int = Field(foreign_key="case.id", primary_key=True)
    data: str = Field(sa_column=Column(Text, nullable=False))
    saved_at: datetime = Field(default_factory=utcnow)
