"""The demo case made ready for drafting on a real server: both parties consented, one draft."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.harness import sign_contract
from tests.live import LiveServer


@dataclass
class Person:
    name: str
    client: httpx.Client
    full_name: str = ""
    password: str = ""

    @property
    def cookie(self) -> str:
        return f"odr_session={self.client.cookies['odr_session']}"

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(path, json=body or {})

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)


def login(server: LiveServer, role: str) -> Person:
    email, password = server.logins[role]
    client = httpx.Client(base_url=server.url, headers={"accept-language": "en"}, timeout=10)
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return Person(role, client, response.json()["name"], password)


@dataclass
class DraftScene:
    server: LiveServer
    mediator: Person
    party_a: Person
    party_b: Person
    case_id: int
    draft_id: int

    def ws(self, draft_id: int | None = None) -> str:
        base = self.server.url.replace("http://", "ws://")
        return f"{base}/ws/drafts/{draft_id or self.draft_id}"

    def observer(self, email: str = "observer@example.kz") -> Person:
        """An observer invited by the mediator, with an account made from the link."""
        link = self.mediator.post(f"/api/v1/cases/{self.case_id}/invitations",
                                  {"email": email, "role": "observer"}).json()["link"]
        client = httpx.Client(base_url=self.server.url, headers={"accept-language": "en"},
                              timeout=10)
        token = link.rsplit("/", 1)[1]
        accepted = client.post(f"/api/v1/invitations/{token}/accept",
                               json={"name": "Oleg Observer", "password": "observer-pass-1"})
        assert accepted.status_code == 200, accepted.text
        return Person("observer", client)

    def text(self) -> str:
        response = self.mediator.get(f"/api/v1/drafts/{self.draft_id}")
        assert response.status_code == 200, response.text
        text: str = response.json()["text"]
        return text


def draft_scene(server: LiveServer, language: str = "ru") -> DraftScene:
    mediator, party_a, party_b = (login(server, r) for r in ("mediator", "party A", "party B"))
    case_id = 1
    sign_contract(case_id, [(p.client, p.full_name, p.password)
                            for p in (party_a, party_b, mediator)])
    assert mediator.get(f"/api/v1/cases/{case_id}").json()["status"] == "consented"
    created = mediator.post(f"/api/v1/cases/{case_id}/drafts",
                            {"language": language, "template": "default"})
    assert created.status_code == 201, created.text
    return DraftScene(server, mediator, party_a, party_b, case_id, created.json()["id"])
