"""The one access policy: every "may this user do this to this case" is answered here.

Routes reach it through dependencies (``odr.deps``); the room and draft WebSockets ask it before
they accept. A refusal says why, in a message the edge translates. Someone with no business in a
case is told it does not exist (404), so case numbers reveal nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from odr.errors import N_, Conflict, Forbidden, NotFound, Refused, Unauthenticated
from odr.models import AccountRole, Case, CaseRole, CaseStatus, Participant, User, utcnow


class Action(enum.StrEnum):
    view_case = "view_case"
    invite = "invite"
    accept_case = "accept_case"
    decline_case = "decline_case"
    consent = "consent"
    withdraw = "withdraw"
    schedule_session = "schedule_session"
    join_session = "join_session"
    start_session = "start_session"
    end_without_agreement = "end_without_agreement"
    revoke_invitation = "revoke_invitation"
    remove_participant = "remove_participant"
    set_contract_terms = "set_contract_terms"
    extend_term = "extend_term"
    close_case = "close_case"


class GlobalAction(enum.StrEnum):
    request_mediation = "request_mediation"
    list_open_requests = "list_open_requests"
    manage_register = "manage_register"
    read_outbox = "read_outbox"
    verify_audit = "verify_audit"


MEDIATORS = frozenset({CaseRole.mediator, CaseRole.co_mediator})
FINAL = frozenset(
    {
        CaseStatus.declined,
        CaseStatus.withdrawn,
        CaseStatus.no_agreement,
        CaseStatus.court_accepted,
        CaseStatus.court_rejected,
    }
)
BEFORE_CONSENT = frozenset({CaseStatus.requested, CaseStatus.accepted})
SESSION_STATES = frozenset(
    {CaseStatus.consented, CaseStatus.in_session, CaseStatus.agreement_drafted}
)
# A party may withdraw until the agreement is signed; after that the signature binds.
WITHDRAWABLE = BEFORE_CONSENT | SESSION_STATES


@dataclass(frozen=True)
class Subject:
    """Who asks, and what they are in the case (``participant`` is None for outsiders)."""

    user: User | None
    participant: Participant | None = None

    @property
    def case_role(self) -> CaseRole | None:
        # Someone the mediator removed is an outsider again: every check refuses them as one.
        participant = self.participant
        return participant.role if participant and participant.removed_at is None else None


def is_candidate_mediator(user: User | None, case: Case, has_profile: bool) -> bool:
    """A registered mediator who may take a requested case: the chosen one, or any if none was."""
    return (
        user is not None
        and user.role == AccountRole.mediator
        and has_profile
        and case.status == CaseStatus.requested
        and (case.chosen_mediator_id == user.id
             # Addressed to an organisation: only the mediator its coordinators chose.
             or (case.chosen_mediator_id is None and case.organisation_id is None))
    )


def check(
    action: Action,
    subject: Subject,
    case: Case,
    *,
    registered_mediator: bool = False,
) -> None:
    """Raise ``Refused`` unless ``subject`` may do ``action`` to ``case`` now.

    ``registered_mediator`` tells whether the user has an active profile in the register, which
    lets a mediator see and take a requested case that nobody has taken yet.
    """
    user, role = subject.user, subject.case_role
    if user is None:
        raise Unauthenticated(N_("Please sign in first."))
    candidate = is_candidate_mediator(user, case, registered_mediator)
    if role is None and not (candidate and action in (Action.view_case, Action.accept_case,
                                                       Action.decline_case)):
        raise NotFound(N_("No such case."))

    status = case.status
    if action is Action.view_case:
        return
    if action is Action.accept_case:
        _when(role not in MEDIATORS, N_("The case already has its mediator."))
        _require(candidate, N_("Only a registered mediator can take this case."))
        return
    if action is Action.decline_case:
        if candidate and case.chosen_mediator_id == user.id:
            return
        _require(role == CaseRole.party, N_("Only a party or the chosen mediator can decline."))
        _when(status in BEFORE_CONSENT, N_("Mediation can only be declined before it starts."))
        return
    if action is Action.consent:
        _require(role == CaseRole.party, N_("Only a party can consent to mediation."))
        # Before the sessions, parties consent by signing the mediation contract; a party
        # invited after it was concluded consents on joining.
        _when(status in BEFORE_CONSENT | SESSION_STATES,
              N_("Consent can no longer be given: the mediation has ended."))
        _when(status in SESSION_STATES,
              N_("Consent by signing the mediation contract on the case page."))
        _when(
            subject.participant is not None and subject.participant.consented_at is None,
            N_("You have already consented."),
        )
        return
    if action is Action.withdraw:
        _require(role == CaseRole.party, N_("Only a party can withdraw from mediation."))
        _when(status in WITHDRAWABLE, N_("The case can no longer be withdrawn."))
        return
    if action is Action.invite:
        requester = role == CaseRole.party and case.requester_id == user.id
        _require(role in MEDIATORS or requester,
                 N_("Only the mediator or the requesting party can invite."))
        _when(status not in FINAL, N_("The case is closed."))
        _when(role in MEDIATORS or status in BEFORE_CONSENT | {CaseStatus.consented},
              N_("Once sessions have begun, only the mediator can invite."))
        return
    if action is Action.schedule_session:
        _require(role in MEDIATORS, N_("Only the mediator can schedule sessions."))
        _when(status in {CaseStatus.accepted} | SESSION_STATES,
              N_("Sessions can be scheduled once a mediator has taken the case."))
        _when_term_runs(case)
        return
    if action is Action.join_session:
        _when(status in SESSION_STATES,
              N_("The session opens once everyone has signed the mediation contract."))
        _when_term_runs(case)
        # Mediation is voluntary: a party who joined late takes part only after consenting.
        _when(role != CaseRole.party or subject.participant is None
              or subject.participant.consented_at is not None,
              N_("Consent to mediation first; then you can join the session."))
        return
    if action is Action.start_session:
        _require(role in MEDIATORS, N_("Only the mediator can start the session."))
        _when(status == CaseStatus.consented, N_("The session cannot be started now."))
        _when_term_runs(case)
        return
    if action is Action.end_without_agreement:
        _require(role in MEDIATORS, N_("Only the mediator can end the mediation."))
        _when(status in SESSION_STATES, N_("The mediation cannot be ended now."))
        return
    if action is Action.revoke_invitation:
        _require(role in MEDIATORS, N_("Only the mediator can revoke an invitation."))
        _when(status not in FINAL, N_("The case is closed."))
        return
    if action is Action.remove_participant:
        _require(role in MEDIATORS, N_("Only the mediator can remove a participant."))
        # Once signed, the agreement binds the people who signed it; the set stays as it is.
        _when(status in WITHDRAWABLE, N_("Participants can no longer be removed."))
        return
    if action is Action.set_contract_terms:
        _require(role == CaseRole.mediator, N_("Only the mediator can set the contract's terms."))
        _when(status == CaseStatus.accepted,
              N_("The contract's terms cannot change once the mediation has begun."))
        return
    if action is Action.extend_term:
        _require(role == CaseRole.mediator, N_("Only the mediator can extend the term."))
        _when(status in SESSION_STATES and case.term_ends_at is not None,
              N_("The term can be extended while the mediation runs."))
        return
    if action is Action.close_case:
        _require(role == CaseRole.mediator, N_("Only the mediator can close the case."))
        _when(case.closed_at is None
              and status not in {CaseStatus.requested, CaseStatus.declined},
              N_("The case cannot be closed now."))
        return
    raise AssertionError(f"unhandled action {action}")  # pragma: no cover


def term_expired(case: Case, now: datetime | None = None) -> bool:
    """The term of mediation has run out (odr.terms), and it was not extended."""
    return case.term_ends_at is not None and case.term_ends_at <= (now or utcnow())


def _when_term_runs(case: Case) -> None:
    # The law bounds mediation in time: past its term no session takes place until the
    # mediator extends it with the parties' agreement or closes the case.
    _when(not term_expired(case), N_("The term of mediation has expired. The mediator can "
                                     "extend it with the parties' agreement, or close the "
                                     "case."))


def check_removal(subject: Subject, case: Case, target: Participant) -> None:
    """Raise ``Refused`` unless ``subject`` may remove ``target`` from ``case`` now.

    Mediators remove others, never themselves (they leave the case another way), and a
    co-mediator does not remove the mediator who holds the case.
    """
    check(Action.remove_participant, subject, case)
    if target.case_id != case.id or target.removed_at is not None:
        raise NotFound(N_("This person does not take part in the case."))
    _require(subject.user is None or target.user_id != subject.user.id,
             N_("You cannot remove yourself from the case."))
    _require(target.role != CaseRole.mediator or subject.case_role == CaseRole.mediator,
             N_("Only the mediator can remove a participant."))


def may_remove(subject: Subject, case: Case, target: Participant) -> bool:
    try:
        check_removal(subject, case, target)
    except Refused:
        return False
    return True


class DraftAction(enum.StrEnum):
    create_draft = "create_draft"
    view_draft = "view_draft"
    edit_draft = "edit_draft"
    approve_draft = "approve_draft"
    freeze_draft = "freeze_draft"


WRITERS = frozenset({CaseRole.party, CaseRole.representative, CaseRole.mediator,
                     CaseRole.co_mediator})


@dataclass(frozen=True)
class DraftScope:
    """What the policy needs to know about a draft: who may open it, and whether it is frozen."""

    members: frozenset[int]  # empty: everyone in the case; else a caucus's private draft
    frozen: bool


def check_draft(
    action: DraftAction, subject: Subject, case: Case, draft: DraftScope | None
) -> None:
    """Raise ``Refused`` unless ``subject`` may do ``action`` to the case's draft now.

    A caucus draft is visible to its members and the mediators only; observers and
    interpreters read but never write; a frozen draft takes no writes from anyone.
    """
    user, role = _member(subject)
    if action is DraftAction.create_draft:
        _require(role in MEDIATORS, N_("Only the mediator can start a draft."))
        _when(case.status in SESSION_STATES,
              N_("A draft can be started once every party has consented to mediation."))
        return
    assert draft is not None
    if draft.members and user.id not in draft.members and role not in MEDIATORS:
        raise NotFound(N_("No such draft."))
    if action is DraftAction.view_draft:
        return
    if action is DraftAction.edit_draft:
        _require(role in WRITERS, N_("You can read this draft but not change it."))
        _when(not draft.frozen, N_("The draft is frozen for signature; it can no longer change."))
        _when(case.status in SESSION_STATES, N_("The draft can no longer change."))
        return
    if action is DraftAction.approve_draft:
        _require(role == CaseRole.party, N_("Only a party can approve the draft."))
        _when(not draft.frozen, N_("The draft is already frozen."))
        return
    if action is DraftAction.freeze_draft:
        _require(role in MEDIATORS, N_("Only the mediator can freeze the draft."))
        _when(not draft.frozen, N_("The draft is already frozen."))
        return
    raise AssertionError(f"unhandled action {action}")  # pragma: no cover


def may_draft(action: DraftAction, subject: Subject, case: Case, draft: DraftScope | None) -> bool:
    try:
        check_draft(action, subject, case, draft)
    except Refused:
        return False
    return True


class AgreementAction(enum.StrEnum):
    view_agreement = "view_agreement"
    sign_agreement = "sign_agreement"
    file_agreement = "file_agreement"


SIGNATORIES = frozenset({CaseRole.party, CaseRole.mediator})


def check_agreement(action: AgreementAction, subject: Subject, case: Case) -> None:
    """Everyone in the case reads the agreement; parties and the mediator sign; mediators file."""
    _user, role = _member(subject)
    if action is AgreementAction.view_agreement:
        return
    if action is AgreementAction.sign_agreement:
        _require(role in SIGNATORIES, N_("You are not a signatory of this agreement."))
        return
    if action is AgreementAction.file_agreement:
        _require(role in MEDIATORS, N_("Only the mediator can file the agreement."))
        _when(case.status in {CaseStatus.signed, CaseStatus.filed, CaseStatus.court_rejected},
              N_("Only a signed agreement can be filed."))
        return
    raise AssertionError(f"unhandled action {action}")  # pragma: no cover


def check_court(user: User | None, court_id: int) -> None:
    """Only the court's own clerks see and decide its filings; to others the court has none."""
    if user is None:
        raise Unauthenticated(N_("Please sign in first."))
    if user.role != AccountRole.court_clerk or user.court_id != court_id:
        raise NotFound(N_("No such court inbox."))


def check_global(action: GlobalAction, user: User | None) -> None:
    if user is None:
        raise Unauthenticated(N_("Please sign in first."))
    if action is GlobalAction.request_mediation:
        return
    if action is GlobalAction.list_open_requests:
        _require(user.role == AccountRole.mediator, N_("Only mediators see open requests."))
        return
    _require(user.role == AccountRole.administrator, N_("Only an administrator can do this."))


def may(action: Action, subject: Subject, case: Case, *, registered_mediator: bool = False) -> bool:
    try:
        check(action, subject, case, registered_mediator=registered_mediator)
    except Refused:
        return False
    return True


def _member(subject: Subject) -> tuple[User, CaseRole]:
    """The signed-in participant and their role; to anyone else the case does not exist."""
    if subject.user is None:
        raise Unauthenticated(N_("Please sign in first."))
    if subject.case_role is None:
        raise NotFound(N_("No such case."))
    return subject.user, subject.case_role


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Forbidden(message)


def _when(condition: bool, message: str) -> None:
    if not condition:
        raise Conflict(message)
