"""Tables of the service core. Times are aware UTC datetimes (SQLModel's UTCDateTime)."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class AccountRole(enum.StrEnum):
    """What an account is on the platform; roles within a case are ``CaseRole``."""

    party = "party"
    mediator = "mediator"
    court_clerk = "court_clerk"
    administrator = "administrator"


class CaseRole(enum.StrEnum):
    party = "party"
    representative = "representative"
    mediator = "mediator"
    co_mediator = "co_mediator"
    interpreter = "interpreter"
    observer = "observer"


class Side(enum.StrEnum):
    a = "a"
    b = "b"


class GrammaticalGender(enum.StrEnum):
    """How Russian texts speak of a person (its past tense has a gender: подал, подала); the
    person says it in their settings, nothing guesses it from a name."""

    masculine = "masculine"
    feminine = "feminine"
    unspecified = "unspecified"


class CaseStatus(enum.StrEnum):
    requested = "requested"
    accepted = "accepted"
    consented = "consented"
    in_session = "in_session"
    agreement_drafted = "agreement_drafted"
    signed = "signed"
    filed = "filed"
    court_accepted = "court_accepted"
    court_rejected = "court_rejected"
    declined = "declined"
    withdrawn = "withdrawn"
    no_agreement = "no_agreement"


class Outcome(enum.StrEnum):
    """How the mediator closed a case (odr.closing)."""

    full_agreement = "full_agreement"
    partial_agreement = "partial_agreement"
    no_agreement = "no_agreement"
    withdrawn = "withdrawn"
    term_expired = "term_expired"


class CloseReason(enum.StrEnum):
    """Why, in a word the centre's statistics can count."""

    settled = "settled"
    settled_in_part = "settled_in_part"
    positions_apart = "positions_apart"
    party_stopped = "party_stopped"
    not_suitable = "not_suitable"
    referred_to_court = "referred_to_court"
    party_withdrew = "party_withdrew"
    term_ran_out = "term_ran_out"
    other = "other"


class Category(enum.StrEnum):
    family = "family"
    labour = "labour"
    property = "property"
    consumer = "consumer"
    community = "community"
    local_authority = "local_authority"
    other = "other"


class MediatorKind(enum.StrEnum):
    professional = "professional"
    public = "public"
    court = "court"


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=254)
    name: str = Field(max_length=200)
    password_hash: str | None = Field(default=None, max_length=300)
    role: AccountRole = Field(default=AccountRole.party)
    language: str | None = Field(default=None, max_length=5)
    timezone: str = Field(default="Asia/Almaty", max_length=64)
    phone: str | None = Field(default=None, max_length=40)
    court_id: int | None = Field(default=None, foreign_key="court.id")
    grammatical_gender: GrammaticalGender = Field(
        default=GrammaticalGender.unspecified,
        sa_column_kwargs={"server_default": GrammaticalGender.unspecified.value})
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class AuthSession(SQLModel, table=True):
    """A signed-in browser; the cookie holds the token, the table only its SHA-256."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    ip: str | None = Field(default=None, max_length=64)


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None


class LoginFailure(SQLModel, table=True):
    """One failed sign-in; counted per account and per address within a window."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, max_length=254)
    ip: str = Field(index=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, index=True)


class LinkPurpose(enum.StrEnum):
    """Why a mail went to an address (``signup_notice`` carries no link)."""

    password_reset = "password_reset"
    signup = "signup"
    signup_notice = "signup_notice"


