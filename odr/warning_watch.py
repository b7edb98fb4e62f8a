"""The weekly early-warning run and its subscribers.

Once each week (from ``warning_weekday`` at ``warning_hour``, in the platform's time zone) one
process claims the week by inserting its ``WarningRun`` row, the unique week keeping it to one
process and one run however many restarts there are; it then computes the flags
(odr.early_warning) and mails them to every coordinator and administrator who subscribed, in
their language. A process that was down at the hour runs the week's warning when it comes back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import early_warning, organisations
from odr.models import AccountRole, User, WarningRun, WarningSubscription, utcnow
from odr.periodic import Periodic
from odr.vocab import CATEGORY_LABELS, REGION_LABELS

if TYPE_CHECKING:
    from odr.services import Services


async def subscribed(user: User, *, session: AsyncSession) -> bool:
    return (await session.exec(select(WarningSubscription.id).where(
        WarningSubscription.user_id == user.id))).first() is not None


async def subscribe(user: User, on: bool, *, session: AsyncSession) -> None:
    row = (await session.exec(select(WarningSubscription).where(
        WarningSubscription.user_id == user.id))).first()
    if on and row is None:
        session.add(WarningSubscription(user_id=user.id or 0))
    elif not on and row is not None:
        await session.delete(row)


async def may_receive(user: User, session: AsyncSession) -> bool:
    """Only those who may see the flags get them: an account that stopped coordinating (or
    was closed) keeps its subscription row but no mail."""
    if not user.active:
        return False
    return user.role == AccountRole.administrator or bool(
        await organisations.coordinated_by(user, session=session))


def due_week(now: datetime, weekday: int, hour: int, zone: ZoneInfo) -> str | None:
    """The ISO week whose run is due at ``now``, or None before its weekday and hour."""
    local = now.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0,
                                                               microsecond=0)
    if local < monday + timedelta(days=weekday, hours=hour):
        return None
    year, week, _day = local.isocalendar()
    return f"{year}-W{week:02d}"


class WarningWatch(Periodic):
    def __init__(self, svc: Services) -> None:
        super().__init__(svc.settings.warning_check_seconds)
        self.svc = svc

    async def run_once(self, now: datetime | None = None) -> int:
        """Run this week's warning if it is due and nobody ran it; returns the mails sent."""
        now = now or utcnow()
        settings = self.svc.settings
        week = due_week(now, settings.warning_weekday, settings.warning_hour,
                        ZoneInfo(settings.default_timezone))
        if week is None:
            return 0
        async with self.svc.maker() as session:
            run = WarningRun(week=week, ran_at=now)
            session.add(run)
            try:
                await session.commit()
            except IntegrityError:  # this week's run was claimed before
                await session.rollback()
                return 0
        async with self.svc.maker() as session:
            flags = await early_warning.flags(now, session=session)
            await session.exec(update(WarningRun).where(col(WarningRun.week) == week)
                               .values(flags=len(flags)))
            sent = 0
            if flags:
                users = (await session.exec(select(User).join(
                    WarningSubscription, col(WarningSubscription.user_id) == col(User.id)))).all()
                for user in users:
                    if await may_receive(user, session):
                        self._mail(session, user, flags)
                        sent += 1
            await session.commit()
        if sent:
            await self.svc.mailer.deliver_pending()
        return sent

    def _mail(self, session: AsyncSession, user: User, flags: list[early_warning.Flag]) -> None:
        tr = self.svc.catalogues.get(user.language or "")
        lines = []
        for f in flags:
            place = tr.gettext(REGION_LABELS.get(f.region, f.region))
            if f.district:
                place += ", " + f.district
            lines.append(tr.gettext(
                "%(category)s, %(place)s: %(count)s requests this week; the previous twelve "
                "weeks averaged %(mean)s (flagged above %(threshold)s). Weekly requests, "
                "oldest first: %(series)s",
                category=tr.gettext(CATEGORY_LABELS.get(f.category, f.category)), place=place,
                count=f.count, mean=f"{f.mean:.1f}", threshold=f"{f.threshold:.1f}",
                series=" · ".join(str(n) for n in f.series)))
        link = self.svc.settings.public_url.rstrip("/") + "/early-warning"
        subject = tr.ngettext("Early warning: %(num)d flag this week",
                              "Early warning: %(num)d flags this week", len(flags))
        body = "\n\n".join([
            tr.gettext("Requests rose well above their own history in these places (at least "
                       "five this week and more than three standard deviations above the mean "
                       "of the previous twelve weeks). Only category, place and date are "
                       "counted, never what a case says."),
            *lines,
            tr.gettext("The flags and their series: %(link)s", link=link),
            tr.gettext("You get this because you subscribed to the weekly early warning; "
                       "unsubscribe on the same page."),
        ])
        self.svc.mailer.queue(session, user.email, subject, body)
