"""Security headers on every page route and the API: no framing, no inline script, no sniffing,
no referrer to other sites, camera and microphone only in the room, HSTS only over https."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from odr.models import CaseStatus
from tests.harness import Cast, Platform, open_platform

REQUIRED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
PARAM = re.compile(r"\{(\w+)(:\w+)?\}")


def get_routes(platform: Platform) -> list[str]:
    """Every GET route the app serves (pages and API), with its path parameters filled in."""
    paths = []
    routes = list(platform.app.routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # an included router
        if included is not None:
            routes.extend(included.routes)
        elif isinstance(route, APIRoute) and "GET" in (route.methods or set()):
            paths.append(PARAM.sub("1", route.path))
    return sorted(set(paths))


def assert_secure(response_headers: dict[str, str], path: str) -> None:
    for name, value in REQUIRED.items():
        assert response_headers.get(name) == value, (path, name)
    policy = response_headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, path
    if path not in {"/docs", "/redoc"}:
        script = re.search(r"script-src ([^;]+)", policy)
        assert script and script[1].strip() == "'self'", (path, policy)


def test_every_route_sends_the_security_headers(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.in_session)
    paths = get_routes(platform)
    assert len(paths) > 20  # pages and API alike
    for person in (None, cast.mediator):
        client = person.client if person else platform.anonymous
        for path in paths + ["/static/app.js", "/no-such-page", "/api/v1/no-such-route"]:
            response = client.get(path, follow_redirects=False)
            assert response.status_code < 500, (path, response.status_code)
            headers = dict(response.headers)
            assert_secure(headers, path)
            # The room and the device check may ask for the camera and microphone (signed in).
            if path not in ("/cases/1/room", "/check") or person is None:
                assert "camera=()" in headers["permissions-policy"], path
                assert "microphone=()" in headers["permissions-policy"], path

    # The room page and the device check alone may ask for the camera and the microphone.
    check = cast.mediator.client.get("/check")
    assert check.status_code == 200 and "camera=(self)" in check.headers["permissions-policy"]
    room = cast.mediator.client.get(f"/cases/{case_id}/room")
    assert room.status_code == 200
    assert_secure(dict(room.headers), "/cases/{id}/room")
    permissions = room.headers["permissions-policy"]
    assert "camera=(self)" in permissions and "microphone=(self)" in permissions
    assert "strict-transport-security" not in room.headers  # served over http here


def test_pages_have_no_inline_script(platform: Platform, cast: Cast) -> None:
    """The CSP refuses inline script, so none of our pages may rely on it."""
    case_id = platform.build_case(cast, CaseStatus.in_session)
    for path in ["/", "/login", "/signup", "/dashboard", f"/cases/{case_id}",
                 f"/cases/{case_id}/room", "/mediators", "/verify", "/settings"]:
        html = cast.mediator.client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\son[a-z]+=", html), path


def test_hsts_when_the_public_url_is_https(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db, public_url="https://odr.example.kz") as platform:
        response = platform.anonymous.get("/login")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        # The form token's seed cookie carries the __Host- prefix over https.
        cookie = response.headers.get("set-cookie", "")
        assert cookie.startswith("__Host-odr_csrf=") and "Secure" in cookie, cookie


@pytest.mark.parametrize("path", ["/api/v1/mediators", "/healthz"])
def test_api_answers_carry_the_headers(platform: Platform, path: str) -> None:
    response = platform.anonymous.get(path)
    assert response.status_code == 200
    assert_secure(dict(response.headers), path)
