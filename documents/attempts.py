"""Limits on confirming a signature, as sign-in has them (``odr.accounts``).

Wrong passwords and codes are counted per signatory and agreement. After ``MAX_FAILURES`` in
``WINDOW`` the signatory cannot sign that agreement until the oldest of them is out of the
window, and their codes still open are spent: a six-digit code meets at most a handful of
guesses. Codes are limited too: each open code is one more number a guess can hit.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.models import Agreement, SigningCode, SigningFailure
from odr.errors import N_, TooManyAttempts
from odr.models import utcnow

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
MAX_OPEN_CODES = 3


async def _failures(session: AsyncSession, agreement_id: int, user_id: int
                    ) -> tuple[int, datetime | None]:
    """How many wrong confirmations in the window, and when the oldest of them was."""
    count, oldest = (await session.exec(
        select(func.count(), func.min(SigningFailure.at))
        .where(SigningFailure.agreement_id == agreement_id, SigningFailure.user_id == user_id,
               col(SigningFailure.at) > utcnow() - WINDOW))).one()
    return int(count), oldest


async def check(session: AsyncSession, agreement_id: int, user_id: int) -> None:
    """Refuse while the signatory is locked out of signing this agreement.

    Confirmations of one agreement are taken one at a time until the caller's transaction ends
    (the agreement's row is locked on PostgreSQL; SQLite transactions already hold the write
    lock): otherwise a burst of parallel guesses would all pass this check before any of them
    is counted.
    """
    await session.exec(select(Agreement.id).where(Agreement.id == agreement_id).with_for_update())
    count, oldest = await _failures(session, agreement_id, user_id)
    if count >= MAX_FAILURES and oldest is not None:
        left = (oldest + WINDOW - utcnow()).total_seconds()
        raise TooManyAttempts(
            N_("Too many wrong passwords or codes. Signing is locked for %(minutes)d min."),
            minutes=max(1, math.ceil(left / 60)))


async def record_failure(session: AsyncSession, agreement_id: int, user_id: int) -> None:
    """Count a wrong password or code, committed at once (signing writes nothing before the
    confirmation, so nothing else is committed with it)."""
    session.add(SigningFailure(agreement_id=agreement_id, user_id=user_id))
    await session.flush()
    count, _oldest = await _failures(session, agreement_id, user_id)
    if count >= MAX_FAILURES:
        await session.exec(
            update(SigningCode)
            .where(col(SigningCode.agreement_id) == agreement_id,
                   col(SigningCode.user_id) == user_id, col(SigningCode.used_at).is_(None))
            .values(used_at=utcnow()))
    await session.commit()


async def check_code_request(session: AsyncSession, agreement_id: int, user_id: int) -> None:
    """Refuse another code while the signatory is locked out or has enough codes open."""
    await check(session, agreement_id, user_id)
    open_codes = (await session.exec(
        select(func.count()).select_from(SigningCode)
        .where(SigningCode.agreement_id == agreement_id, SigningCode.user_id == user_id,
               col(SigningCode.used_at).is_(None), col(SigningCode.expires_at) > utcnow()))
    ).one()
    if open_codes >= MAX_OPEN_CODES:
        raise TooManyAttempts(N_("Codes have already been sent to you: use the latest one, or "
                                 "ask for a new one when they expire."))
