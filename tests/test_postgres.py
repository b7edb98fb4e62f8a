"""The same service on PostgreSQL (asyncpg): migrations, the main path, and the audit chain.

Runs against the server at ``ODR_TEST_POSTGRES_URL`` in a database of its own, created here and
dropped afterwards; skipped when that server cannot be reached.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from odr import migrate
from odr.audit import ChainReport
from odr.errors import Refused
from odr.models import CaseRole, Side, User
from odr.schemas import InvitationAccept
from odr.services import Services
from tests.databases import database
from tests.harness import (
    PASSWORD,
    Platform,
    case_request,
    expect,
    make_settings,
    sign_contract,
    token_of,
)


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh, migrated database on the test server, dropped when the module is done."""
    with database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def pg_platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    with Platform(make_settings(tmp_path, database_url=database_url), db_path=None) as platform:
        yield platform


def verify(platform: Platform) -> ChainReport:
    async def check(svc: Services) -> ChainReport:
        async with svc.maker() as session:
            return await svc.audit.verify(session)

    return platform.run(check)


def test_register_request_invite_accept_on_postgres(pg_platform: Platform) -> None:
    platform = pg_platform
    requester = platform.register("Erlan Requester")
    mediator = platform.mediator("Aigul Mediator")
    assert [m["name"] for m in expect(platform.anonymous.get(
        "/api/v1/mediators", params={"language": "kk", "region": "almaty_city"}), 200)] == [
        "Aigul Mediator"]

    case_id = expect(requester.client.post(
        "/api/v1/cases", json=case_request(mediator_id=mediator.id)), 201)["id"]
    assert case_id in [c["id"] for c in expect(mediator.client.get("/api/v1/cases/open"), 200)]
    expect(mediator.client.post(f"/api/v1/cases/{case_id}/accept", json={}), 200)
    address = f"olga.{secrets.token_hex(3)}@example.kz"
    created = expect(mediator.client.post(f"/api/v1/cases/{case_id}/invitations", json={
        "email": address, "role": "party", "side": "b"}), 201)

    # No SMTP here: the administrator finds the message in the outbox.
    outbox = expect(platform.admin.client.get("/api/v1/admin/outbox"), 200)
    assert created["link"] in next(m["body"] for m in outbox if m["to"] == address)

    olga = platform.client()
    token = token_of(created["link"])
    expect(olga.post(f"/api/v1/invitations/{token}/accept",
                     json={"name": "Olga Petrova", "password": PASSWORD}), 200)
    expect(platform.client().post(f"/api/v1/invitations/{token}/accept",
                                  json={"name": "Olga Again", "password": PASSWORD}), 409)
    sign_contract(case_id, [(mediator.client, mediator.name, mediator.password),
                            (olga, "Olga Petrova", PASSWORD),
                            (requester.client, requester.name, requester.password)])
    assert expect(olga.get(f"/api/v1/cases/{case_id}"), 200)["status"] == "consented"

    starts = (datetime.now(UTC) + timedelta(days=3)).astimezone().replace(microsecond=0)
    expect(mediator.client.post(f"/api/v1/cases/{case_id}/sessions",
                                json={"starts_at": starts.isoformat()}), 201)
    listed = expect(olga.get(f"/api/v1/cases/{case_id}/sessions"), 200)
    assert datetime.fromisoformat(listed[0]["starts_at"]) == starts

    events = expect(requester.client.get(f"/api/v1/cases/{case_id}/events"), 200)
    assert [e["kind"] for e in events] == [
        "requested", "status", "invited", "joined", "contract_prepared", "contract_signed",
        "contract_signed", "contract_signed", "contract_concluded", "status",
        "session_scheduled"]

    # Failed sign-ins are counted in a time window on this engine too.
    wrong = platform.client().post("/api/v1/auth/login",
                                   json={"email": requester.email, "password": "wrong password"})
    expect(wrong, 401)
    platform.login(requester.email)

    report = expect(platform.admin.client.get("/api/v1/admin/audit/verify"), 200)
    assert report["intact"] is True and report["entries"] >= 8
    assert report["problems"] == []


def test_concurrent_appends_keep_one_chain(pg_platform: Platform) -> None:
    """Writers on separate connections are ordered by the advisory lock: no fork in the chain."""

    async def append_many(svc: Services) -> None:
        async def one(n: int) -> None:
            async with svc.maker() as session:
                await svc.audit.append(session, "test.concurrent", actor_id=None,
                                       detail={"n": n})
                await session.commit()

        await asyncio.gather(*(one(n) for n in range(20)))

    before = verify(pg_platform).entries
    pg_platform.run(append_many)
    report = verify(pg_platform)
    assert report.intact, report.problems()
    assert report.entries == before + 20


def test_nul_characters_are_refused_not_a_database_error(pg_platform: Platform) -> None:
    requester = pg_platform.register("Erlan Requester")
    body = expect(requester.client.post(
        "/api/v1/cases", json=case_request(summary="A summary with a \x00 in it.")), 422)
    assert [e["field"] for e in body["errors"]] == ["summary"]


def test_one_invitation_link_used_at_once_by_two_people_admits_one(pg_platform: Platform) -> None:
    """Two transactions accept the same link in parallel: one joins, the other is refused."""
    platform = pg_platform
    requester = platform.register("Erlan Requester")
    case_id = expect(requester.client.post("/api/v1/cases", json=case_request()), 201)["id"]
    token = platform.invite(case_id, requester, "shared.link@example.kz", CaseRole.party, Side.b)
    # The invited person, signed in twice (a link admits only its own address).
    first = platform.register("Aidar First", email="shared.link@example.kz")
    second = first

    async def accept_both(svc: Services) -> list[str]:
        both_opened = asyncio.Barrier(2)

        async def accept(user_id: int) -> str:
            async with svc.maker() as session:
                user = await session.get(User, user_id)
                # Both have read the link as unused before either accepts: the race window.
                await svc.invitations.find(token, session=session)
                await both_opened.wait()
                try:
                    await svc.invitations.accept(token, InvitationAccept(), user=user,
                                                 session=session)
                    await session.commit()
                    return "joined"
                except Refused as refused:
                    return refused.message

        return list(await asyncio.gather(accept(first.id), accept(second.id)))

    assert sorted(platform.run(accept_both)) == [
        "This invitation has already been used.", "joined"]
    people = expect(requester.client.get(f"/api/v1/cases/{case_id}"), 200)["participants"]
    assert len([p for p in people if p["name"] == "Aidar First"]) == 1


def test_the_database_refuses_to_change_an_audit_entry(pg_platform: Platform) -> None:
    pg_platform.register("Erlan Requester")  # at least one entry

    async def tamper(svc: Services) -> str:
        async with svc.maker() as session:
            try:
                await session.exec(text("DELETE FROM auditentry"))  # type: ignore[call-overload]
            except DBAPIError as refused:
                return str(refused.orig)
        return "deleted"

    assert "the audit log is append-only" in pg_platform.run(tamper)
    assert verify(pg_platform).intact
