"""Cases: requests for mediation, participants, the status machine, the timeline, sessions."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, timedelta
from typing import Any, Protocol

from sqlmodel import and_, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import access, reminders
from odr.access import Action, Subject
from odr.audit import AuditLog
from odr.db import after_commit
from odr.errors import N_, Conflict, NotFound, Refused
from odr.models import (
    AccountRole,
    Case,
    CaseEvent,
    CaseRole,
    CaseStatus,
    MediatorProfile,
    Organisation,
    Participant,
    ScheduledSession,
    Side,
    User,
    utcnow,
)
from odr.schemas import CaseCreate, CasePublic, ParticipantPublic, SessionCreate

# Every allowed move of a case's status; anything else is refused as out of order.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.requested: frozenset(
        {CaseStatus.accepted, CaseStatus.declined, CaseStatus.withdrawn}
    ),
    CaseStatus.accepted: frozenset(
        {CaseStatus.consented, CaseStatus.declined, CaseStatus.withdrawn}
    ),
    CaseStatus.consented: frozenset(
        {CaseStatus.in_session, CaseStatus.withdrawn, CaseStatus.no_agreement}
    ),
    CaseStatus.in_session: frozenset(
        {CaseStatus.agreement_drafted, CaseStatus.withdrawn, CaseStatus.no_agreement}
    ),
    CaseStatus.agreement_drafted: frozenset(
        {CaseStatus.in_session, CaseStatus.signed, CaseStatus.withdrawn, CaseStatus.no_agreement}
    ),
    CaseStatus.signed: frozenset({CaseStatus.filed}),
    CaseStatus.filed: frozenset({CaseStatus.court_accepted, CaseStatus.court_rejected}),
    CaseStatus.court_accepted: frozenset(),
    CaseStatus.court_rejected: frozenset({CaseStatus.filed}),
    CaseStatus.declined: frozenset(),
    CaseStatus.withdrawn: frozenset(),
    CaseStatus.no_agreement: frozenset(),
}

# How far ahead a session can be scheduled: further is a typo, and near the calendar's end the
# time cannot even be shown in every reader's zone.
SCHEDULE_HORIZON = timedelta(days=2 * 366)

# Which action of the policy a user-requested status change is.
STATUS_ACTIONS = {
    CaseStatus.declined: Action.decline_case,
    CaseStatus.withdrawn: Action.withdraw,
    CaseStatus.in_session: Action.start_session,
    CaseStatus.no_agreement: Action.end_without_agreement,
}


log = logging.getLogger("odr.cases")

StatusListener = Callable[[int, CaseStatus], Coroutine[Any, Any, None]]
# Hears, inside the transaction, that the people of a case changed (the mediation contract is
# prepared again for them: documents.contract).
RosterListener = Callable[[Case, AsyncSession, User | None], Coroutine[Any, Any, None]]

# Close code of a live-room or draft socket whose person was removed from the case; the pages
# show why and do not reconnect.
CLOSE_REMOVED = 4403
REMOVED_MESSAGE = N_("You have been removed from this case.")

# Only participants still in the case (a removed one's row stays, for the history).
ACTIVE = col(Participant.removed_at).is_(None)


class Disconnector(Protocol):
    """Something holding open connections of people to a case (live rooms, drafts).

    Called in every process once a removal is committed (through Redis when there are
    several, ``odr.cluster``): the person's connection may be held by any of them.
    """

    async def disconnect_user(self, case_id: int, user_id: int, code: int, reason: str
                              ) -> None: ...


class CaseService:
    """Changes to cases; each change writes a timeline event and an audit entry.

    ``status_listeners`` hear of each status change once it is committed (the live rooms close
    when a case leaves its session states).
    """

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self.status_listeners: list[StatusListener] = []
        self.disconnectors: list[Disconnector] = []
        self.roster_listeners: list[RosterListener] = []
        # With several processes, events go through Redis to every process's ``deliver``
        # (False: not sent, so this process delivers its own); None: one process.
        self.publish: Callable[[dict[str, Any]], Awaitable[bool]] | None = None
        self._announcing: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    def _announce(self, case_id: int, status: CaseStatus) -> None:
        self._spawn(self._send({"kind": "case.status", "case_id": case_id,
                                "status": status.value}))

    def _disconnect(self, case_id: int, user_id: int) -> None:
        self._spawn(self._send({"kind": "case.removed", "case_id": case_id,
                                "user_id": user_id}))

    async def _send(self, event: dict[str, Any]) -> None:
        if self.publish is None or not await self.publish(event):
            await self.deliver(event)

    async def deliver(self, event: dict[str, Any]) -> None:
        """Tell this process's listeners of a committed change (made here or elsewhere)."""
        case_id = int(event["case_id"])
        calls: list[Coroutine[Any, Any, None]] = []
        if event["kind"] == "case.status":
            status = CaseStatus(event["status"])
            calls = [listener(case_id, status) for listener in self.status_listeners]
        elif event["kind"] == "case.removed":
            calls = [d.disconnect_user(case_id, int(event["user_id"]), CLOSE_REMOVED,
                                       REMOVED_MESSAGE) for d in self.disconnectors]
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("%s of case %s failed here", event["kind"], case_id,
                          exc_info=outcome)

    async def record(
        self,
        session: AsyncSession,
        case: Case,
        kind: str,
        *,
        actor: User | None,
        status: CaseStatus | None = None,
        detail: str = "",
        audit_detail: dict[str, Any] | None = None,
    ) -> CaseEvent:
        event = CaseEvent(
            case_id=case.id or 0, kind=kind, actor_id=actor.id if actor else None,
            status=status, detail=detail,
        )
        session.add(event)
        await self.audit.append(
            session, f"case.{kind}", actor_id=event.actor_id, case_id=case.id,
            detail={"status": status.value if status else None, "detail": detail}
            | (audit_detail or {}),
        )
        return event

    async def request(self, data: CaseCreate, *, requester: User, session: AsyncSession) -> Case:
        """A citizen asks for mediation; asking is their consent to mediate."""
        if data.mediator_id is not None and not await registered_mediator(
            data.mediator_id, session=session
        ):
            raise Refused(N_("Choose a mediator from the register."), field="mediator_id")
        if data.organisation_id is not None:
            if data.mediator_id is not None:
                raise Refused(N_("Choose a mediator or an organisation, not both."),
                              field="organisation_id")
            org = await session.get(Organisation, data.organisation_id)
            if org is None or not org.active:
                raise Refused(N_("Choose an organisation from the list."),
                              field="organisation_id")
        case = Case(
            number="pending-" + secrets.token_hex(8),
            category=data.category,
            summary=data.summary,
            language=data.language,
            region=data.region,
            district=data.district,
            requester_id=requester.id or 0,
            chosen_mediator_id=data.mediator_id,
            organisation_id=data.organisation_id,
            other_party_name=data.other_party_name,
            other_party_contact=data.other_party_contact,
        )
        session.add(case)
        await session.flush()
        case.number = f"{case.created_at:%Y}-{case.id:05d}"
        session.add(
            Participant(
                case_id=case.id or 0, user_id=requester.id or 0, role=CaseRole.party,
                side=Side.a, consented_at=utcnow(),
            )
        )
        await self.record(session, case, "requested", actor=requester, status=case.status)
        return case

    async def transition(
        self, case: Case, to: CaseStatus, *, actor: User | None, session: AsyncSession,
        reason: str = "",
    ) -> None:
        if to not in TRANSITIONS[case.status]:
            raise Conflict(N_("This step is not possible while the case is in its present state."))
        case.status = to
        case.updated_at = utcnow()
        if to is CaseStatus.accepted:
            case.accepted_at = case.updated_at
        if to is CaseStatus.in_session and case.first_session_at is None:
            case.first_session_at = case.updated_at
        session.add(case)
        await self.record(session, case, "status", actor=actor, status=to, detail=reason)
        case_id = case.id or 0
        after_commit(session, lambda: self._announce(case_id, to))

    async def change_status(
        self, case: Case, to: CaseStatus, *, subject: Subject, session: AsyncSession,
        reason: str = "",
    ) -> None:
        """A status change asked for by a user (decline, withdraw, start, end without agreement)."""
        action = STATUS_ACTIONS.get(to)
        if action is None:
            raise Conflict(N_("This step is not possible while the case is in its present state."))
        access.check(action, subject, case, registered_mediator=await registered_mediator(
            subject.user.id if subject.user else None, session=session))
        await self.transition(case, to, actor=subject.user, session=session, reason=reason)

    async def accept(self, case: Case, *, mediator: User, session: AsyncSession) -> None:
        """A registered mediator takes the case and becomes its mediator."""
        session.add(
            Participant(case_id=case.id or 0, user_id=mediator.id or 0, role=CaseRole.mediator)
        )
        case.chosen_mediator_id = mediator.id
        await self.transition(case, CaseStatus.accepted, actor=mediator, session=session)
        await self._roster_changed(case, session, mediator)

    async def consent(
        self, case: Case, participant: Participant, *, user: User, session: AsyncSession
    ) -> None:
        """A party who joined after the mediation contract was concluded consents to take part
        (before that, parties consent by signing the contract: documents.contract)."""
        participant.consented_at = utcnow()
        session.add(participant)
        await self.record(session, case, "consented", actor=user)

    async def _roster_changed(self, case: Case, session: AsyncSession, actor: User | None
                              ) -> None:
        for listener in self.roster_listeners:
            await listener(case, session, actor)

    async def add_participant(
        self, case: Case, user: User, role: CaseRole, side: Side | None, *, session: AsyncSession
    ) -> Participant:
        existing = (
            await session.exec(
                select(Participant).where(
                    Participant.case_id == case.id, Participant.user_id == user.id
                )
            )
        ).first()
        if existing and existing.removed_at is None:
            raise Conflict(N_("This person already takes part in the case."))
        if existing:  # invited again after being removed: the same row, as new
            participant = existing
            participant.role, participant.side, participant.consented_at = role, side, None
            participant.removed_at, participant.removed_reason = None, ""
            participant.joined_at = utcnow()
        else:
            participant = Participant(case_id=case.id or 0, user_id=user.id or 0, role=role,
                                      side=side)
        session.add(participant)
        await self.record(
            session, case, "joined", actor=user, detail=role.value,
            audit_detail={"user_id": user.id, "side": side.value if side else None},
        )
        await session.flush()
        await self._roster_changed(case, session, user)
        return participant

    async def remove_participant(
        self, case: Case, user_id: int, reason: str, *, subject: Subject, session: AsyncSession
    ) -> Participant:
        """The mediator removes someone from the case, for a reason the timeline shows.

        The row is kept and marked; once committed, the person's open room and draft sockets
        are closed (``disconnectors``) and the policy refuses them everything in the case.
        """
        target = await participant_of(case.id or 0, user_id, session=session)
        if target is None:
            raise NotFound(N_("This person does not take part in the case."))
        access.check_removal(subject, case, target)
        target.removed_at = utcnow()
        target.removed_reason = reason
        session.add(target)
        await self.record(
            session, case, "participant_removed", actor=subject.user, detail=reason,
            audit_detail={"user_id": user_id, "role": target.role.value},
        )
        await self._roster_changed(case, session, subject.user)
        case_id = case.id or 0
        after_commit(session, lambda: self._disconnect(case_id, user_id))
        return target

    async def schedule(
        self, case: Case, data: SessionCreate, *, mediator: User, session: AsyncSession
    ) -> ScheduledSession:
        if data.starts_at.tzinfo is None:
            raise Refused(N_("Give the time with its time zone."), field="starts_at")
        try:
            starts_at = data.starts_at.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31T23:00-12:00 is past the calendar's end in UTC
            starts_at = None
        now = utcnow()
        if starts_at is not None and starts_at <= now:
            raise Refused(N_("The session must be in the future."), field="starts_at")
        if starts_at is None or starts_at > now + SCHEDULE_HORIZON:
            raise Refused(N_("Choose a time within the next two years."), field="starts_at")
        row = ScheduledSession(
            case_id=case.id or 0, starts_at=starts_at, duration_minutes=data.duration_minutes,
            note=data.note, created_by=mediator.id or 0,
        )
        session.add(row)
        await self.record(
            session, case, "session_scheduled", actor=mediator,
            detail=starts_at.isoformat(timespec="minutes"),
        )
        await session.flush()
        session.add_all(reminders.plan(row, now))  # sent by odr.reminders.SessionReminders
        return row


