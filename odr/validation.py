"""Validation errors told in the user's language, one message per field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from odr.errors import N_
from odr.i18n import Translator

MESSAGES = {
    "missing": N_("This field is required."),
    "string_too_short": N_("Too short: at least %(min_length)s characters."),
    "string_too_long": N_("Too long: at most %(max_length)s characters."),
    "too_long": N_("Too many entries."),
    "enum": N_("Choose one of the offered values."),
    "literal_error": N_("Choose one of the offered values."),
    "string_pattern_mismatch": N_("Choose one of the offered values."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "bool_parsing": N_("Enter yes or no."),
    "datetime_parsing": N_("Enter a date and time."),
    "datetime_from_date_parsing": N_("Enter a date and time."),
    "datetime_type": N_("Enter a date and time."),
    "date_parsing": N_("Enter a date."),
    "date_from_datetime_parsing": N_("Enter a date."),
    "date_type": N_("Enter a date."),
    "greater_than_equal": N_("Must be at least %(ge)s."),
    "less_than_equal": N_("Must be at most %(le)s."),
    "json_invalid": N_("The request body is not valid JSON."),
    "model_attributes_type": N_("The request body must be a JSON object."),
    "dict_type": N_("The request body must be a JSON object."),
    "model_type": N_("The request body must be a JSON object."),
    "list_type": N_("Give a list of values."),
    "string_type": N_("Enter text."),
}
INVALID = N_("This value is not valid.")
EMAIL = N_("Enter a valid e-mail address.")
LOCATIONS = {"body", "query", "path", "header", "cookie", "form"}


def field_name(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
    return ".".join(parts)


def describe_errors(errors: Iterable[Mapping[str, Any]], tr: Translator) -> list[dict[str, str]]:
    """Pydantic's errors as ``[{"field", "message"}]``, translated; the first per field wins."""
    described: dict[str, str] = {}
    for error in errors:
        kind = str(error.get("type", ""))
        # A body that is not JSON has no field; pydantic's location there is a byte offset.
        field = "" if kind == "json_invalid" else field_name(error.get("loc", ()))
        if field in described:
            continue
        ctx = dict(error.get("ctx") or {})
        if kind == "value_error":
            inner = str(ctx.get("error", ""))
            if "email" in field.split(".")[-1] or "email" in inner.lower():
                message = tr.gettext(EMAIL)
            else:
                message = tr.gettext(inner) if inner else tr.gettext(INVALID)
        elif kind in MESSAGES:
            params = {k: v for k, v in ctx.items() if isinstance(v, int | float | str)}
            try:
                message = tr.gettext(MESSAGES[kind], **params)
            except (KeyError, TypeError):
                message = tr.gettext(MESSAGES[kind])
        else:
            message = tr.gettext(INVALID)
        described[field] = message
    return [{"field": f, "message": m} for f, m in described.items()]
