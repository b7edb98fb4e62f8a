"""HTML form handling: CSRF check, validation with the API's schemas, errors beside the fields."""

from __future__ import annotations

import secrets
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from odr.deps import CSRF_COOKIE
from odr.errors import N_, Forbidden, Refused
from odr.i18n import Translator
from odr.validation import describe_errors

M = TypeVar("M", bound=BaseModel)
LIST_FIELDS = frozenset({"languages", "regions", "specialisations"})


class FormInvalid(Exception):
    """The form has errors; ``errors`` maps a field to its translated message."""

    def __init__(self, errors: dict[str, str], values: dict[str, Any]) -> None:
        super().__init__("form invalid")
        self.errors = errors
        self.values = values


async def read_form(request: Request) -> dict[str, Any]:
    """The posted fields, after checking the double-submitted CSRF token."""
    form = await request.form()
    token = str(form.get("csrf", ""))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not token or not cookie or not secrets.compare_digest(token, cookie):
        raise Forbidden(N_("The form has expired or was sent from elsewhere. Please try again."))
    values: dict[str, Any] = {}
    for key in form:
        if key == "csrf":
            continue
        items = [str(v) for v in form.getlist(key)]
        values[key] = items if key in LIST_FIELDS else items[-1]
    return values


def parse(schema: type[M], values: dict[str, Any], tr: Translator) -> M:
    """Validate form values with an API schema; empty optional fields count as absent."""
    cleaned = {k: v for k, v in values.items() if v != ""}
    try:
        return schema.model_validate(cleaned)
    except ValidationError as exc:
        errors = {e["field"]: e["message"] for e in describe_errors(exc.errors(), tr)}
        raise FormInvalid(errors, values) from exc


def refusal_as_form_error(exc: Refused, values: dict[str, Any], tr: Translator) -> FormInvalid:
    return FormInvalid({exc.field or "__all__": tr.gettext(exc.message, **exc.params)}, values)
