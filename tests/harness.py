"""The platform under test, and helpers that act on it as its users do: through the HTTP API.

Every person has their own ``TestClient`` (their own cookie jar); all of them share the event
loop of one client that ran the app's lifespan, so the services on ``app.state`` serve them all.
The schema is migrated once per test session into a template file that each platform copies.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from odr import accounts
from odr.app import create_app
from odr.db import make_engine
from odr.models import AccountRole, CaseRole, CaseStatus, OutboxMail, Side
from odr.schemas import Registration
from odr.services import Services
from odr.settings import Settings
from tests.databases import database_for

T = TypeVar("T")

PASSWORD = "correct horse battery staple"
FAST_HASHING: dict[str, Any] = {"argon2_time_cost": 1, "argon2_memory_cost": 1024}
# Tests ask for English unless they are about another language.
ENGLISH = {"accept-language": "en"}

_serial = itertools.count(1)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}.{next(_serial)}.{secrets.token_hex(3)}@example.kz"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: fast password hashing, no SMTP, links on the test host."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": "",
        "secret_key": "test-secret-key",
        "public_url": "http://testserver",
        "smtp_host": "",
        # Every test client comes from one address; tests of the mail limits set their own.
        "email_link_max_per_ip": 100_000,
        **FAST_HASHING,
    }
    values.update(overrides)
    return Settings(**values)


def copy_database(source: Path, target: Path) -> None:
    """Copy a SQLite database whole (the backup API also takes what is still in the WAL)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


@dataclass
class Person:
    """Someone with an account, signed in on their own client."""

    id: int
    email: str
    name: str
    password: str
    client: TestClient


@dataclass
class Cast:
    """The people who take part in the cases a test builds, one per case role."""

    requester: Person
    party_b: Person
    representative: Person
    mediator: Person
    co_mediator: Person
    interpreter: Person
    observer: Person


def case_request(**overrides: Any) -> dict[str, Any]:
    """A valid request for mediation."""
    body: dict[str, Any] = {
        "category": "property",
        "summary": "A loan of 500 000 tenge was not repaid on time; we want a payment plan.",
        "other_party_name": "Olga Petrova",
        "other_party_contact": "olga@example.kz",
        "language": "ru",
        "region": "almaty_city",
    }
    body.update(overrides)
    return body


def mediator_profile(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "professional",
        "certificate": "MED-1",
        "languages": ["kk", "ru"],
        "regions": ["almaty_city", "almaty"],
        "specialisations": ["family", "property"],
        "bio": "Twelve years of practice.",
    }
    body.update(overrides)
    return body


FORM_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def form_token(client: TestClient, path: str = "/") -> str:
    """Open a page as a browser would and read the token its forms carry (from the page)."""
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    found = FORM_TOKEN.search(page.text)
    assert found, path
    return found[1]


def expect(response: httpx2.Response, status: int) -> Any:
    """The response's JSON, after checking its status (the body is shown when it differs)."""
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


def sign_contract(case_id: int, signers: list[tuple[Any, str, str]]) -> dict[str, Any]:
    """Each signer, as (client, full name, password), signs the case's mediation contract: how
    the parties consent to mediation and the sessions open. Returns the contract as the last
    signer saw it before signing."""
    contract: dict[str, Any] = {}
    for client, name, password in signers:
        got = client.get(f"/api/v1/cases/{case_id}/contract")
        assert got.status_code == 200, got.text
        contract = got.json()
        got = client.post(f"/api/v1/drafts/{contract['draft_id']}/sign",
                          json={"password": password, "full_name": name})
        assert got.status_code == 200, got.text
    return contract


def signer(person: Person) -> tuple[Any, str, str]:
    return person.client, person.name, person.password


def token_of(link: str) -> str:
    return urlsplit(link).path.rstrip("/").rsplit("/", 1)[1]


MAIL_LINK = re.compile(r"https?://\S+")


