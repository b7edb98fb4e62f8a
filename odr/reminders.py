"""Reminders of scheduled sessions: when the session is booked, a day before and an hour before,
to everyone in the case, by e-mail with the session as an iCalendar (.ics) attachment, in each
recipient's language and time zone.

Each reminder is a row made with the session (``SessionReminder``); the worker claims a due one
before sending it, so it goes out once whatever restarts or processes there are. A reminder
that falls due after its session has begun (the service was down) is dropped, not sent late.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.models import (
    Case,
    Participant,
    ScheduledSession,
    SessionReminder,
    User,
    utcnow,
)
from odr.periodic import Periodic

if TYPE_CHECKING:  # odr.cases plans reminders, and odr.services imports odr.cases
    from odr.services import Services

# How long before the session each reminder goes (None: when it is booked).
BEFORE: dict[str, timedelta | None] = {"booked": None, "day": timedelta(days=1),
                                       "hour": timedelta(hours=1)}
BATCH = 100


def plan(row: ScheduledSession, now: datetime) -> list[SessionReminder]:
    """The reminders of a session just booked (those already past are left out)."""
    reminders = []
    for kind, before in BEFORE.items():
        due = now if before is None else row.starts_at - before
        if before is None or due > now:
            reminders.append(SessionReminder(session_id=row.id or 0, kind=kind, due_at=due))
    return reminders


def _text(value: str) -> str:
    """An iCalendar TEXT value (RFC 5545 3.3.11)."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next, after a space (RFC 5545 3.1)."""
    out, chunk = [], ""
    for char in line:
        if len((chunk + char).encode()) > 75:
            out.append(chunk)
            chunk = " "
        chunk += char
    out.append(chunk)
    return "\r\n".join(out)


def ics(row: ScheduledSession, case: Case, *, summary: str, link: str, host: str,
        now: datetime) -> str:
    """The session as an iCalendar event; times in UTC, which every calendar shows in its own
    zone."""
    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y%m%dT%H%M%SZ")

    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//ODR platform//mediation sessions//EN",
        "METHOD:PUBLISH", "BEGIN:VEVENT", f"UID:odr-session-{row.id}@{host}",
        f"DTSTAMP:{stamp(now)}", f"DTSTART:{stamp(row.starts_at)}",
        f"DTEND:{stamp(row.starts_at + timedelta(minutes=row.duration_minutes))}",
        f"SUMMARY:{_text(summary)}", f"DESCRIPTION:{_text(link)}", f"URL:{link}",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


class SessionReminders(Periodic):
    def __init__(self, svc: Services) -> None:
        super().__init__(svc.settings.reminder_check_seconds)
        self.svc = svc

    async def run_once(self, now: datetime | None = None) -> int:
        """Send every reminder that is due; returns how many went out."""
        now = now or utcnow()
        async with self.svc.maker() as session:
            due = (await session.exec(select(SessionReminder.id).where(
                col(SessionReminder.sent_at).is_(None), col(SessionReminder.due_at) <= now)
                .order_by(col(SessionReminder.due_at)).limit(BATCH))).all()
            await session.commit()
        sent = 0
        for reminder_id in due:
            sent += await self._send(reminder_id or 0, now)
        if sent:
            await self.svc.mailer.deliver_pending()
        return sent

    async def _send(self, reminder_id: int, now: datetime) -> int:
        async with self.svc.maker() as session:
            claimed = await session.exec(update(SessionReminder).where(
                col(SessionReminder.id) == reminder_id,
                col(SessionReminder.sent_at).is_(None)).values(sent_at=now))
            if claimed.rowcount != 1:
                await session.rollback()
                return 0
            reminder = await session.get(SessionReminder, reminder_id)
            row = await session.get(ScheduledSession, reminder.session_id) if reminder else None
            case = await session.get(Case, row.case_id) if row else None
            if reminder is None or row is None or case is None or row.starts_at <= now:
                await session.commit()  # its session has begun: too late to remind
                return 0
            for user in await _people(case, session):
                self._mail(session, reminder.kind, row, case, user, now)
            await session.commit()
        return 1

    def _mail(self, session: AsyncSession, kind: str, row: ScheduledSession, case: Case,
              user: User, now: datetime) -> None:
        tr = self.svc.catalogues.get(user.language or case.language)
        try:
            zone = ZoneInfo(user.timezone)
        except (KeyError, ValueError):
            zone = ZoneInfo(self.svc.settings.default_timezone)
        when = row.starts_at.astimezone(zone).strftime("%d.%m.%Y %H:%M")
        base = self.svc.settings.public_url.rstrip("/")
        room, check = f"{base}/cases/{case.id}/room", f"{base}/check"
        subject = {
            "booked": tr.gettext("Mediation session on %(when)s, case %(number)s",
                                 when=when, number=case.number),
            "day": tr.gettext("Tomorrow: mediation session at %(when)s, case %(number)s",
                              when=when, number=case.number),
            "hour": tr.gettext("In an hour: mediation session at %(when)s, case %(number)s",
                               when=when, number=case.number),
        }[kind]
        body = tr.gettext(
            "A mediation session of case %(number)s is set for %(when)s (%(zone)s), for "
            "%(minutes)s minutes. Join it here: %(room)s\n\nBefore the session, check your "
            "camera, microphone and connection: %(check)s\n\nThe session is in the attached "
            "calendar file.", number=case.number, when=when, zone=str(zone),
            minutes=row.duration_minutes, room=room, check=check)
        if row.note:
            body += "\n\n" + row.note
        calendar = ics(row, case, summary=tr.gettext("Mediation session, case %(number)s",
                                                     number=case.number),
                       link=room, host=urlsplit(base).hostname or "odr", now=now)
        self.svc.mailer.queue(session, user.email, subject, body, calendar=calendar)


async def _people(case: Case, session: AsyncSession) -> Sequence[User]:
    """Everyone in the case now (someone who joined after the booking is reminded too)."""
    return (await session.exec(
        select(User).join(Participant, col(Participant.user_id) == col(User.id))
        .where(Participant.case_id == case.id, col(Participant.removed_at).is_(None))
        .order_by(col(Participant.id)))).all()
