"""Forged-request defence, one rule for page forms, cookie-authenticated API writes and sockets.

A browser sends our cookies with requests that other pages start, and cookies do not isolate
ports or sibling subdomains: a page on ``127.0.0.1:9402`` can read and set the cookies of
``127.0.0.1:9400``. So neither a cookie value nor "the field equals the cookie" proves that a
form came from our pages. Two checks do:

- where the request came from: an unsafe request (or a WebSocket handshake) whose ``Origin``
  names another origin than the configured public URL is refused; without ``Origin``, a
  ``Sec-Fetch-Site`` other than ``same-origin``/``none`` is refused (a browser sends one of the
  two; a request with neither is not from a browser and carries no one else's cookies);
- a token no other origin can know: for a signed-in browser the per-session value kept in the
  database (``AuthSession.csrf_token``), never put in a cookie; before sign-in an HMAC, with the
  server's secret, of a random cookie (a forger who sets that cookie still cannot compute it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from odr.errors import N_, Forbidden
from odr.models import AuthSession
from odr.openapi import refuses
from odr.settings import Settings

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sec-Fetch-Site values of requests our own pages (or the user typing an address) start.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
FORGED = N_("The request was refused as a possible forgery. Reload the page.")
FORM_EXPIRED = N_("The form has expired or was sent from elsewhere. Please try again.")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(settings: Settings) -> frozenset[str]:
    return frozenset({origin_of(settings.public_url)})


def from_our_pages(headers: Mapping[str, str], settings: Settings) -> bool:
    """Whether a browser request was started by a page of the public URL (or by no page)."""
    origin = headers.get("origin")
    if origin is not None:
        # "null" (sandboxed frames, some redirects) names no origin we trust.
        return origin.lower() in allowed_origins(settings)
    site = headers.get("sec-fetch-site")
    return site is None or site in OWN_FETCH_SITES


def has_bearer(headers: Mapping[str, str]) -> bool:
    """API tokens are not sent by browsers on their own, so they need no forgery checks."""
    return headers.get("authorization", "").lower().startswith("bearer ")


@refuses(unsafe=(403,))
async def guard(conn: HTTPConnection) -> None:
    """App-wide dependency: every unsafe request must come from our pages (or no browser)."""
    if conn.scope["type"] != "http" or conn.scope["method"] not in UNSAFE:
        return  # sockets check the same rule in their handshake (``from_our_pages``)
    if has_bearer(conn.headers):
        return
    settings: Settings = conn.app.state.services.settings
    if not from_our_pages(conn.headers, settings):
        raise Forbidden(FORGED)


def cookie_name(settings: Settings) -> str:
    # Over https the __Host- prefix makes the browser refuse the cookie from a sibling
    # subdomain or over plain http; another port of the same host is answered by the HMAC.
    return "__Host-odr_csrf" if settings.secure_cookies else "odr_csrf"


def _anonymous_token(seed: str, settings: Settings) -> str:
    key = settings.effective_secret_key.encode()
    return hmac.new(key, b"csrf-anonymous:" + seed.encode(), hashlib.sha256).hexdigest()


def expected_token(conn: HTTPConnection, browser: AuthSession | None,
                   settings: Settings) -> str | None:
    """The token this browser's forms must carry; None when it has no seed cookie yet."""
    if browser is not None:
        return browser.csrf_token
    seed = conn.cookies.get(cookie_name(settings))
    return _anonymous_token(seed, settings) if seed else None


def token_for_page(conn: HTTPConnection, browser: AuthSession | None,
                   settings: Settings) -> tuple[str, str | None]:
    """The token to put in a page's forms, and a new seed cookie to set if one is needed."""
    token = expected_token(conn, browser, settings)
    if token is not None:
        return token, None
    seed = secrets.token_urlsafe(24)
    return _anonymous_token(seed, settings), seed


def token_valid(presented: str, conn: HTTPConnection, browser: AuthSession | None,
                settings: Settings) -> bool:
    expected = expected_token(conn, browser, settings)
    return bool(presented) and expected is not None and hmac.compare_digest(presented, expected)


def browser_of(conn: HTTPConnection) -> AuthSession | None:
    """The signed-in browser session found by the ``auth`` dependency, if it ran."""
    found = getattr(conn.state, "auth", None)
    return getattr(found, "browser", None)