async def get_case(case_id: int, *, session: AsyncSession) -> Case:
    case = await session.get(Case, case_id)
    if case is None:
        raise NotFound(N_("No such case."))
    return case


async def participant_of(
    case_id: int, user_id: int | None, *, session: AsyncSession
) -> Participant | None:
    if user_id is None:
        return None
    return (
        await session.exec(
            select(Participant).where(
                Participant.case_id == case_id, Participant.user_id == user_id
            )
        )
    ).first()


async def participants(case: Case, *, session: AsyncSession) -> Sequence[Participant]:
    return (
        await session.exec(
            select(Participant).where(Participant.case_id == case.id, ACTIVE)
            .order_by(col(Participant.id))
        )
    ).all()


async def registered_mediator(user_id: int | None, *, session: AsyncSession) -> bool:
    if user_id is None:
        return False
    row = (
        await session.exec(
            select(MediatorProfile)
            .join(User, col(User.id) == col(MediatorProfile.user_id))
            .where(
                MediatorProfile.user_id == user_id,
                col(MediatorProfile.active).is_(True),
                User.role == AccountRole.mediator,
            )
        )
    ).first()
    return row is not None


async def cases_of(user: User, *, session: AsyncSession) -> Sequence[Case]:
    """The cases a user takes part in, newest first."""
    return (
        await session.exec(
            select(Case)
            .join(Participant, col(Participant.case_id) == col(Case.id))
            .where(Participant.user_id == user.id, ACTIVE)
            .order_by(col(Case.created_at).desc())
        )
    ).all()


