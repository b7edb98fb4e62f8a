"""The OpenAPI schema tells the truth about errors and closed lists: one error body for every
error status, the statuses each route really gives, and enums where only listed values pass."""

from __future__ import annotations

from typing import Any

import pytest

from odr.app import create_app
from odr.i18n import LANGUAGES
from odr.models import Category
from odr.openapi import ErrorBody
from odr.vocab import REGION_LABELS
from tests.harness import Cast, Platform, case_request, expect

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return create_app(migrate_on_start=False).openapi()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in schema["paths"].items()
            for method, op in item.items()]


def statuses(schema: dict[str, Any], method: str, path: str) -> set[int]:
    responses = schema["paths"][path][method.lower()]["responses"]
    return {int(s) for s in responses if int(s) >= 400}


def test_every_error_status_has_the_one_error_body(schema: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    body = schema["components"]["schemas"]["ErrorBody"]
    assert body["properties"]["detail"]["type"] == "string"
    assert body["required"] == ["detail"]
    for method, path, op in operations(schema):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                content = response["content"]["application/json"]["schema"]
                assert content == {"$ref": ERROR_REF}, (method, path, status)


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/api/v1/me", {401}),
    ("GET", "/api/v1/cases", {401}),
    ("POST", "/api/v1/auth/login", {400, 401, 422, 429}),
    ("POST", "/api/v1/auth/register", {400, 422}),
    ("POST", "/api/v1/cases/{case_id}/accept", {401, 403, 404, 409, 422}),
    ("GET", "/api/v1/admin/outbox", {401, 403}),
    ("PUT", "/api/v1/admin/courts/{court_id}", {400, 401, 403, 404, 422}),
    ("POST", "/api/v1/drafts/{draft_id}/sign", {400, 401, 403, 404, 409, 422, 429, 503}),
    ("POST", "/api/v1/verify", {400, 413, 422}),
    ("GET", "/api/v1/courts", set()),
    ("GET", "/healthz", {503}),  # several processes: Redis unreachable
])
def test_routes_document_the_statuses_they_give(schema: dict[str, Any], method: str, path: str,
                                                expected: set[int]) -> None:
    assert expected <= statuses(schema, method, path)
    if not expected:
        assert statuses(schema, method, path) == set()


def test_seeing_a_case_or_draft_is_refused_only_as_not_signed_in_or_not_there(
        schema: dict[str, Any]) -> None:
    for path in ("/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}/events",
                 "/api/v1/drafts/{draft_id}", "/api/v1/drafts/{draft_id}/versions"):
        assert statuses(schema, "GET", path) == {401, 404, 422}, path


def test_cookie_writes_document_the_forgery_refusal_and_reads_do_not(
        schema: dict[str, Any]) -> None:
    assert 403 in statuses(schema, "PATCH", "/api/v1/me")
    assert 403 not in statuses(schema, "GET", "/api/v1/me")


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def enum_of(schema: dict[str, Any], node: dict[str, Any]) -> list[str]:
    """The values a (possibly optional, possibly referenced) property allows."""
    node = resolve(schema, node)
    for option in node.get("anyOf", []):
        if option.get("type") != "null":
            return enum_of(schema, option)
    if node.get("type") == "array":
        return enum_of(schema, node["items"])
    values: list[str] = node["enum"]
    return values


def test_closed_lists_are_enums(schema: dict[str, Any]) -> None:
    models = schema["components"]["schemas"]
    regions, languages = sorted(REGION_LABELS), sorted(LANGUAGES)
    for model, name, values in [
        ("CaseCreate", "region", regions), ("CaseCreate", "language", languages),
        ("CasePublic", "region", regions), ("CourtIn", "region", regions),
        ("MediatorProfileIn", "regions", regions), ("MediatorProfileIn", "languages", languages),
        ("MediatorPublic", "regions", regions), ("MediatorPublic", "languages", languages),
        ("MediatorPublic", "specialisations", sorted(Category)),
        ("UserPublic", "language", languages), ("DraftCreate", "language", languages),
        ("InvitationCreate", "role", sorted(["party", "representative", "mediator",
                                             "co_mediator", "interpreter", "observer"])),
        ("CasePublic", "status", sorted(models["CaseStatus"]["enum"])),
        ("SignatoryPublic", "role", sorted(models["CaseRole"]["enum"])),
        ("FilingPublic", "status", ["accepted", "received", "rejected"]),
    ]:
        assert sorted(enum_of(schema, models[model]["properties"][name])) == values, (model, name)
    query = {p["name"]: p for p in schema["paths"]["/api/v1/mediators"]["get"]["parameters"]}
    assert sorted(enum_of(schema, query["region"]["schema"])) == regions
    assert sorted(enum_of(schema, query["language"]["schema"])) == languages
    assert sorted(enum_of(schema, query["specialisation"]["schema"])) == sorted(Category)


def test_errors_have_the_documented_shape_in_the_users_language(platform: Platform,
                                                                cast: Cast) -> None:
    client = cast.requester.client
    refused = client.post("/api/v1/cases", json=case_request(region="mars"),
                          headers={"Accept-Language": "ru"})
    body = ErrorBody.model_validate(expect(refused, 422))
    assert [e.field for e in body.errors] == ["region"]
    assert isinstance(body.detail, str) and "Выберите" in body.detail
    missing = ErrorBody.model_validate(expect(platform.anonymous.get("/api/v1/me"), 401))
    assert missing.errors == []
    found = client.get("/api/v1/mediators", params={"region": "mars"})
    assert [e.field for e in ErrorBody.model_validate(expect(found, 422)).errors] == ["region"]
