"""Request and response shapes of the API, shared by the HTML forms (same validation)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from odr.errors import N_
from odr.i18n import LANGUAGES
from odr.models import (
    AccountRole,
    CaseRole,
    CaseStatus,
    Category,
    CloseReason,
    GrammaticalGender,
    MediatorKind,
    OrganisationKind,
    Outcome,
    Side,
)
from odr.vocab import REGION_LABELS

# Row ids fit PostgreSQL's INTEGER; a larger number is refused as invalid rather than overflowing.
MAX_ID = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
# Closed lists are enums in the schema (clients can offer them), checked here with the
# messages users know ("Choose a region from the list.").
Language = Annotated[str, Field(pattern="^(kk|ru|en)$", json_schema_extra={"enum": [*LANGUAGES]})]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200)]
Password = Annotated[str, Field(min_length=8, max_length=200)]


class Input(BaseModel):
    """What clients send; text with NUL characters is refused (PostgreSQL cannot store it)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in items):
            raise ValueError(N_("This text contains characters that are not allowed."))
        return value


def _known_region(value: str) -> str:
    if value not in REGION_LABELS:
        raise ValueError(N_("Choose a region from the list."))
    return value


Region = Annotated[str, AfterValidator(_known_region),
                   Field(json_schema_extra={"enum": [*REGION_LABELS]})]


def _district(value: str) -> str:
    return " ".join(word[:1].upper() + word[1:].lower() for word in value.split())


# A district or town as written, in one form (spaces collapsed, each word capitalised), so
# that the early warning counts "жамбылский район" and "Жамбылский  район" as one place.
District = Annotated[str, StringConstraints(max_length=80), AfterValidator(_district)]


class Registration(Input):
    email: EmailStr
    name: Name
    password: Password
    language: Language | None = None
    # The browser's zone, sent by the sign-up page's script; unknown zones are ignored.
    timezone: Annotated[str, Field(max_length=64)] | None = None


class PasswordResetRequest(Input):
    email: EmailStr


class NewPassword(Input):
    password: Password


class PasswordResetConfirm(NewPassword):
    token: Annotated[str, Field(min_length=1, max_length=200)]


class SignupConfirm(Input):
    token: Annotated[str, Field(min_length=1, max_length=200)]


class Notice(BaseModel):
    """An answer that says only what happens next (e.g. "check your e-mail")."""

    detail: str


class Login(Input):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class ProfileUpdate(Input):
    name: Name | None = None
    language: Language | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    grammatical_gender: GrammaticalGender | None = None


class TokenCreate(Input):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: AccountRole
    language: Language | None
    timezone: str
    court_id: int | None
    grammatical_gender: GrammaticalGender


class CaseCreate(Input):
    category: Category
    summary: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=10, max_length=5000)
    ]
    other_party_name: Name
    other_party_contact: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)
    ]
    language: Language
    region: Region
    district: District = ""
    mediator_id: RowId | None = None
    # Or an organisation, whose coordinators choose the mediator.
    organisation_id: RowId | None = None


class ParticipantPublic(BaseModel):
    user_id: int
    name: str
    role: CaseRole
    side: Side | None
    consented: bool


class CasePublic(BaseModel):
    id: int
    number: str
    category: Category
    summary: str
    language: Language
    region: Region
    district: str = ""
    status: CaseStatus
    requester_id: int
    chosen_mediator_id: int | None
    other_party_name: str
    created_at: datetime
    participants: list[ParticipantPublic]
    # The term of mediation's end (from the mediation contract's conclusion), and how the
    # mediator closed the case.
    term_ends_at: datetime | None = None
    outcome: Outcome | None = None
    close_reason: CloseReason | None = None
    closed_at: datetime | None = None


class CaseEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: int | None
    kind: str
    status: CaseStatus | None
    detail: str


class CaseClose(Input):
    outcome: Outcome
    reason: CloseReason
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class FeedbackIn(Input):
    """A party's answer on a closed case: was the mediator neutral, was the process clear
    (1: not at all .. 5: fully), would they use mediation again, and a comment."""

    neutral: Annotated[int, Field(ge=1, le=5)]
    clear: Annotated[int, Field(ge=1, le=5)]
    again: Literal["yes", "maybe", "no"]
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class FeedbackSummaryPublic(BaseModel):
    answers: int
    neutral: float | None
    clear: float | None
    again_yes: int
    again_maybe: int
    again_no: int
    comments: list[str]


