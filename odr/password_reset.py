"""Password reset by a one-time link mailed to the account's address.

The request is answered before anything is looked up (``request`` runs after the answer, as a
background task), so neither the answer nor its timing tells whether the address has an
account; over the hourly limits the answer is the same and nothing is sent.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import accounts, email_links
from odr.audit import AuditLog
from odr.errors import N_, Refused
from odr.i18n import Catalogues
from odr.mail import Mailer
from odr.models import LinkPurpose, User
from odr.security import PasswordHashing
from odr.settings import Settings

RESET_REQUESTED = N_("If an account exists for this address, we have sent a link to choose a "
                     "new password. Check your e-mail; the link is valid for %(minutes)d "
                     "minutes.")
PURPOSE = LinkPurpose.password_reset


class PasswordResets:
    def __init__(self, *, settings: Settings, maker: async_sessionmaker[AsyncSession],
                 mailer: Mailer, hashing: PasswordHashing, catalogues: Catalogues,
                 audit: AuditLog) -> None:
        self.settings = settings
        self.maker = maker
        self.mailer = mailer
        self.hashing = hashing
        self.catalogues = catalogues
        self.audit = audit

    def link(self, token: str) -> str:
        return f"{self.settings.public_url.rstrip('/')}/password-reset/{quote(token)}"

    async def request(self, email: str, *, ip: str, language: str) -> None:
        """Mail a reset link when the address has an active account and the limits allow.

        Runs after the answer has been sent, in its own transaction; every request is recorded,
        so unknown addresses count towards the limits as known ones do. The mail is in the
        account's language, else in ``language`` (the one the request was made in).
        """
        email = accounts.normalise_email(email)
        async with self.maker() as session:
            allowed = await email_links.within_limits(email, ip, PURPOSE, session=session,
                                                      settings=self.settings)
            user = await accounts.user_by_email(email, session=session)
            if not (allowed and user is not None and user.active):
                email_links.record(PURPOSE, email, ip, session=session)
                await session.commit()
                return
            minutes = self.settings.password_reset_minutes
            token, _ = email_links.record(PURPOSE, email, ip, session=session,
                                          valid_for=timedelta(minutes=minutes), user_id=user.id)
            assert token is not None
            tr = self.catalogues.get(user.language or language)
            self.mailer.queue(
                session, email, tr.gettext("Choose a new password"),
                tr.gettext(
                    "Someone, probably you, asked to reset the password of your account on the "
                    "mediation platform.\n\nOpen this link to choose a new password:\n%(link)s\n\n"
                    "The link can be used once and is valid for %(minutes)d minutes. If you did "
                    "not ask for it, ignore this message: your password stays as it is.",
                    link=self.link(token), minutes=minutes,
                ),
            )
            await session.commit()
        await self.mailer.deliver_pending()

    async def check(self, token: str, *, session: AsyncSession) -> None:
        """Refuses a link that can no longer be used (the page says so before the form)."""
        await email_links.usable(token, PURPOSE, session=session)

    async def complete(self, token: str, password: str, *, ip: str,
                       session: AsyncSession) -> User:
        """Use the link up and set the new password (already validated as at registration).

        Every browser session of the account ends, since one of them may be the reason for
        the reset; the caller signs this browser in afterwards. Personal API tokens stay valid:
        they belong to court systems and scripts the owner set up, not to a sign-in.
        """
        link = await email_links.claim(token, PURPOSE, session=session)
        user = await session.get(User, link.user_id) if link.user_id is not None else None
        if user is None or not user.active:
            raise Refused(email_links.LINK_NOT_VALID, field="token")
        user.password_hash = await self.hashing.hash_async(password)
        session.add(user)
        await accounts.end_all_sessions(user, session=session)
        # Proving control of the mailbox lifts the sign-in lockout of the account.
        await accounts.forget_failures(user.email, session=session)
        await email_links.retire(link.email, PURPOSE, session=session)
        await self.audit.append(session, "password_reset", actor_id=user.id,
                                detail={"ip": ip})
        return user
