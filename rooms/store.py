"""What the rooms keep in the database: chat, notes, channel membership, and (one process)
the rooms' state.

Every read takes the reader: chat comes only from channels they are or were a member of (from
their first entry on), notes only to the case's mediators.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.models import User, utcnow
from rooms.models import ChannelMembership, ChatMessage, RoomNote, RoomSnapshot

HISTORY_LIMIT = 200


async def enter_channel(case_id: int, channel: str, user_id: int, *,
                        session: AsyncSession) -> None:
    """Remember that the user has been in the channel (the first entry only)."""
    exists = (await session.exec(select(ChannelMembership).where(
        ChannelMembership.case_id == case_id, ChannelMembership.channel == channel,
        ChannelMembership.user_id == user_id))).first()
    if exists is not None:
        return
    try:
        async with session.begin_nested():
            session.add(ChannelMembership(case_id=case_id, channel=channel, user_id=user_id))
    except IntegrityError:
        pass  # another connection of the same user recorded it first


async def membership(case_id: int, channel: str, user_id: int, *,
                     session: AsyncSession) -> ChannelMembership | None:
    return (await session.exec(select(ChannelMembership).where(
        ChannelMembership.case_id == case_id, ChannelMembership.channel == channel,
        ChannelMembership.user_id == user_id))).first()


async def add_chat(case_id: int, channel: str, author_id: int, text: str, *,
                   session: AsyncSession) -> ChatMessage:
    message = ChatMessage(case_id=case_id, channel=channel, author_id=author_id, text=text)
    session.add(message)
    await session.flush()
    return message


async def chat_history(case_id: int, channel: str, reader_id: int, *,
                       session: AsyncSession) -> Sequence[tuple[ChatMessage, str]] | None:
    """The channel's latest messages with their authors' names, or None if the reader was
    never a member of it."""
    member = await membership(case_id, channel, reader_id, session=session)
    if member is None:
        return None
    rows = (await session.exec(
        select(ChatMessage, User.name)
        .join(User, col(User.id) == col(ChatMessage.author_id))
        .where(ChatMessage.case_id == case_id, ChatMessage.channel == channel,
               col(ChatMessage.at) >= member.since)
        .order_by(col(ChatMessage.id).desc()).limit(HISTORY_LIMIT)
    )).all()
    return list(reversed(rows))


async def add_note(case_id: int, author_id: int, text: str, *,
                   session: AsyncSession) -> RoomNote:
    note = RoomNote(case_id=case_id, author_id=author_id, text=text)
    session.add(note)
    await session.flush()
    return note


async def notes(case_id: int, *, session: AsyncSession) -> Sequence[tuple[RoomNote, str]]:
    """The mediators' notes of the case, oldest first (the caller checked the reader)."""
    rows = (await session.exec(
        select(RoomNote, User.name)
        .join(User, col(User.id) == col(RoomNote.author_id))
        .where(RoomNote.case_id == case_id)
        .order_by(col(RoomNote.id).desc()).limit(HISTORY_LIMIT)
    )).all()
    return list(reversed(rows))


def chat_json(message: ChatMessage, name: str) -> dict[str, Any]:
    return {"type": "chat", "channel": message.channel, "from": message.author_id,
            "name": name, "text": message.text, "at": message.at.isoformat()}


def note_json(note: RoomNote, name: str) -> dict[str, Any]:
    return {"type": "note", "from": note.author_id, "name": name, "text": note.text,
            "at": note.at.isoformat()}


async def save_snapshot(case_id: int, data: str, *, session: AsyncSession) -> None:
    row = await session.get(RoomSnapshot, case_id)
    if row is None:
        row = RoomSnapshot(case_id=case_id, data=data)
    row.data, row.saved_at = data, utcnow()
    session.add(row)


async def load_snapshot(case_id: int, newer_than: datetime, *,
                        session: AsyncSession) -> str | None:
    row = await session.get(RoomSnapshot, case_id)
    return row.data if row is not None and row.saved_at > newer_than else None


async def forget_snapshot(case_id: int, *, session: AsyncSession) -> None:
    row = await session.get(RoomSnapshot, case_id)
    if row is not None:
        await session.delete(row)