class StatusChange(Input):
    status: CaseStatus
    reason: Annotated[str, Field(max_length=1000)] = ""


class InvitationCreate(Input):
    email: EmailStr
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    role: CaseRole
    side: Side | None = None


class InvitationCreated(BaseModel):
    id: int
    email: str
    role: CaseRole
    side: Side | None
    link: str
    expires_at: datetime
    mailed: bool


class InvitationPublic(BaseModel):
    """An invitation as its case's mediator sees it (the link is shown only when made)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: CaseRole
    side: Side | None
    expires_at: datetime
    revoked_at: datetime | None


class ParticipantRemoval(Input):
    """Why the mediator removes someone; the timeline shows it to everyone in the case."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=500)]


class InvitationAccept(Input):
    """Sent without a session: creates the invited person's account."""

    name: Name | None = None
    password: Password | None = None


class SessionCreate(Input):
    starts_at: datetime
    duration_minutes: Annotated[int, Field(ge=15, le=480)] = 60
    note: Annotated[str, Field(max_length=500)] = ""


class SessionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    starts_at: datetime
    duration_minutes: int
    note: str


class MediatorProfileIn(Input):
    kind: MediatorKind
    certificate: Annotated[str, Field(max_length=100)] = ""
    certified_on: date | None = None
    languages: list[Language] = []
    regions: list[Region] = []
    specialisations: list[Category] = []
    bio: Annotated[str, Field(max_length=3000)] = ""
    active: bool = True


class OrganisationIn(Input):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]
    kind: OrganisationKind
    region: Region
    active: bool = True


class OrganisationPublic(BaseModel):
    id: int
    name: str
    kind: OrganisationKind
    region: str
    active: bool


class MemberIn(Input):
    role: Literal["mediator", "coordinator"]


class Suggestion(BaseModel):
    """A mediator of the organisation for a request: how well they fit it, and their load."""

    user_id: int
    name: str
    fits_category: bool
    speaks_language: bool
    serves_region: bool
    open_cases: int


class RequestMetadata(BaseModel):
    """What a coordinator sees of a case: never its description, drafts, chat or documents."""

    id: int
    number: str
    category: Category
    language: str
    region: str
    district: str = ""
    status: CaseStatus
    created_at: datetime
    mediator: str | None
    suggestions: list[Suggestion] = []


class FlagPublic(BaseModel):
    """An early warning (odr.early_warning): this week's count against the previous twelve
    weeks' mean and spread in the same category and region; ``series`` is oldest first."""

    category: Category
    region: str
    district: str = ""
    week_start: datetime
    count: int
    mean: float
    spread: float
    threshold: float
    series: list[int]


class StatisticsRowPublic(BaseModel):
    """One group's figures (odr.statistics); a hidden cell is null and listed in ``hidden``."""

    key: str | None
    label: str
    values: dict[str, float | None]
    hidden: list[str]


class StatisticsPublic(BaseModel):
    """The figures of the cases requested from ``start`` to ``end`` (both days included),
    per group of ``by``. ``exact`` is false where small cells are hidden."""

    by: str
    start: date
    end: date
    exact: bool
    columns: list[str]
    rows: list[StatisticsRowPublic]
    total: StatisticsRowPublic


class SubscriptionIn(Input):
    subscribed: bool


class SubscriptionPublic(BaseModel):
    subscribed: bool


class AssignIn(Input):
    mediator_id: RowId


class MediatorPublic(BaseModel):
    user_id: int
    name: str
    kind: MediatorKind
    certificate: str
    certified_on: date | None
    languages: list[Language]
    regions: list[Region]
    specialisations: list[Category]
    bio: str
    organisations: list[str] = []


class CourtIn(Input):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]
    region: Region
    address: Annotated[str, Field(max_length=300)] = ""
    active: bool = True


class CourtPublic(CourtIn):
    model_config = ConfigDict(from_attributes=True)

    id: int


class AuditReport(BaseModel):
    entries: int
    intact: bool
    problems: list[str]


class TermPublic(BaseModel):
    """The term of mediation as the case page and the API show it (odr.terms)."""

    ends_at: datetime
    days_left: int  # whole days, rounded up; 0 once it has ended
    expired: bool
    extended_days: int
    extension_left: int
