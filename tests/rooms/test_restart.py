"""One process restarted in the middle of a session: everyone is seated again where they were,
the separate meeting is still there, and its countdown ends at the same moment (the room's
state is kept in the database when no Redis is configured)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.harness import sign_contract
from tests.live import LiveServer, free_port, live_server, query
from tests.rooms.conftest import Server, User, joined


def sign_in(server: Server, first: LiveServer, label: str) -> User:
    user = server.login(*first.logins[label])
    assert user.client.patch("/api/v1/me", json={"language": "en"}).status_code == 200
    return user


def test_a_restart_keeps_the_caucus_its_countdown_and_the_places(tmp_path: Path) -> None:
    port = free_port()
    case_id = 1  # the demo case
    with live_server(tmp_path, port=port, ODR_ROOM_GRACE_SECONDS="60") as live:
        logins = dict(live.logins)
        server = Server(live, tmp_path)
        med, a, b = (sign_in(server, live, r) for r in ("mediator", "party A", "party B"))
        sign_contract(case_id, [(u.client, u.name, u.password) for u in (a, b, med)])

        async def before() -> tuple[str, float]:
            async with (joined(server, med, case_id) as m, joined(server, a, case_id) as pa):
                await m.send("admit", user_id=a.id)
                await pa.state(lambda s: s["you"]["channel"] == "joint")
                await m.send("caucus.open", members=[a.id])
                caucus: str = (await pa.state(
                    lambda s: s["you"]["channel"] not in (None, "joint")))["you"]["channel"]
                await m.send("timer.set", channel=caucus, seconds=600)
                timer = (await m.state(lambda s: s["timer"] is not None))["timer"]
                return caucus, float(timer["ends_at"])

        caucus, ends_at = asyncio.run(before())
        users = (med, a)
    # The process stops while both still hold their places; it starts again on the same data.
    with live_server(tmp_path, port=port, ODR_ROOM_GRACE_SECONDS="60") as live:
        live.logins.update(logins)
        server = Server(live, tmp_path)
        cookies = {u.name: u.cookie for u in users}

        async def after() -> None:
            again = [User(u.id, u.name, u.email, httpx.Client(base_url=live.url,
                                                               cookies={"odr_session":
                                                                        cookies[u.name]}))
                     for u in users]
            async with (joined(server, again[0], case_id) as m,
                        joined(server, again[1], case_id) as pa):
                for peer in (m, pa):
                    state = await peer.state(lambda s: s["you"]["channel"] == caucus)
                    assert state["timer"] == {"channel": caucus, "ends_at": ends_at}
                assert caucus in (await m.state())["channels"]
            for client in again:
                client.client.close()

        asyncio.run(after())
        # The session's count before the restart was kept when the process stopped.
        rows = query(live, "SELECT count(*) FROM neutralityrecord WHERE case_id = ?", case_id)
        assert rows[0][0] >= 1

