"""Self-registration with a confirmed address, so that signing up tells nobody who has an account.

Creating the account and signing in at once would answer differently for an address that
already has an account (it can do neither), and any difference is an oracle: a stranger could
learn that someone uses the platform, which for a mediation service is itself confidential.
So every well-formed registration gets one neutral answer, and the work happens after it:
a new address is sent a link that creates the account (and signs in) when opened; an address
with an account is sent a note to its owner instead. This costs one step, the opening of the
mail, and keeps the pages and the API otherwise as they were; the administrator's
``odr create-user`` still creates accounts directly.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import accounts, email_links
from odr.errors import N_, Refused
from odr.i18n import Catalogues
from odr.mail import Mailer
from odr.models import LinkPurpose, User
from odr.schemas import Registration
from odr.security import PasswordHashing
from odr.settings import Settings

SIGNUP_REQUESTED = N_("Check your e-mail: we have sent a message to this address. Open the link "
                      "in it to finish creating your account.")


class Signups:
    def __init__(self, *, settings: Settings, maker: async_sessionmaker[AsyncSession],
                 mailer: Mailer, hashing: PasswordHashing, catalogues: Catalogues) -> None:
        self.settings = settings
        self.maker = maker
        self.mailer = mailer
        self.hashing = hashing
        self.catalogues = catalogues

    def _url(self, path: str) -> str:
        return self.settings.public_url.rstrip("/") + path

    def link(self, token: str, next_path: str = "") -> str:
        query = f"?next={quote(next_path, safe='/')}" if next_path else ""
        return self._url(f"/signup/{quote(token)}{query}")

    async def request(self, data: Registration, *, ip: str, language: str,
                      next_path: str = "") -> None:
        """Mail the confirmation link, or the note to the address's owner, within the limits.

        Runs after the answer has been sent, in its own transaction. The link's mail is in the
        chosen language, else in ``language`` (the request's); the note in the owner's.
        """
        email = accounts.normalise_email(data.email)
        # Hashed on both paths, so even the load left behind does not tell the two apart.
        password_hash = await self.hashing.hash_async(data.password)
        async with self.maker() as session:
            allowed = await email_links.within_limits(
                email, ip, LinkPurpose.signup, LinkPurpose.signup_notice, session=session,
                settings=self.settings,
            )
            owner = await accounts.user_by_email(email, session=session)
            if not allowed:
                email_links.record(LinkPurpose.signup, email, ip, session=session)
            elif owner is not None:
                email_links.record(LinkPurpose.signup_notice, email, ip, session=session,
                                   user_id=owner.id)
                self._mail_owner(session, owner, language)
            else:
                hours = self.settings.signup_link_hours
                token, _ = email_links.record(
                    LinkPurpose.signup, email, ip, session=session,
                    valid_for=timedelta(hours=hours), name=data.name.strip(),
                    password_hash=password_hash, language=data.language, timezone=data.timezone,
                )
                assert token is not None
                tr = self.catalogues.get(data.language or language)
                self.mailer.queue(
                    session, email, tr.gettext("Confirm your e-mail address"),
                    tr.gettext(
                        "To finish creating your account on the mediation platform, open this "
                        "link:\n%(link)s\n\nThe link can be used once and is valid for %(hours)d "
                        "hours. If you did not sign up, ignore this message: no account is "
                        "created.",
                        link=self.link(token, next_path), hours=hours,
                    ),
                )
            await session.commit()
        await self.mailer.deliver_pending()

    def _mail_owner(self, session: AsyncSession, owner: User, language: str) -> None:
        tr = self.catalogues.get(owner.language or language)
        self.mailer.queue(
            session, owner.email, tr.gettext("Someone tried to register with your address"),
            tr.gettext(
                "Someone tried to create an account on the mediation platform with this e-mail "
                "address, which already has an account.\n\nIf it was you, sign in:\n%(login)s\n\n"
                "If you have forgotten your password, choose a new one:\n%(reset)s\n\n"
                "If it was not you, ignore this message: your account is unchanged.",
                login=self._url("/login"), reset=self._url("/password-reset"),
            ),
        )

    async def check(self, token: str, *, session: AsyncSession) -> None:
        """Refuses a link that can no longer be used (the page says so before its button)."""
        await email_links.usable(token, LinkPurpose.signup, session=session)

    async def complete(self, token: str, *, session: AsyncSession) -> User:
        """Use the link up and create the account it was sent for."""
        link = await email_links.claim(token, LinkPurpose.signup, session=session)
        if link.password_hash is None:
            raise Refused(email_links.LINK_NOT_VALID, field="token")
        # Refused with Conflict when the address got an account meanwhile (another sign-up
        # link, an invitation): only the mailbox's owner has this link, so that tells no one.
        user = await accounts.add_user(
            link.email, link.name, link.password_hash, session=session,
            language=link.language, timezone=link.timezone,
        )
        await email_links.retire(link.email, LinkPurpose.signup, session=session)
        return user
