"""Security headers on every HTTP response, in one middleware so no route can forget them.

The consent and signing pages must not be framed by another site (a framed page can be
clicked through under a decoy), pages run no inline script (so injected markup cannot run
code), and only the room page may ask for the camera and microphone: a route that needs a
wider header sets its own, which this middleware then leaves alone.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from odr.forgery import origin_of
from odr.settings import Settings

DENY_DEVICES = "camera=(), microphone=(), display-capture=(), geolocation=(), payment=(), usb=()"
# FastAPI's interactive API docs load Swagger UI / ReDoc with inline script from a CDN; they
# show the schema only, never case content, and keep every other header.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com; font-src https://fonts.gstatic.com; "
    "worker-src blob:; frame-ancestors 'none'"
)


def content_policy(settings: Settings) -> str:
    origin = origin_of(settings.public_url)
    sockets = origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        # 'self' covers same-origin WebSockets in CSP 3; named too for older browsers.
        f"connect-src 'self' {sockets}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def security_headers(settings: Settings) -> list[tuple[str, str]]:
    headers = [
        ("content-security-policy", content_policy(settings)),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("permissions-policy", DENY_DEVICES),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    if settings.public_url.startswith("https://"):
        headers.append(("strict-transport-security", "max-age=31536000; includeSubDomains"))
    return headers


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.headers = security_headers(settings)
        self.docs_headers = [(k, DOCS_POLICY if k == "content-security-policy" else v)
                             for k, v in self.headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chosen = self.docs_headers if scope["path"] in DOCS_PATHS else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in chosen:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
