"""The cookies the platform sets, in one place so their flags cannot drift apart."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from odr import accounts, forgery
from odr.deps import LANG_COOKIE, SESSION_COOKIE, client_ip
from odr.models import User
from odr.settings import Settings


def set_session(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=settings.session_days * 86400, httponly=True,
        samesite="lax", secure=settings.secure_cookies, path="/",
    )


async def sign_in(response: Response, user: User, *, request: Request, session: AsyncSession,
                  settings: Settings) -> None:
    """Open a browser session for ``user``, commit, and put its cookie on ``response``."""
    token, _ = await accounts.start_session(user, ip=client_ip(request), session=session,
                                            settings=settings)
    await session.commit()
    set_session(response, token, settings)


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=settings.secure_cookies, path="/"
    )


def set_csrf(response: Response, seed: str, settings: Settings) -> None:
    # The seed of the anonymous form token (``forgery``): no script needs it, so HttpOnly.
    response.set_cookie(
        forgery.cookie_name(settings), seed, httponly=True, samesite="lax",
        secure=settings.secure_cookies, path="/",
    )


def set_language(response: Response, language: str, settings: Settings) -> None:
    response.set_cookie(
        LANG_COOKIE, language, max_age=365 * 86400, httponly=True, samesite="lax",
        secure=settings.secure_cookies, path="/",
    )