class EmailLink(SQLModel, table=True):
    """A mail the platform sent to an address on an anonymous request, with its one-time link.

    Every request is kept, also those that sent nothing (unknown address, over the limit), so
    the hourly limits count attempts per address and per client IP alike. A pending sign-up
    keeps the chosen name and password hash here until its address is confirmed: only then is
    there a ``User``.
    """

    id: int | None = Field(default=None, primary_key=True)
    purpose: LinkPurpose
    email: str = Field(index=True, max_length=254)
    ip: str = Field(index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id")
    token_hash: str | None = Field(default=None, index=True, unique=True, max_length=64)
    expires_at: datetime | None = None
    used_at: datetime | None = None
    # A pending sign-up only.
    name: str = Field(default="", max_length=200)
    password_hash: str | None = Field(default=None, max_length=300)
    language: str | None = Field(default=None, max_length=5)
    timezone: str | None = Field(default=None, max_length=64)


class Court(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=300)
    region: str = Field(max_length=40)
    address: str = Field(default="", max_length=300)
    active: bool = True


class OrganisationKind(enum.StrEnum):
    centre = "centre"
    chamber = "chamber"
    court_office = "court_office"
    public_council = "public_council"
    assembly = "assembly"


class Organisation(SQLModel, table=True):
    """A mediation centre, a chamber of mediators, a court's conciliation office, a council of
    public consent at an akimat, or the Assembly of People's public mediators (odr.organisations).
    The kind is kept as text so that a new kind needs no database change."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=300)
    kind: str = Field(max_length=30)
    region: str = Field(max_length=40)
    active: bool = True


class OrganisationMember(SQLModel, table=True):
    """A mediator of an organisation, or one of its coordinators (who assign its requests and
    see its cases' metadata, never their content)."""

    __table_args__ = (UniqueConstraint("organisation_id", "user_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    role: str = Field(max_length=20)  # mediator | coordinator


class MediatorProfile(SQLModel, table=True):
    """An entry of the public register; lists are kept as ``,a,b,`` so LIKE finds them anywhere."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", unique=True)
    kind: MediatorKind
    certificate: str = Field(default="", max_length=100)
    certified_on: date | None = None
    languages: str = Field(default=",", max_length=100)
    regions: str = Field(default=",", max_length=400)
    specialisations: str = Field(default=",", max_length=400)
    bio: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    active: bool = True


# Every column the statistics read (odr.statistics), after the request time they filter on:
# the database answers them from this index alone, without visiting the wide case rows.
STATISTICS_COLUMNS = (
    "created_at", "category", "region", "district", "language", "status", "outcome",
    "accepted_at", "first_session_at", "closed_at", "chosen_mediator_id", "organisation_id",
    "sessions_held", "side_a_seconds", "side_b_seconds", "feedback_answers", "feedback_neutral",
    "feedback_clear")


class Case(SQLModel, table=True):
    __table_args__ = (Index("ix_case_statistics", *STATISTICS_COLUMNS),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, unique=True, max_length=32)
    category: Category
    summary: str = Field(sa_column=Column(Text, nullable=False))
    language: str = Field(max_length=5)
    region: str = Field(max_length=40)
    # The district or town within the region, as the requester wrote it (optional): the early
    # warning counts by it where it is given (odr.early_warning).
    district: str = Field(default="", max_length=80, sa_column_kwargs={"server_default": ""})
    status: CaseStatus = Field(default=CaseStatus.requested, index=True)
    requester_id: int = Field(foreign_key="user.id")
    chosen_mediator_id: int | None = Field(default=None, foreign_key="user.id")
    # A request addressed to an organisation: its coordinators choose the mediator.
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    other_party_name: str = Field(max_length=200)
    other_party_contact: str = Field(max_length=254)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    # When a mediator took the case and when its first session began: the statistics count
    # the days from the request to each (odr.statistics).
    accepted_at: datetime | None = None
    first_session_at: datetime | None = None
    # Running sums of the case's neutrality records and feedback answers, kept with each row
    # added there (odr.neutrality.keep, odr.closing): the statistics then read one table.
    sessions_held: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    side_a_seconds: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    side_b_seconds: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    feedback_answers: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    feedback_neutral: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    feedback_clear: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The term of mediation (odr.terms): it runs from the mediation contract's conclusion.
    # Past its end no session opens until the mediator extends it or closes the case.
    term_ends_at: datetime | None = Field(default=None, index=True)
    term_extended_days: int = 0
    # Each notice about the term is sent once, by whichever process claims it first.
    term_reminded_at: datetime | None = None
    term_expired_at: datetime | None = None
    # Closed by the mediator with an outcome (odr.closing); the status says where it ended.
    outcome: Outcome | None = Field(default=None, index=True)
    close_reason: CloseReason | None = None
    closed_at: datetime | None = None


class Participant(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("case_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    role: CaseRole
    side: Side | None = None
    consented_at: datetime | None = None
    joined_at: datetime = Field(default_factory=utcnow)
    # Removed by the mediator: the row stays (the timeline and signatures refer to it), and the
    # policy treats the person as an outsider from then on.
    removed_at: datetime | None = None
    removed_reason: str = Field(default="", max_length=500)


class CaseEvent(SQLModel, table=True):
    """One line of a case's timeline, which every participant sees."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    kind: str = Field(max_length=40)
    status: CaseStatus | None = None
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class Invitation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    email: str = Field(max_length=254)
    name: str = Field(default="", max_length=200)
    role: CaseRole
    side: Side | None = None
    token_hash: str = Field(index=True, unique=True, max_length=64)
    invited_by: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    accepted_at: datetime | None = None
    accepted_by: int | None = Field(default=None, foreign_key="user.id")
    revoked_at: datetime | None = None


class ScheduledSession(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    starts_at: datetime
    duration_minutes: int = 60
    note: str = Field(default="", max_length=500)
    created_by: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class SessionReminder(SQLModel, table=True):
    """One reminder of a scheduled session (odr.reminders): at booking, a day or an hour
    before; ``sent_at`` is set by whoever claims it, once."""

    __table_args__ = (UniqueConstraint("session_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="scheduledsession.id")
    kind: str = Field(max_length=10)  # booked | day | hour
    due_at: datetime = Field(index=True)
    sent_at: datetime | None = None


class OutboxMail(SQLModel, table=True):
    """Every message the platform sends; the administrator reads them here when SMTP is absent."""

    id: int | None = Field(default=None, primary_key=True)
    to: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    # An iCalendar file sent with it (a session's reminder), or empty.
    calendar: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    error: str = Field(default="", max_length=500)


class AuditEntry(SQLModel, table=True):
    """Append-only and hash-chained: ``hash = sha256(prev_hash + canonical fields)``."""

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    at: datetime = Field(default_factory=utcnow)
    actor_id: int | None = None
    action: str = Field(max_length=60)
    case_id: int | None = Field(default=None, index=True)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The newest entry of the audit log, sealed with the secret key.

    The chain alone cannot show that its newest entries were cut off; this row can, and without
    the key (kept outside the database) it cannot be moved back to match a shortened log.
    """

    id: int | None = Field(default=None, primary_key=True)
    seq: int
    hash: str = Field(max_length=64)
    mac: str = Field(max_length=64)


class FeedbackRequest(SQLModel, table=True):
    """A party asked for feedback on a closed case; ``answered`` says they gave it. Which
    answer is theirs is recorded nowhere (``Feedback`` has no user), so answers stay
    anonymous while each party answers once."""

    __table_args__ = (UniqueConstraint("case_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    answered: bool = False


class Feedback(SQLModel, table=True):
    """One party's anonymous answer about a closed case, for its mediator and the centre. Only
    the day is kept, not the moment, so the time of an answer does not point to who gave it."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    mediator_id: int = Field(foreign_key="user.id", index=True)
    neutral: int  # 1 (not at all) .. 5 (fully): was the mediator neutral
    clear: int  # 1 .. 5: was the process clear
    again: str = Field(max_length=10)  # yes | maybe | no: would use mediation again
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    on: date


class NeutralityRecord(SQLModel, table=True):
    """One session's neutrality record (odr.neutrality): the mediator's seconds in the joint
    session, in separate meetings with side A's people, with side B's, and in other ones."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    started_at: datetime
    ended_at: datetime
    joint_seconds: int = 0
    side_a_seconds: int = 0
    side_b_seconds: int = 0
    other_seconds: int = 0


class WarningSubscription(SQLModel, table=True):
    """A coordinator or administrator who gets the weekly early warning by e-mail."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class WarningRun(SQLModel, table=True):
    """One weekly early-warning run; the unique week lets one process claim it."""

    id: int | None = Field(default=None, primary_key=True)
    week: str = Field(max_length=10, unique=True)  # ISO week, e.g. 2026-W49
    ran_at: datetime = Field(default_factory=utcnow)
    flags: int = 0
