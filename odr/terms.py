"""The term of mediation: it runs from the mediation contract's conclusion (documents.contract)
for the contract's number of days. Law No. 401-IV bounds mediation in time and lets the term be
extended with the parties' agreement; its current text could not be read where this was
written, so the length and the extension allowed are settings (``mediation_term_days``,
``mediation_extension_days``).

The mediator is reminded before the term ends; an expired term becomes a case event, and the
access policy opens no session past it (``access.term_expired``) until the mediator extends it
or closes the case. The watch keeps its progress in the case rows, so a restart sends nothing
twice and misses nothing; with several processes each notice is claimed by one of them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import access
from odr.access import SESSION_STATES, Action, Subject
from odr.errors import N_, Refused
from odr.models import Case, CaseRole, Participant, User, utcnow
from odr.periodic import Periodic
from odr.schemas import TermPublic
from odr.services import Services


def view(case: Case, svc: Services, now: datetime | None = None) -> TermPublic | None:
    if case.term_ends_at is None:
        return None
    now = now or utcnow()
    left = (case.term_ends_at - now).total_seconds()
    return TermPublic(
        ends_at=case.term_ends_at, days_left=max(0, math.ceil(left / 86400)),
        expired=access.term_expired(case, now), extended_days=case.term_extended_days,
        extension_left=max(0, svc.settings.mediation_extension_days - case.term_extended_days))


async def extend(case: Case, *, days: int, parties_agreed: bool, note: str, subject: Subject,
                 svc: Services, session: AsyncSession) -> None:
    """The mediator extends the term, with the parties' agreement, within what the law allows
    in all; an expired term runs again if the new end is still ahead."""
    access.check(Action.extend_term, subject, case)
    allowance = svc.settings.mediation_extension_days - case.term_extended_days
    if not parties_agreed:
        raise Refused(N_("The term is extended only with the parties' agreement: confirm that "
                         "they agreed."), field="parties_agreed")
    if not 1 <= days <= allowance:
        raise Refused(N_("The term can be extended by %(days)s more days at most."),
                      field="days", days=max(0, allowance))
    assert case.term_ends_at is not None
    case.term_ends_at += timedelta(days=days)
    case.term_extended_days += days
    case.term_reminded_at = case.term_expired_at = None
    session.add(case)
    await svc.cases.record(
        session, case, "term_extended", actor=subject.user,
        detail=case.term_ends_at.isoformat(timespec="minutes"),
        audit_detail={"days": days, "parties_agreed": True, "note": note})


class TermWatch(Periodic):
    """Reminds mediators of terms about to end and records terms that ended."""

    def __init__(self, svc: Services) -> None:
        super().__init__(svc.settings.term_check_seconds)
        self.svc = svc

    async def run_once(self, now: datetime | None = None) -> int:
        """Send the reminders and record the expiries that are due; returns how many."""
        now = now or utcnow()
        soon = now + timedelta(days=self.svc.settings.term_reminder_days)
        running = col(Case.status).in_(list(SESSION_STATES))
        done = 0
        async with self.svc.maker() as session:
            expiring = (await session.exec(select(Case.id).where(
                running, col(Case.term_ends_at) <= soon, col(Case.term_ends_at) > now,
                col(Case.term_reminded_at).is_(None)))).all()
            expired = (await session.exec(select(Case.id).where(
                running, col(Case.term_ends_at) <= now,
                col(Case.term_expired_at).is_(None)))).all()
            await session.commit()
        for case_id in expiring:
            done += await self._notice(case_id or 0, Case.term_reminded_at, now, expired=False)
        for case_id in expired:
            done += await self._notice(case_id or 0, Case.term_expired_at, now, expired=True)
        if done:
            await self.svc.mailer.deliver_pending()
        return done

    async def _notice(self, case_id: int, mark: object, now: datetime, *, expired: bool
                      ) -> int:
        async with self.svc.maker() as session:
            # The claim: one process, once, whatever restarts in between.
            claimed = await session.exec(update(Case).where(
                col(Case.id) == case_id, col(mark).is_(None)).values({mark: now}))
            if claimed.rowcount != 1:
                await session.rollback()
                return 0
            case = await session.get(Case, case_id)
            assert case is not None and case.term_ends_at is not None
            if expired:
                await self.svc.cases.record(
                    session, case, "term_expired", actor=None,
                    detail=case.term_ends_at.isoformat(timespec="minutes"))
            for user in await _mediators(case, session):
                self._mail(session, case, user, expired)
            await session.commit()
        return 1

    def _mail(self, session: AsyncSession, case: Case, user: User, expired: bool) -> None:
        tr = self.svc.catalogues.get(user.language or case.language)
        assert case.term_ends_at is not None
        try:
            zone = ZoneInfo(user.timezone)
        except (KeyError, ValueError):
            zone = ZoneInfo(self.svc.settings.default_timezone)
        when = case.term_ends_at.astimezone(zone).strftime("%d.%m.%Y %H:%M")
        link = f"{self.svc.settings.public_url.rstrip('/')}/cases/{case.id}"
        if expired:
            subject = tr.gettext("The term of mediation in case %(number)s has expired",
                                 number=case.number)
            body = tr.gettext(
                "The term of mediation in case %(number)s ended on %(when)s. No session can "
                "take place until you extend the term with the parties' agreement or close "
                "the case: %(link)s", number=case.number, when=when, link=link)
        else:
            subject = tr.gettext("The term of mediation in case %(number)s ends on %(when)s",
                                 number=case.number, when=when)
            body = tr.gettext(
                "The term of mediation in case %(number)s ends on %(when)s. If the parties "
                "agree, you can extend it on the case page: %(link)s",
                number=case.number, when=when, link=link)
        self.svc.mailer.queue(session, user.email, subject, body)


async def _mediators(case: Case, session: AsyncSession) -> list[User]:
    rows = (await session.exec(
        select(User).join(Participant, col(Participant.user_id) == col(User.id))
        .where(Participant.case_id == case.id, col(Participant.removed_at).is_(None),
               col(Participant.role).in_([CaseRole.mediator, CaseRole.co_mediator]))
        .order_by(col(Participant.id)))).all()
    return list(rows)
