"""Jinja2 pages rendered in the request's language, with the CSRF token and the user at hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from odr import forgery, vocab
from odr.cookies import set_csrf
from odr.errors import N_
from odr.i18n import LANGUAGE_NAMES, LANGUAGES, Translator
from odr.models import User
from odr.settings import Settings

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
TEMPLATES = FRONTEND / "templates"
STATIC = FRONTEND / "static"


# Messages shown once after a form succeeded (the key travels in the redirect's query).
FLASH = {
    "requested": N_("Your request has been sent. A mediator will take it up."),
    "accepted": N_("You have taken the case."),
    "consented": N_("Thank you: your consent to mediation is recorded."),
    "invited": N_("The invitation has been created."),
    "scheduled": N_("The session has been scheduled."),
    "status": N_("The case status has been changed."),
    "joined": N_("You have joined the case."),
    "revoked": N_("The invitation has been revoked."),
    "removed": N_("The participant has been removed from the case."),
    "saved": N_("Saved."),
    "welcome": N_("Welcome! Your account has been created."),
    "password": N_("Your new password is saved. You have been signed out everywhere else."),
    "signed": N_("Your signature has been added to the agreement."),
    "contract_signed": N_("Your signature has been added to the mediation contract."),
    "contract_terms": N_("The contract has been prepared again with the new terms."),
    "term_extended": N_("The term of mediation has been extended."),
    "closed": N_("The case is closed. The parties are asked for their feedback."),
    "feedback": N_("Thank you: your answers are kept without your name."),
    "assigned": N_("The mediator has been chosen; the request now waits for them."),
    "filed": N_("The agreement has been filed with the court. Its filing number is below."),
}


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
    try:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    except OverflowError:  # a time at the edge of the calendar: show it as stored
        return value.strftime("%Y-%m-%d %H:%M UTC")


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
        csrf, new_seed = forgery.token_for_page(request, forgery.browser_of(request),
                                                self.settings)
        flash_key = request.query_params.get("done", "")
        context.setdefault("flash", tr.gettext(FLASH[flash_key]) if flash_key in FLASH else None)
        timezone = user.timezone if user else self.settings.default_timezone
        html = self.env.get_template(name).render(
            request=request, user=user, lang=tr.language, csrf_token=csrf,
            _=tr.gettext, gettext=tr.gettext, ngettext=tr.ngettext,
            local_time=lambda v: local_time(v, timezone), timezone=timezone,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        if new_seed is not None:
            set_csrf(response, new_seed, self.settings)
        return response
