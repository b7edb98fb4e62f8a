"""Invitations to a case: a one-time, expiring link (stored hashed) for a new or known account."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import access
from odr.access import FINAL, MEDIATORS, Action, Subject
from odr.accounts import normalise_email, user_by_email
from odr.cases import CaseService, participants
from odr.errors import N_, Conflict, Forbidden, NotFound, Refused
from odr.i18n import Translator
from odr.mail import Mailer
from odr.models import (
    AccountRole,
    Case,
    CaseRole,
    Invitation,
    Participant,
    User,
    utcnow,
)
from odr.schemas import InvitationAccept, InvitationCreate
from odr.security import PasswordHashing, new_token, token_hash
from odr.settings import Settings
from odr.vocab import CASE_ROLE_LABELS

NEEDS_SIDE = frozenset({CaseRole.party, CaseRole.representative, CaseRole.interpreter})
REQUESTER_MAY_INVITE = frozenset({CaseRole.party, CaseRole.representative, CaseRole.interpreter})


WRONG_ACCOUNT = N_("This invitation was sent to another address. Sign in with the address it was "
                   "sent to.")


def addressed_to(invitation: Invitation, user: User) -> bool:
    """Whether ``user`` is the person the link was sent to: a link passed on, forwarded or
    seen over a shoulder must not let another account into the case."""
    return normalise_email(user.email) == normalise_email(invitation.email)


@dataclass
class SentInvitation:
    invitation: Invitation
    link: str
    mailed: bool


@dataclass
class AcceptedInvitation:
    user: User
    participant: Participant
    case: Case
    account_created: bool


class Invitations:
    def __init__(
        self, *, cases: CaseService, mailer: Mailer, settings: Settings, hashing: PasswordHashing
    ) -> None:
        self.cases = cases
        self.mailer = mailer
        self.settings = settings
        self.hashing = hashing

    def link(self, token: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/invitations/{token}"

    async def invite(
        self,
        case: Case,
        data: InvitationCreate,
        *,
        inviter: User,
        inviter_role: CaseRole,
        session: AsyncSession,
        translator: Translator,
    ) -> SentInvitation:
        """Invite a person by e-mail; the caller has checked ``Action.invite`` with the policy."""
        if data.role == CaseRole.mediator:
            raise Refused(N_("The mediator joins by taking the case, not by invitation."),
                          field="role")
        if inviter_role not in MEDIATORS and data.role not in REQUESTER_MAY_INVITE:
            raise Refused(N_("Only the mediator can invite a person in this role."), field="role")
        if data.role in NEEDS_SIDE and data.side is None:
            raise Refused(N_("Choose which side this person is on."), field="side")
        email = normalise_email(data.email)
        existing = await user_by_email(email, session=session)
        if existing and any(p.user_id == existing.id for p in await participants(case,
                                                                                   session=session)):
            raise Conflict(N_("This person already takes part in the case."), field="email")
        token = new_token()
        invitation = Invitation(
            case_id=case.id or 0, email=email, name=data.name, role=data.role, side=data.side,
            token_hash=token_hash(token), invited_by=inviter.id or 0,
            expires_at=utcnow() + timedelta(days=self.settings.invitation_days),
        )
        session.add(invitation)
        await session.flush()
        link = self.link(token)
        role_name = translator.gettext(CASE_ROLE_LABELS[data.role.value])
        self.mailer.queue(
            session,
            email,
            translator.gettext("Invitation to mediation, case %(number)s", number=case.number),
            translator.gettext(
                "%(inviter)s invites you to take part in mediation case %(number)s as %(role)s.\n\n"
                "Open this link to accept the invitation:\n%(link)s\n\n"
                "The link can be used once and is valid until %(expires)s (UTC).",
                inviter=inviter.name, number=case.number, role=role_name, link=link,
                expires=invitation.expires_at.strftime("%Y-%m-%d %H:%M"),
            ),
        )
        await self.cases.record(
            session, case, "invited", actor=inviter, detail=data.role.value,
            audit_detail={"invitation_id": invitation.id, "email": email},
        )
        return SentInvitation(invitation, link, mailed=self.mailer.configured)

    async def find(self, token: str, *, session: AsyncSession) -> tuple[Invitation, Case]:
        """The invitation behind a link, refused with its own reason when it cannot be used."""
        invitation = (
            await session.exec(select(Invitation).where(Invitation.token_hash == token_hash(token)))
        ).first()
        if invitation is None:
            raise NotFound(N_("This invitation link is not valid."))
        if invitation.revoked_at is not None:
            raise Conflict(N_("This invitation has been revoked by the mediator."))
        if invitation.accepted_at is not None:
            raise Conflict(N_("This invitation has already been used."))
        if invitation.expires_at <= utcnow():
            raise Conflict(N_("This invitation has expired. Ask for a new one."))
        case = await session.get(Case, invitation.case_id)
        if case is None or case.status in FINAL:
            raise Conflict(N_("The case is closed."))
        return invitation, case

    async def accept(
        self,
        token: str,
        data: InvitationAccept,
        *,
        user: User | None,
        session: AsyncSession,
    ) -> AcceptedInvitation:
        """Bind the invitation to the signed-in user, or create the invited person's account."""
        invitation, case = await self.find(token, session=session)
        created = False
        if user is not None and not addressed_to(invitation, user):
            raise Forbidden(WRONG_ACCOUNT)
        if user is None:
            if await user_by_email(invitation.email, session=session):
                raise Conflict(
                    N_("An account with this e-mail already exists. Sign in, then open the link "
                       "again.")
                )
            if not data.name or not data.password:
                raise Refused(N_("Enter your name and choose a password."), field="password")
            user = User(
                email=invitation.email, name=data.name,
                password_hash=await self.hashing.hash_async(data.password), role=AccountRole.party,
                language=case.language,
            )
            session.add(user)
            await session.flush()
            created = True
        # Claimed in one conditional UPDATE, before the participant is added: of two uses of
        # the link at once (on PostgreSQL, in parallel transactions) the second waits for the
        # first on the invitation's row, finds it taken and is refused, and its transaction
        # is rolled back. Adding the participant first would make the second wait on the
        # participant's unique key instead and fail there with an integrity error (a 500).
        claimed = await session.exec(
            update(Invitation)
            .where(col(Invitation.id) == invitation.id, col(Invitation.accepted_at).is_(None),
                   col(Invitation.revoked_at).is_(None))
            .values(accepted_at=utcnow(), accepted_by=user.id)
        )
        if claimed.rowcount != 1:
            raise Conflict(N_("This invitation has already been used."))
        participant = await self.cases.add_participant(
            case, user, invitation.role, invitation.side, session=session
        )
        return AcceptedInvitation(user, participant, case, created)

    async def revoke(
        self, case: Case, invitation_id: int, *, subject: Subject, session: AsyncSession
    ) -> Invitation:
        """The mediator takes back a pending invitation; its link is refused from then on."""
        access.check(Action.revoke_invitation, subject, case)
        invitation = await session.get(Invitation, invitation_id)
        if invitation is None or invitation.case_id != case.id:
            raise NotFound(N_("No such invitation."))
        if invitation.revoked_at is not None:
            raise Conflict(N_("This invitation has been revoked by the mediator."))
        # Conditional, like the claim in ``accept``: of a revocation and an acceptance at the
        # same moment exactly one wins.
        revoked = await session.exec(
            update(Invitation)
            .where(col(Invitation.id) == invitation_id, col(Invitation.accepted_at).is_(None),
                   col(Invitation.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )
        if revoked.rowcount != 1:
            raise Conflict(N_("This invitation has already been used."))
        await session.refresh(invitation)
        await self.cases.record(
            session, case, "invitation_revoked", actor=subject.user, detail=invitation.role.value,
            audit_detail={"invitation_id": invitation.id, "email": invitation.email},
        )
        return invitation


async def pending(case: Case, *, session: AsyncSession) -> Sequence[Invitation]:
    """Invitations of the case that can still be used (not accepted, revoked or expired)."""
    return (
        await session.exec(
            select(Invitation)
            .where(Invitation.case_id == case.id, col(Invitation.accepted_at).is_(None),
                   col(Invitation.revoked_at).is_(None), Invitation.expires_at > utcnow())
            .order_by(col(Invitation.id))
        )
    ).all()
