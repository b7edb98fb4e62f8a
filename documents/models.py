"""Tables of agreement drafts: the draft, its stored Yjs updates, approvals and snapshots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from odr.models import utcnow


class Draft(SQLModel, table=True):
    """A settlement agreement being written; ``members`` limits a caucus draft to its people."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    channel: str = Field(default="joint", max_length=40)
    # ",3,7," for a caucus's private draft (its members); empty for the whole case.
    members: str = Field(default="", max_length=400)
    language: str = Field(max_length=5)
    template: str = Field(max_length=40)
    title: str = Field(max_length=200)
    # Counts stored edits; approvals name the version they approve.
    version: int = 0
    frozen_at: datetime | None = None
    frozen_version: int | None = None
    frozen_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    frozen_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    frozen_sha256: str | None = Field(default=None, max_length=64)
    created_by: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class DraftUpdate(SQLModel, table=True):
    """One Yjs update exactly as a client sent it, stored before anyone else sees it."""

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    author_id: int | None = None
    at: datetime = Field(default_factory=utcnow)


class DraftApproval(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("draft_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    version: int
    at: datetime = Field(default_factory=utcnow)


class DraftSnapshot(SQLModel, table=True):
    """The draft's text at a version worth keeping (created, approved, frozen)."""

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    version: int
    reason: str = Field(max_length=20)
    text: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow)