async def open_requests(mediator: User, *, session: AsyncSession) -> Sequence[Case]:
    """Requests a registered mediator may take: chosen for them, or for nobody yet (a request
    addressed to an organisation waits for its coordinators to choose)."""
    if not await registered_mediator(mediator.id, session=session):
        return []
    return (
        await session.exec(
            select(Case)
            .where(
                Case.status == CaseStatus.requested,
                or_(and_(col(Case.chosen_mediator_id).is_(None),
                         col(Case.organisation_id).is_(None)),
                    Case.chosen_mediator_id == mediator.id),
            )
            .order_by(col(Case.created_at))
        )
    ).all()


async def timeline(case: Case, *, session: AsyncSession) -> Sequence[CaseEvent]:
    return (
        await session.exec(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(col(CaseEvent.id))
        )
    ).all()


async def scheduled_sessions(case: Case, *, session: AsyncSession) -> Sequence[ScheduledSession]:
    return (
        await session.exec(
            select(ScheduledSession)
            .where(ScheduledSession.case_id == case.id)
            .order_by(col(ScheduledSession.starts_at))
        )
    ).all()


async def case_public(case: Case, *, session: AsyncSession) -> CasePublic:
    rows = (
        await session.exec(
            select(Participant, User)
            .join(User, col(User.id) == col(Participant.user_id))
            .where(Participant.case_id == case.id, ACTIVE)
            .order_by(col(Participant.id))
        )
    ).all()
    return CasePublic(
        id=case.id or 0, number=case.number, category=case.category, summary=case.summary,
        language=case.language, region=case.region, district=case.district,
        status=case.status, requester_id=case.requester_id,
        chosen_mediator_id=case.chosen_mediator_id,
        other_party_name=case.other_party_name, created_at=case.created_at,
        term_ends_at=case.term_ends_at, outcome=case.outcome, close_reason=case.close_reason,
        closed_at=case.closed_at,
        participants=[
            ParticipantPublic(
                user_id=u.id or 0, name=u.name, role=p.role, side=p.side,
                consented=p.consented_at is not None,
            )
            for p, u in rows
        ],
    )
