"""A real server for the room tests, people signed in over HTTP, and WebSocket clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.browser import ARGS, CHROMIUM, FAKE_MEDIA
from tests.harness import PASSWORD, case_request, sign_contract, token_of, unique_email
from tests.live import LiveServer, live_server, mailed_link, query

TIMEOUT = 10.0


@dataclass
class User:
    id: int
    name: str
    email: str
    client: httpx.Client
    password: str = ""

    @property
    def cookie(self) -> str:
        value = self.client.cookies.get("odr_session")
        assert value, "not signed in"
        return value


@dataclass
class Cast:
    mediator: User
    party_a: User
    party_b: User
    interpreter_b: User
    observer: User
    stranger: User


@dataclass
class Server:
    live: LiveServer
    data_dir: Path
    users: list[User] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def ws_url(self) -> str:
        return self.live.url.replace("http://", "ws://")

    def client(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=TIMEOUT, headers={"accept-language": "en"})
        self.users.append(User(0, "", "", client))
        return client

    def login(self, email: str, password: str) -> User:
        client = self.client()
        got = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert got.status_code == 200, got.text
        body = got.json()
        return User(body["id"], body["name"], email, client, password)

    def demo(self, label: str) -> User:
        """A demo account, switched to English (the demo speaks Russian) so tests read errors."""
        user = self.login(*self.live.logins[label])
        got = user.client.patch("/api/v1/me", json={"language": "en"})
        assert got.status_code == 200, got.text
        return user

    def register(self, name: str) -> User:
        client = self.client()
        email = unique_email(name.split()[0].lower())
        got = client.post("/api/v1/auth/register",
                          json={"email": email, "name": name, "password": PASSWORD})
        assert got.status_code == 202, got.text
        token = token_of(mailed_link(self.live, email, "/signup/"))
        got = client.post("/api/v1/auth/register/confirm", json={"token": token})
        assert got.status_code == 201, got.text
        return User(got.json()["id"], name, email, client, PASSWORD)

    def audit(self, action: str) -> list[tuple[int | None, int | None, dict[str, Any]]]:
        rows = query(self.live, "SELECT actor_id, case_id, detail FROM auditentry "
                     "WHERE action = ? ORDER BY seq", action)
        return [(a, c, json.loads(d)) for a, c, d in rows]

    def case_status(self, by: User, case_id: int) -> str:
        got = by.client.get(f"/api/v1/cases/{case_id}")
        assert got.status_code == 200, got.text
        status: str = got.json()["status"]
        return status

    def invite(self, case_id: int, inviter: User, invitee: User, role: str,
               side: str | None) -> None:
        got = inviter.client.post(f"/api/v1/cases/{case_id}/invitations",
                                  json={"email": invitee.email, "role": role, "side": side})
        assert got.status_code == 201, got.text
        token = token_of(got.json()["link"])
        got = invitee.client.post(f"/api/v1/invitations/{token}/accept", json={})
        assert got.status_code == 200, got.text

    def case(self, cast: Cast, *, consented: bool = True) -> int:
        """A case of the cast's people, through the API as in ``tests.harness.build_case``."""
        got = cast.party_a.client.post("/api/v1/cases",
                                       json=case_request(mediator_id=cast.mediator.id))
        assert got.status_code == 201, got.text
        case_id: int = got.json()["id"]
        got = cast.mediator.client.post(f"/api/v1/cases/{case_id}/accept", json={})
        assert got.status_code == 200, got.text
        self.invite(case_id, cast.mediator, cast.party_b, "party", "b")
        self.invite(case_id, cast.mediator, cast.interpreter_b, "interpreter", "b")
        self.invite(case_id, cast.mediator, cast.observer, "observer", None)
        if consented:
            sign_contract(case_id, [(u.client, u.name, u.password)
                                    for u in (cast.party_a, cast.party_b, cast.mediator)])
            assert self.case_status(cast.mediator, case_id) == "consented"
        return case_id


@pytest.fixture(scope="package")
def room_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("rooms")
    with live_server(data_dir, ODR_ROOM_GRACE_SECONDS="30",
                     ODR_MEDIA_ADDRESSES='["127.0.0.1"]') as live:
        running = Server(live, data_dir)
        yield running
        for user in running.users:
            user.client.close()


@pytest.fixture(scope="package")
def people(room_server: Server) -> Cast:
    server = room_server
    return Cast(
        mediator=server.demo("mediator"),
        party_a=server.demo("party A"),
        party_b=server.demo("party B"),
        interpreter_b=server.register("Indira Interpreter"),
        observer=server.register("Oleg Observer"),
        stranger=server.register("Sergey Stranger"),
    )


class Peer:
    """One participant's WebSocket; reads messages into a backlog and waits for what it wants."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.backlog: list[dict[str, Any]] = []

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type, **fields}))

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def next(self, type: str, where: Callable[[dict[str, Any]], bool] | None = None
                   ) -> dict[str, Any]:
        """The first message of ``type`` (matching ``where``), from the backlog or the socket;
        what comes before it of other types stays in the backlog."""
        def wanted(msg: dict[str, Any]) -> bool:
            return msg["type"] == type and (where is None or where(msg))

        for i, msg in enumerate(self.backlog):
            if wanted(msg):
                return self.backlog.pop(i)
        async with asyncio.timeout(TIMEOUT):
            while True:
                received: dict[str, Any] = json.loads(await self.ws.recv())
                msg = received
                if wanted(msg):
                    return msg
                self.backlog.append(msg)

    async def state(self, where: Callable[[dict[str, Any]], bool] | None = None
                    ) -> dict[str, Any]:
        """Wait until the room's state, as this peer knows it, satisfies ``where``.

        The state found stays in the backlog as the peer's current one (older states are
        dropped), so a later call returns at once while it still holds.
        """
        def wanted(msg: dict[str, Any]) -> bool:
            return msg["type"] == "state" and (where is None or where(msg))

        for i, msg in enumerate(self.backlog):
            if wanted(msg):
                self.backlog = [m for j, m in enumerate(self.backlog)
                                if j >= i or m["type"] != "state"]
                return msg
        async with asyncio.timeout(TIMEOUT):
            while True:
                received: dict[str, Any] = json.loads(await self.ws.recv())
                msg = received
                if wanted(msg):
                    self.backlog = [m for m in self.backlog if m["type"] != "state"] + [msg]
                    return msg
                self.backlog.append(msg)

    def drop(self, type: str) -> None:
        self.backlog = [m for m in self.backlog if m["type"] != type]


@asynccontextmanager
async def joined(server: Server, user: User, case_id: int, *, join: bool = True,
                 **headers: str) -> AsyncIterator[Peer]:
    async with connect(f"{server.ws_url}/ws/rooms/{case_id}",
                       additional_headers={"Cookie": f"odr_session={user.cookie}",
                                           "Accept-Language": "en", **headers},
                       proxy=None) as ws:
        peer = Peer(ws, user.name)
        if join:
            await peer.send("join")
            peer.backlog.insert(0, await peer.state())
        yield peer


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium with fake camera and microphone, for the room's pages (tests skip without it:
    ``tests.browser.needs_chromium``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + FAKE_MEDIA)
        yield b
        b.close()
