"""API shapes of agreement drafts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from odr.schemas import Input, Language, RowId


class DraftCreate(Input):
    language: Language
    template: Literal["default"] = "default"
    # A caucus's private draft: the people who may open it (the mediators always may).
    members: Annotated[list[RowId], Field(max_length=20)] = []
    channel: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")] = "joint"


class ApprovalPublic(BaseModel):
    user_id: int
    name: str
    version: int
    at: datetime


class PartyApproval(BaseModel):
    user_id: int
    name: str
    approved_current: bool


class DraftPublic(BaseModel):
    id: int
    case_id: int
    channel: str
    members: list[int]
    language: str
    template: str
    title: str
    version: int
    frozen: bool
    frozen_sha256: str | None
    html: str
    text: str
    approvals: list[ApprovalPublic]
    parties: list[PartyApproval]


class FreezeResult(BaseModel):
    sha256: str
    version: int


class VersionPublic(BaseModel):
    version: int
    at: datetime
    reason: str


class DiffLine(BaseModel):
    op: Literal["equal", "insert", "delete"]
    text: str


class DiffPublic(BaseModel):
    from_version: int = Field(serialization_alias="from")
    to_version: int = Field(serialization_alias="to")
    lines: list[DiffLine]
