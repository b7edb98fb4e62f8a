"""Accounts: creation, sign-in with attempt limits, server-side sessions, API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import available_timezones

from sqlalchemy import delete, func, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.errors import N_, Conflict, TooManyAttempts, Unauthenticated
from odr.models import AccountRole, ApiToken, AuthSession, LoginFailure, User, utcnow
from odr.schemas import Registration
from odr.security import PasswordHashing, new_token, token_hash
from odr.settings import Settings


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def user_by_email(email: str, *, session: AsyncSession) -> User | None:
    return (
        await session.exec(select(User).where(User.email == normalise_email(email)))
    ).first()


async def create_user(
    data: Registration,
    *,
    session: AsyncSession,
    hashing: PasswordHashing,
    role: AccountRole = AccountRole.party,
) -> User:
    """Create an account at once (administrators, ``odr create-user``); the e-mail must be new.

    Self-registration does not come here directly: it confirms the address first
    (``odr.signup``), so that its answer cannot tell whether an address has an account.
    """
    return await add_user(
        data.email, data.name, await hashing.hash_async(data.password), session=session,
        role=role, language=data.language, timezone=data.timezone,
    )


async def add_user(
    email: str,
    name: str,
    password_hash: str,
    *,
    session: AsyncSession,
    role: AccountRole = AccountRole.party,
    language: str | None = None,
    timezone: str | None = None,
) -> User:
    """Store a new account whose password is already hashed; the e-mail must be new."""
    if await user_by_email(email, session=session):
        raise Conflict(N_("An account with this e-mail already exists."), field="email")
    user = User(
        email=normalise_email(email),
        name=name.strip(),
        password_hash=password_hash,
        role=role,
        language=language,
    )
    if timezone and timezone in available_timezones():
        user.timezone = timezone
    session.add(user)
    await session.flush()
    return user


async def authenticate(
    email: str,
    password: str,
    *,
    ip: str,
    session: AsyncSession,
    hashing: PasswordHashing,
    settings: Settings,
) -> User:
    """Check a password, refusing early while too many recent attempts failed.

    Failures are counted per account (guessing one person's password) and per address
    (trying many accounts); a success does not erase the address's count.
    """
    email = normalise_email(email)
    since = utcnow() - timedelta(minutes=settings.login_window_minutes)
    by_account = await _count_failures(session, since, email=email)
    by_address = await _count_failures(session, since, ip=ip)
    if (
        by_account >= settings.login_max_failures_account
        or by_address >= settings.login_max_failures_address
    ):
        raise TooManyAttempts(
            N_("Too many failed sign-in attempts. Try again in %(minutes)d minutes."),
            minutes=settings.login_window_minutes,
        )
    user = await user_by_email(email, session=session)
    stored = user.password_hash if user and user.active else None
    # Always one argon2 verification (against the dummy hash when there is no usable account):
    # an unknown address must take as long to refuse as a wrong password. The lockout above
    # counts failures by the typed address whether or not it has an account, so a locked
    # account and a locked unknown address are refused alike too.
    verified = await hashing.verify_async(stored, password)
    if user is None or not verified:
        session.add(LoginFailure(email=email, ip=ip))
        await session.commit()
        raise Unauthenticated(N_("Wrong e-mail or password."))
    if stored is not None and hashing.needs_rehash(stored):
        user.password_hash = await hashing.hash_async(password)
        session.add(user)
    await forget_failures(email, session=session)
    return user


async def _count_failures(
    session: AsyncSession, since: datetime, *, email: str | None = None, ip: str | None = None
) -> int:
    query = select(func.count()).select_from(LoginFailure).where(LoginFailure.at >= since)
    if email is not None:
        query = query.where(LoginFailure.email == email)
    if ip is not None:
        query = query.where(LoginFailure.ip == ip)
    return int((await session.exec(query)).one())


async def start_session(
    user: User, *, ip: str, session: AsyncSession, settings: Settings
) -> tuple[str, AuthSession]:
    """Open a browser session; returns the cookie value (only its hash is stored)."""
    token = new_token()
    auth = AuthSession(
        token_hash=token_hash(token),
        user_id=user.id or 0,
        csrf_token=new_token(),
        expires_at=utcnow() + timedelta(days=settings.session_days),
        ip=ip,
    )
    session.add(auth)
    await session.flush()
    return token, auth


async def session_user(token: str, *, session: AsyncSession) -> tuple[AuthSession, User] | None:
    row = (
        await session.exec(
            select(AuthSession, User)
            .join(User, col(User.id) == col(AuthSession.user_id))
            .where(AuthSession.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        return None
    auth, user = row
    if auth.expires_at <= utcnow() or not user.active:
        return None
    return auth, user


async def end_session(token: str, *, session: AsyncSession) -> None:
    await session.exec(
        delete(AuthSession).where(col(AuthSession.token_hash) == token_hash(token))
    )


async def end_all_sessions(user: User, *, session: AsyncSession) -> None:
    """Sign the account out everywhere (its API tokens are a separate matter and stay)."""
    await session.exec(delete(AuthSession).where(col(AuthSession.user_id) == user.id))


async def forget_failures(email: str, *, session: AsyncSession) -> None:
    await session.exec(
        delete(LoginFailure).where(col(LoginFailure.email) == normalise_email(email))
    )


async def create_api_token(user: User, name: str, *, session: AsyncSession) -> tuple[str, ApiToken]:
    """A personal token for scripts and court systems; shown once, stored as a hash."""
    token = "odr_" + new_token()
    row = ApiToken(user_id=user.id or 0, name=name, token_hash=token_hash(token))
    session.add(row)
    await session.flush()
    return token, row


# An API token's last use is kept to the minute: recording every use would turn every read
# made with a token into a write, and reads are meant never to wait for the write lock.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


async def api_token_user(token: str, *, session: AsyncSession,
                         maker: async_sessionmaker[AsyncSession]) -> User | None:
    """The account behind an API token, if the token is one of ours and the account is active;
    its use is noted (to the minute) in a transaction of its own, made with ``maker``."""
    row = (
        await session.exec(
            select(ApiToken, User)
            .join(User, col(User.id) == col(ApiToken.user_id))
            .where(ApiToken.token_hash == token_hash(token))
        )
    ).first()
    if row is None or not row[1].active:
        return None
    api_token, user = row
    # Ends the look-up's transaction first: on a write request it holds SQLite's write lock,
    # which the note below would otherwise wait for.
    await session.commit()
    now = utcnow()
    if api_token.last_used_at is None or now - api_token.last_used_at >= TOKEN_USE_RESOLUTION:
        async with maker() as own:
            await own.exec(update(ApiToken).where(col(ApiToken.id) == api_token.id)
                           .values(last_used_at=now))
            await own.commit()
    return user
