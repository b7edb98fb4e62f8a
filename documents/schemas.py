"""API shapes of agreement drafts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from odr.models import CaseRole
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
    language: Language
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


class SignRequest(Input):
    """Intent: the signatory's password (or an e-mailed code) and their full name typed out."""

    full_name: Annotated[str, Field(min_length=2, max_length=200)]
    password: Annotated[str, Field(max_length=200)] | None = None
    code: Annotated[str, Field(max_length=12)] | None = None


class SignatoryPublic(BaseModel):
    user_id: int
    name: str
    role: CaseRole
    signed_at: datetime | None


class AgreementPublic(BaseModel):
    id: int
    draft_id: int
    case_id: int
    revision: int
    text_sha256: str
    file_sha256: str
    complete: bool
    pdf_url: str
    signatories: list[SignatoryPublic]


class FilingCreate(Input):
    court_id: RowId


class FilingDecision(Input):
    reason: Annotated[str, Field(max_length=2000)] = ""


class FilingPublic(BaseModel):
    id: int
    number: str
    case_id: int
    case_number: str
    court_id: int
    agreement_id: int
    filed_at: datetime
    status: Literal["received", "accepted", "rejected"]
    reason: str
    decided_at: datetime | None
    pdf_url: str
    verification: dict[str, object]


class WebhookIn(Input):
    url: Annotated[str, Field(pattern=r"^https?://", max_length=500)]


class WebhookPublic(BaseModel):
    url: str
    secret: str


class ContractTerms(Input):
    """The mediator's terms for the contract, before anyone signs: the fee as it is to be
    printed (empty: free of charge; a public mediator's is always free) and the term in days
    (at most the law's, ``mediation_term_days``)."""

    fee: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    term_days: Annotated[int, Field(ge=1, le=366)]


class ContractPublic(BaseModel):
    """The case's mediation contract: who has signed, and where to read and sign it."""

    id: int
    case_id: int
    draft_id: int
    language: str
    fee: str
    term_days: int
    concluded_at: datetime | None
    sign_url: str
    # The PDF once someone has opened it to sign (it is rendered then).
    pdf_url: str | None
    signatories: list[SignatoryPublic]


class TermExtension(Input):
    days: Annotated[int, Field(ge=1, le=366)]
    # The law lets the term be extended with the parties' agreement: the mediator confirms it.
    parties_agreed: bool = False
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""

