"""HTML form handling: CSRF check, validation with the API's schemas, errors beside the fields."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from odr import forgery
from odr.errors import Forbidden, Refused
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
    """The posted fields, after checking the form's token against this browser (``forgery``).

    The route's user dependency has already found the browser session (and the app-wide guard
    the origin), so a form rendered for this sign-in is the only one that passes.
    """
    form = await request.form()
    token = str(form.get("csrf", ""))
    settings = request.app.state.services.settings
    if not forgery.token_valid(token, request, forgery.browser_of(request), settings):
        raise Forbidden(forgery.FORM_EXPIRED)
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
