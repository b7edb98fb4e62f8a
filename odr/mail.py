"""Outgoing mail: every message is kept in the outbox, and sent over SMTP when one is configured."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.models import OutboxMail, utcnow
from odr.settings import Settings


class Mailer:
    def __init__(self, settings: Settings, maker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.maker = maker

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host)

    def queue(self, session: AsyncSession, to: str, subject: str, body: str, *,
              calendar: str = "") -> OutboxMail:
        """Add a message to the outbox in the caller's transaction (sent after it commits);
        ``calendar``, an iCalendar text, goes with it as ``session.ics``."""
        mail = OutboxMail(to=to, subject=subject, body=body, calendar=calendar)
        session.add(mail)
        return mail

    async def deliver_pending(self) -> int:
        """Send what is waiting (failures stay in the outbox with their error); returns how many."""
        if not self.configured:
            return 0
        sent = 0
        async with self.maker() as session:
            pending = (
                await session.exec(
                    select(OutboxMail)
                    .where(col(OutboxMail.sent_at).is_(None), OutboxMail.error == "")
                    .order_by(col(OutboxMail.id))
                )
            ).all()
            for mail in pending:
                try:
                    await self._send(mail)
                    mail.sent_at = utcnow()
                    sent += 1
                except (aiosmtplib.SMTPException, OSError) as exc:
                    mail.error = str(exc)[:500] or type(exc).__name__
                session.add(mail)
                await session.commit()
        return sent

    async def _send(self, mail: OutboxMail) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        if mail.calendar:
            message.add_attachment(mail.calendar, subtype="calendar", filename="session.ics",
                                   params={"method": "PUBLISH"})
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            start_tls=s.smtp_starttls,
            timeout=30,
        )


async def outbox(session: AsyncSession, limit: int = 200) -> list[OutboxMail]:
    return list(
        (
            await session.exec(select(OutboxMail).order_by(col(OutboxMail.id).desc()).limit(limit))
        ).all()
    )
