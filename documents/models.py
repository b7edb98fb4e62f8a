"""Tables of agreement drafts: the draft, its stored Yjs updates, approvals and snapshots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint, text
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

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None


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


class Agreement(SQLModel, table=True):
    """The PDF of a frozen draft as it gathers signatures: one file per revision."""

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id", unique=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    text_sha256: str = Field(max_length=64)
    revision: int = 0  # 0: rendered, n: n signatures, then the seal
    file: str = Field(max_length=300)
    file_sha256: str = Field(max_length=64, index=True)
    completed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class MediationContract(SQLModel, table=True):
    """The written contract on mediation the parties and the mediator conclude before the
    procedure (documents.contract): a frozen draft signed like an agreement. It names its
    signatories; once the people of the case change before all have signed, it is void and a
    new one is prepared."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    draft_id: int = Field(foreign_key="draft.id", unique=True)
    signatories: str = Field(max_length=400)  # ",3,7,9," user ids, in the contract's order
    term_days: int
    fee: str = Field(default="", max_length=500)  # empty: free of charge
    created_at: datetime = Field(default_factory=utcnow)
    concluded_at: datetime | None = None
    void_at: datetime | None = None


class AgreementFile(SQLModel, table=True):
    """The bytes of each revision of the agreement's PDF. Kept in the database, so every host of
    the service reads the same file, and a revision is committed with the rows that name it (a
    crash between writing a file and committing cannot part them). ``Agreement.file`` is empty
    for these; agreements stored before held a path under the data folder, still read there."""

    __table_args__ = (UniqueConstraint("agreement_id", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    revision: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuthorityFile(SQLModel, table=True):
    """A file of the local signing authority's folder (``<data dir>/pki``: the key, encrypted
    with the secret key, its certificate, retired ones), shared through the database when
    several processes run, so that every host signs under, and trusts, the same authority."""

    name: str = Field(primary_key=True, max_length=200)  # the path inside the folder
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AgreementRevision(SQLModel, table=True):
    """Every file the agreement has been, so a copy downloaded at any step can be recognised."""

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    revision: int
    file_sha256: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=20)  # rendered | signature | seal
    at: datetime = Field(default_factory=utcnow)


class AgreementSignature(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agreement_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    typed_name: str = Field(max_length=200)
    method: str = Field(max_length=20)  # password | email_code
    ip: str = Field(max_length=64)
    signed_at: datetime = Field(default_factory=utcnow)
    sha256_before: str = Field(max_length=64)
    sha256_after: str = Field(max_length=64)


class SigningCode(SQLModel, table=True):
    """A one-time code sent by e-mail to confirm intent when a signatory has no password."""

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    code_hash: str = Field(max_length=64)
    expires_at: datetime
    used_at: datetime | None = None


class SigningFailure(SQLModel, table=True):
    """A wrong password or code given to sign; too many in a while lock signing for a time."""

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    at: datetime = Field(default_factory=utcnow)


class Filing(SQLModel, table=True):
    # One open filing of an agreement per court: filing again returns it, while a rejected
    # filing leaves room for a new one. The database keeps this true under concurrent requests.
    __table_args__ = (Index("uq_filing_open", "agreement_id", "court_id", unique=True,
                            sqlite_where=text("status != 'rejected'"),
                            postgresql_where=text("status != 'rejected'")),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=40, unique=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    court_id: int = Field(foreign_key="court.id", index=True)
    filed_by: int = Field(foreign_key="user.id")
    filed_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default="received", max_length=20)  # received | accepted | rejected
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    decided_by: int | None = Field(default=None, foreign_key="user.id")
    decided_at: datetime | None = None
    verification: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class WebhookDelivery(SQLModel, table=True):
    """One notice to a court's system, with its attempts (retried with backoff on failure)."""

    id: int | None = Field(default=None, primary_key=True)
    court_id: int = Field(foreign_key="court.id", index=True)
    filing_id: int = Field(foreign_key="filing.id")
    event: str = Field(max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = 0
    delivered_at: datetime | None = None
    # When the worker tries next; none once delivered or given up (after the last attempt).
    next_attempt_at: datetime | None = Field(default=None, index=True)
    gave_up_at: datetime | None = None
    last_status: int | None = None
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class CourtWebhook(SQLModel, table=True):
    """Where a court's own system hears of filings; bodies are signed with the shared secret."""

    id: int | None = Field(default=None, primary_key=True)
    court_id: int = Field(foreign_key="court.id", unique=True)
    url: str = Field(max_length=500)
    secret: str = Field(max_length=100)