class Platform:
    """The app with its database, and helpers to make people and cases through the API."""

    def __init__(self, settings: Settings, *, db_path: Path | None) -> None:
        self.settings = settings
        self.db_path = db_path  # the SQLite file, None on PostgreSQL
        self.app: FastAPI = create_app(settings, migrate_on_start=False)
        self._main = TestClient(self.app, headers=ENGLISH)
        self._clients: list[TestClient] = []
        self._admin: Person | None = None

    def __enter__(self) -> Platform:
        self._main.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients:
            client.close()
        self._main.__exit__(*exc)

    @property
    def services(self) -> Services:
        svc: Services = self.app.state.services
        return svc

    def run(self, fn: Callable[[Services], Awaitable[T]]) -> T:
        """Run ``fn(services)`` on the app's event loop (to use the services directly)."""
        portal = self._main.portal
        assert portal is not None
        return portal.call(fn, self.services)

    def client(self, address: str = "testclient", **headers: str) -> TestClient:
        """A new browser: its own cookies, requests served by the running app."""
        client = TestClient(self.app, headers=ENGLISH | headers, client=(address, 50000))
        client.portal = self._main.portal
        self._clients.append(client)
        return client

    @property
    def anonymous(self) -> TestClient:
        return self.client()

    # --- the database, read and changed behind the app's back -------------------------------

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        """Run one statement in a transaction of its own, on either database. Parameters are
        written ``?`` (turned into named ones: SQLAlchemy's ``text`` is what both accept)."""
        names = iter(range(len(params)))
        statement = text(re.sub(r"\?", lambda _: f":p{next(names)}", query))
        values = {f"p{i}": value for i, value in enumerate(params)}

        async def execute(engine: AsyncEngine) -> list[tuple[Any, ...]]:
            async with engine.begin() as conn:
                result = await conn.execute(statement, values)
                return [tuple(row) for row in result] if result.returns_rows else []

        if self._main.portal is not None:  # running: on the app's loop and engine
            return self.run(lambda svc: execute(svc.engine))

        async def stopped() -> list[tuple[Any, ...]]:  # after the platform was closed
            engine = make_engine(self.settings.effective_database_url)
            try:
                return await execute(engine)
            finally:
                await engine.dispose()

        return asyncio.run(stopped())

    def scalar(self, query: str, *params: object) -> Any:
        rows = self.sql(query, *params)
        assert len(rows) == 1, rows
        return rows[0][0]

    # --- mail ----------------------------------------------------------------------------

    def mails_to(self, to: str) -> list[OutboxMail]:
        """What the platform has sent to an address (kept in the outbox), oldest first."""

        async def read(svc: Services) -> list[OutboxMail]:
            async with svc.maker() as session:
                return list((await session.exec(
                    select(OutboxMail).where(OutboxMail.to == to).order_by(col(OutboxMail.id))
                )).all())

        return self.run(read)

    def mailed_link(self, to: str, path: str) -> str:
        """The newest link to ``path`` (e.g. ``/signup/``) mailed to ``to``."""
        for mail in reversed(self.mails_to(to)):
            for link in MAIL_LINK.findall(mail.body):
                if urlsplit(link).path.startswith(path):
                    return str(link)
        raise AssertionError(f"no link to {path} in the mail to {to}")

    # --- people --------------------------------------------------------------------------

    def register(
        self, name: str = "Test Person", *, email: str | None = None, password: str = PASSWORD,
        address: str = "testclient",
    ) -> Person:
        """A citizen registers through the API, opens the mailed link and stays signed in."""
        client = self.client(address)
        email = email or unique_email(name.split()[0].lower())
        expect(client.post("/api/v1/auth/register",
                           json={"email": email, "name": name, "password": password}), 202)
        token = token_of(self.mailed_link(accounts.normalise_email(email), "/signup/"))
        user = expect(client.post("/api/v1/auth/register/confirm", json={"token": token}), 201)
        return Person(user["id"], user["email"], user["name"], password, client)

    def login(self, email: str, password: str = PASSWORD, *, address: str = "testclient") -> Person:
        client = self.client(address)
        user = expect(client.post("/api/v1/auth/login",
                                  json={"email": email, "password": password}), 200)
        return Person(user["id"], user["email"], user["name"], password, client)

    def create_account(self, role: AccountRole, name: str = "Staff Member") -> Person:
        """An account of any role, made as ``odr create-user`` makes it, then signed in."""
        email = unique_email(role.value)

        async def create(svc: Services) -> None:
            async with svc.maker() as session:
                await accounts.create_user(
                    Registration(email=email, name=name, password=PASSWORD), session=session,
                    hashing=svc.hashing, role=role,
                )
                await session.commit()

        self.run(create)
        return self.login(email)

    @property
    def admin(self) -> Person:
        if self._admin is None:
            self._admin = self.create_account(AccountRole.administrator, "Admin Adminov")
        return self._admin

    def mediator(self, name: str = "Aigul Mediator", **profile: Any) -> Person:
        """A registered mediator: an account with an entry in the register, made by the admin."""
        person = self.register(name)
        expect(self.admin.client.put(f"/api/v1/admin/mediators/{person.id}",
                                     json=mediator_profile(**profile)), 200)
        return person

    def clerk(self, name: str = "Dinara Clerk") -> Person:
        person = self.register(name)
        court = expect(self.admin.client.post(
            "/api/v1/admin/courts", json={"name": "Almaty City Court", "region": "almaty_city"}
        ), 201)
        expect(self.admin.client.post(
            f"/api/v1/admin/courts/{court['id']}/clerks/{person.id}", json={}), 200)
        return person

    def cast(self) -> Cast:
        return Cast(
            requester=self.register("Erlan Requester"),
            party_b=self.register("Olga PartyB"),
            representative=self.register("Ruslan Lawyer"),
            mediator=self.mediator("Aigul Mediator"),
            co_mediator=self.mediator("Bolat Comediator"),
            interpreter=self.register("Indira Interpreter"),
            observer=self.register("Oleg Observer"),
        )

    # --- cases ---------------------------------------------------------------------------

    def invite(
        self, case_id: int, inviter: Person, email: str, role: CaseRole, side: Side | None = None
    ) -> str:
        """Invite by e-mail through the API; returns the invitation token from the link."""
        created = expect(inviter.client.post(
            f"/api/v1/cases/{case_id}/invitations",
            json={"email": email, "role": role.value, "side": side.value if side else None},
        ), 201)
        return token_of(created["link"])

    def invite_and_accept(
        self, case_id: int, inviter: Person, person: Person, role: CaseRole,
        side: Side | None = None,
    ) -> None:
        token = self.invite(case_id, inviter, person.email, role, side)
        expect(person.client.post(f"/api/v1/invitations/{token}/accept", json={}), 200)

    def build_case(self, cast: Cast, status: CaseStatus = CaseStatus.accepted) -> int:
        """A case in ``status`` with every role of the cast in it, made through the API.

        Before a mediator takes the case only the requester invites, so a ``requested`` case
        has the requester, party B, the representative and the interpreter; the chosen
        mediator is ``cast.mediator``. From ``accepted`` on, all seven take part, and party B
        has not consented until ``consented``.
        """
        case = expect(cast.requester.client.post(
            "/api/v1/cases", json=case_request(mediator_id=cast.mediator.id)), 201)
        case_id: int = case["id"]
        if status == CaseStatus.requested:
            self._invite_all(case_id, cast.requester, [
                (cast.party_b, CaseRole.party, Side.b),
                (cast.representative, CaseRole.representative, Side.a),
                (cast.interpreter, CaseRole.interpreter, Side.b),
            ])
            return case_id
        if status == CaseStatus.declined:
            expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/status",
                                             json={"status": "declined"}), 200)
            return case_id
        expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/accept", json={}), 200)
        self._invite_all(case_id, cast.mediator, [
            (cast.party_b, CaseRole.party, Side.b),
            (cast.representative, CaseRole.representative, Side.a),
            (cast.co_mediator, CaseRole.co_mediator, None),
            (cast.interpreter, CaseRole.interpreter, Side.b),
            (cast.observer, CaseRole.observer, None),
        ])
        if status == CaseStatus.accepted:
            return case_id
        if status == CaseStatus.withdrawn:
            self.set_status(cast.requester, case_id, CaseStatus.withdrawn)
            return case_id
        sign_contract(case_id, [signer(p) for p in (cast.requester, cast.party_b, cast.mediator)])
        got = expect(cast.party_b.client.get(f"/api/v1/cases/{case_id}"), 200)
        assert got["status"] == "consented"
        if status == CaseStatus.consented:
            return case_id
        self.set_status(cast.mediator, case_id, CaseStatus.in_session)
        if status == CaseStatus.in_session:
            return case_id
        if status == CaseStatus.no_agreement:
            self.set_status(cast.mediator, case_id, CaseStatus.no_agreement)
            return case_id
        raise ValueError(f"cannot build a case in status {status.value} through the API yet")

    def _invite_all(
        self, case_id: int, inviter: Person, invitees: list[tuple[Person, CaseRole, Side | None]]
    ) -> None:
        for person, role, side in invitees:
            self.invite_and_accept(case_id, inviter, person, role, side)

    def set_status(self, person: Person, case_id: int, status: CaseStatus) -> None:
        got = expect(person.client.post(f"/api/v1/cases/{case_id}/status",
                                        json={"status": status.value}), 200)
        assert got["status"] == status.value


def open_platform(tmp_path: Path, template_db: Path | str, **overrides: Any) -> Platform:
    """A platform on a fresh copy of the migrated database (not started): a file in
    ``tmp_path``, or on PostgreSQL a database copied from the one named ``template_db``."""
    if isinstance(template_db, str):
        settings = make_settings(tmp_path, database_url=database_for(tmp_path, template_db),
                                 **overrides)
        return Platform(settings, db_path=None)
    settings = make_settings(tmp_path, **overrides)
    db_path = tmp_path / "odr.sqlite3"
    if not db_path.exists():
        copy_database(template_db, db_path)
    return Platform(settings, db_path=db_path)
