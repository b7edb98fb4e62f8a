"""The error answers of the API, and the OpenAPI schema that tells them truly.

Every error, whatever its status, has one body (``ErrorBody``). Which statuses a route gives is
worked out when the schema is built: from the dependencies it uses (each marked with what it may
refuse, ``refuses``), from what the route declares for its own logic (``responses=refusals(...)``)
and 422 wherever FastAPI validates something. FastAPI's own 422 schema (a list of pydantic
errors) is never shown, because the service never sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MARK = "__odr_refusals__"
_UNSAFE_MARK = "__odr_unsafe_refusals__"

# What each status means for a client of the API (the schema is for developers: English).
MEANINGS = {
    400: "Refused as it is, or a body that could not be read; nothing was changed.",
    401: "Not signed in, or the API token is not valid.",
    403: "Not allowed by the access policy, or refused as a possible forgery.",
    404: "No such thing, or nothing the caller may see.",
    409: "Not possible in the present state of the case, draft or agreement.",
    413: "What was sent is too large.",
    422: "A value is missing or not valid; `errors` names each field.",
    429: "Too many attempts; try again later.",
    503: "A service the platform depends on is unavailable; try again later.",
}


class FieldError(BaseModel):
    field: str = Field(description="The field, dotted for nested ones; empty for the request "
                                   "as a whole (e.g. a body that is not JSON).")
    message: str = Field(description="What is wrong, in the user's language.")


class ErrorBody(BaseModel):
    """The body of every error answer of the API."""

    detail: str = Field(description="What went wrong, in the user's language.")
    errors: list[FieldError] = Field(
        default_factory=list, description="One message per field, when the refusal is about "
                                          "fields (always for 422).")


def error_response(status: int, detail: str, errors: Iterable[Mapping[str, str]] = (),
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error answer of the API, in the one shape the schema documents."""
    body = ErrorBody(detail=detail, errors=[FieldError.model_validate(e) for e in errors])
    return JSONResponse(body.model_dump(exclude_defaults=True), status_code=status,
                        headers=headers)


def refuses(*statuses: int, unsafe: Iterable[int] = ()) -> Callable[[F], F]:
    """Marks a dependency with the error statuses it may answer; ``unsafe``: only on methods
    that change something (e.g. the forgery check of cookie-authenticated writes)."""

    def mark(dependency: F) -> F:
        setattr(dependency, _MARK, frozenset(statuses))
        setattr(dependency, _UNSAFE_MARK, frozenset(unsafe))
        return dependency

    return mark


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for what a route's own logic may refuse (its dependencies are found)."""
    return {status: {"description": MEANINGS[status]} for status in statuses}


def route_statuses(route: APIRoute) -> set[int]:
    """The error statuses ``route`` may answer."""
    found = {int(s) for s in route.responses if str(s).isdigit() and int(s) >= 400}
    unsafe = bool(UNSAFE & (route.methods or set()))
    for dependency in _dependencies(route.dependant):
        found |= getattr(dependency.call, _MARK, frozenset())
        if unsafe:
            found |= getattr(dependency.call, _UNSAFE_MARK, frozenset())
    if route.body_field is not None:
        found |= {400, 422}  # 400: a body that cannot be parsed at all (e.g. a broken form)
    elif get_flat_params(route.dependant):
        found.add(422)
    return found


def _dependencies(dependant: Dependant) -> Iterable[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def error_statuses(app: FastAPI) -> dict[tuple[str, str], set[int]]:
    """``(path, method)`` of every documented route, with the error statuses it may answer."""
    found: dict[tuple[str, str], set[int]] = {}
    # Included routers are kept as contexts over the original routes: walk those.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema and context.path_format:
            for method in route.methods or ():
                found[(context.path_format, method.lower())] = route_statuses(route)
    return found


def document_errors(schema: dict[str, Any], statuses: dict[tuple[str, str], set[int]]) -> None:
    """Give every error status of every operation the one error body, replacing FastAPI's 422
    (a list of pydantic errors the service never sends)."""
    for (path, method), codes in statuses.items():
        operation = schema.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        responses = operation.setdefault("responses", {})
        for status in sorted(codes):
            declared = responses.get(str(status), {})
            responses[str(status)] = {
                "description": MEANINGS.get(status, declared.get("description", "Error")),
                "content": {"application/json": {"schema": {"$ref": f"{REF}ErrorBody"}}},
            }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    body = ErrorBody.model_json_schema(ref_template=REF + "{model}")
    components.update(body.pop("$defs", {}))
    components["ErrorBody"] = body


def install(app: FastAPI) -> None:
    """Build ``app``'s schema with its errors documented (each time FastAPI builds it anew)."""
    build = app.openapi
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = build()
        if not documented or documented[0] is not schema:
            document_errors(schema, error_statuses(app))
            documented[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
