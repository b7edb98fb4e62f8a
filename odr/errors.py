"""Refusals raised by the logic and turned into 4xx answers in the user's language at the edge."""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Marks a message for translation where it is made; it is translated where it is shown."""
    return message


class Refused(Exception):
    """A request the platform will not carry out; nothing has been changed."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params


class NotFound(Refused):
    status_code = 404


class Forbidden(Refused):
    status_code = 403


class Unauthenticated(Refused):
    status_code = 401


class Conflict(Refused):
    """The action is out of order for the case's present state."""

    status_code = 409


class TooManyAttempts(Refused):
    status_code = 429


class Unavailable(Refused):
    """Something this server does not offer now (media without a relay, say)."""

    status_code = 503
