"""Jinja2 pages rendered in the request's language, with the CSRF token and the user at hand."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from odr import vocab
from odr.cookies import set_csrf
from odr.deps import CSRF_COOKIE
from odr.i18n import LANGUAGE_NAMES, LANGUAGES, Translator
from odr.models import User
from odr.settings import Settings

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
TEMPLATES = FRONTEND / "templates"
STATIC = FRONTEND / "static"


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        LANGUAGES=LANGUAGES, LANGUAGE_NAMES=LANGUAGE_NAMES, vocab=vocab,
    )
    return env


def local_time(value: datetime, timezone: str) -> str:
    """A UTC time as the reader's wall clock (their time zone setting)."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


class Pages:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = make_environment()

    def render(
        self,
        request: Request,
        name: str,
        tr: Translator,
        user: User | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        timezone = user.timezone if user else self.settings.default_timezone
        html = self.env.get_template(name).render(
            request=request, user=user, lang=tr.language, csrf_token=csrf,
            _=tr.gettext, gettext=tr.gettext, ngettext=tr.ngettext,
            local_time=lambda v: local_time(v, timezone), timezone=timezone,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            set_csrf(response, csrf, self.settings)
        return response
