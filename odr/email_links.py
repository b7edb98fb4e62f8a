"""One-time links mailed on anonymous requests (password reset, sign-up): limits, issue, claim.

Such a request must not tell whether the address has an account, so its answer is fixed
before any of this runs (the work happens after the answer, see ``odr.password_reset`` and
``odr.signup``); this module only has to keep a stranger from flooding a mailbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.errors import N_, Refused
from odr.models import EmailLink, LinkPurpose, utcnow
from odr.security import new_token, token_hash
from odr.settings import Settings

LINK_NOT_VALID = N_("This link is not valid any more: it has been used, has expired or is "
                    "incomplete. Ask for a new one.")


async def within_limits(email: str, ip: str, *kinds: LinkPurpose, session: AsyncSession,
                        settings: Settings) -> bool:
    """Whether another mail may go out: earlier requests of these ``kinds`` for the address,
    and requests of any kind from the client IP, are counted.

    Requests that sent nothing count too, so trying unknown addresses spends the IP's allowance.
    """
    since = utcnow() - timedelta(minutes=settings.email_link_window_minutes)
    recent = select(func.count()).select_from(EmailLink).where(EmailLink.created_at >= since)
    by_address = (await session.exec(
        recent.where(EmailLink.email == email, col(EmailLink.purpose).in_(kinds)))).one()
    by_ip = (await session.exec(recent.where(EmailLink.ip == ip))).one()
    return (by_address < settings.email_link_max_per_address
            and by_ip < settings.email_link_max_per_ip)


def record(purpose: LinkPurpose, email: str, ip: str, *, session: AsyncSession,
           valid_for: timedelta | None = None, **fields: Any) -> tuple[str | None, EmailLink]:
    """Keep one request; with ``valid_for`` it gets a link, whose token is returned (once)."""
    token = new_token() if valid_for is not None else None
    link = EmailLink(
        purpose=purpose, email=email, ip=ip,
        token_hash=token_hash(token) if token else None,
        expires_at=utcnow() + valid_for if valid_for is not None else None,
        **fields,
    )
    session.add(link)
    return token, link


async def usable(token: str, purpose: LinkPurpose, *, session: AsyncSession) -> EmailLink:
    """The link behind ``token`` if it can still be used; one refusal for every reason."""
    link = (
        await session.exec(select(EmailLink).where(EmailLink.token_hash == token_hash(token),
                                                   EmailLink.purpose == purpose))
    ).first()
    if (link is None or link.used_at is not None or link.expires_at is None
            or link.expires_at <= utcnow()):
        raise Refused(LINK_NOT_VALID, field="token")
    return link


async def claim(token: str, purpose: LinkPurpose, *, session: AsyncSession) -> EmailLink:
    """Use a link up: one conditional UPDATE, so of two uses at once only one succeeds."""
    link = await usable(token, purpose, session=session)
    claimed = await session.exec(
        update(EmailLink)
        .where(col(EmailLink.id) == link.id, col(EmailLink.used_at).is_(None))
        .values(used_at=utcnow())
    )
    if claimed.rowcount != 1:
        raise Refused(LINK_NOT_VALID, field="token")
    await session.refresh(link)
    return link


async def retire(email: str, purpose: LinkPurpose, *, session: AsyncSession) -> None:
    """Make every other open link of this kind for the address unusable."""
    await session.exec(
        update(EmailLink)
        .where(col(EmailLink.email) == email, col(EmailLink.purpose) == purpose,
               col(EmailLink.used_at).is_(None), col(EmailLink.token_hash).is_not(None))
        .values(used_at=utcnow())
    )
