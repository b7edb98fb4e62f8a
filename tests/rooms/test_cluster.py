"""Several processes: two (or three) real ``odr run`` servers on one PostgreSQL and one Redis.

The mediator connects to one process and the parties to another: the room is owned by one of
them and the other relays to it, so admission, caucuses, chat, "call the mediator", media and
the draft behave as on one process. Killing the owner moves the room without losing what was
stored; Redis going away makes new joins wait (not split), and its return lets them in.

Redis here is a server of the test's own (``redis-server`` on a free port), so that it can be
stopped and started again without touching the machine's.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.databases import create_database, drop_database, url_of
from tests.drafts.yclient import YClient
from tests.harness import case_request, sign_contract
from tests.live import free_port, live_server
from tests.rooms.conftest import Peer, Server, User, joined
from tests.rooms.media_client import eventually
from tests.rooms.test_live_media import caucus_is_sealed, publishing
from tests.rooms.test_socket import admit_all

LEASE = "3"  # seconds: a killed owner's rooms move within this (sooner when it refuses)


class RedisServer:
    """A private ``redis-server``: started, stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()  # its log says so, or it ended

        def watch(output: IO[str]) -> None:
            for line in output:  # read to the end: a full pipe would stop the server
                if "Ready to accept connections" in line:
                    ready.set()
            ready.set()

        assert self.process.stdout is not None
        threading.Thread(target=watch, args=(self.process.stdout,), daemon=True).start()
        assert ready.wait(10) and self.process.poll() is None, "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def get(self, key: str) -> str | None:
        client = redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)
        try:
            value = client.get(key)
            return None if value is None else str(value)
        finally:
            client.close()


@dataclass
class Cluster:
    database_url: str
    redis: RedisServer
    base: Path
    stack: ExitStack
    servers: list[Server]

    def start(self, name: str) -> Server:
        """One more process of the cluster (the first makes the demo accounts)."""
        port = free_port()
        data_dir = self.base / name
        env = {
            "ODR_DATABASE_URL": self.database_url, "ODR_REDIS_URL": self.redis.url,
            "ODR_NODE_URL": f"http://127.0.0.1:{port}", "ODR_OWNER_LEASE_SECONDS": LEASE,
            "ODR_SECRET_KEY": "cluster-test-secret-key-the-same-everywhere",
            "ODR_ROOM_GRACE_SECONDS": "30", "ODR_MEDIA_ADDRESSES": '["127.0.0.1"]',
        }
        live = self.stack.enter_context(live_server(data_dir, port=port, environment=env))
        server = Server(live, data_dir)
        self.servers.append(server)
        return server


@contextmanager
def cluster_of(base: Path) -> Iterator[Cluster]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    name = create_database()
    url = url_of(name)
    store = RedisServer()
    store.start()
    try:
        with ExitStack() as stack:
            cluster = Cluster(url, store, base, stack, [])
            yield cluster
            for server in cluster.servers:
                for user in server.users:
                    user.client.close()
    finally:
        store.stop()
        drop_database(name)


@dataclass
class People:
    mediator: User
    party_a: User
    party_b: User


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_of(tmp_path_factory.mktemp("cluster")) as running:
        running.start("one")
        running.start("two")
        yield running


def sign_in(server: Server, first: Server, label: str) -> User:
    """A demo account (made by the first process) signed in through ``server``."""
    user = server.login(*first.live.logins[label])
    got = user.client.patch("/api/v1/me", json={"language": "en"})
    assert got.status_code == 200, got.text
    return user


def new_case(on: Server, people: People) -> int:
    """A consented case between the demo parties, made through the API."""
    got = people.party_a.client.post("/api/v1/cases",
                                     json=case_request(mediator_id=people.mediator.id))
    assert got.status_code == 201, got.text
    case_id: int = got.json()["id"]
    got = people.mediator.client.post(f"/api/v1/cases/{case_id}/accept", json={})
    assert got.status_code == 200, got.text
    on.invite(case_id, people.mediator, people.party_b, "party", "b")
    sign_contract(case_id, [(u.client, u.name, u.password)
                            for u in (people.party_a, people.party_b, people.mediator)])
    return case_id


def new_draft(people: People, case_id: int) -> int:
    got = people.mediator.client.post(f"/api/v1/cases/{case_id}/drafts",
                                      json={"language": "en", "template": "default"})
    assert got.status_code == 201, got.text
    draft_id: int = got.json()["id"]
    return draft_id


def owner_of(cluster: Cluster, kind: str, ident: int) -> str | None:
    value = cluster.redis.get(f"odr:owner:{kind}:{ident}")
    return None if value is None else value.split(" ", 1)[0]


def chat_from(user: User, channel: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["from"] == user.id and m["channel"] == channel


async def nothing_of(peer: Peer, type: str, seconds: float) -> None:
    """No message of ``type`` reaches the peer within ``seconds``."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            await peer.next(type)


def test_a_room_across_two_processes_keeps_caucuses_sealed(cluster: Cluster) -> None:
    one, two = cluster.servers[0], cluster.servers[1]
    people = People(sign_in(one, one, "mediator"), sign_in(two, one, "party A"),
                    sign_in(two, one, "party B"))
    case_id = new_case(one, people)

    async def scenario() -> None:
        async with joined(one, people.mediator, case_id) as med:
            assert owner_of(cluster, "room", case_id) == one.url
            async with (joined(two, people.party_a, case_id) as a,
                        joined(two, people.party_b, case_id) as b):
                await admit_all(med, (a, people.party_a.id), (b, people.party_b.id))
                # Chat and "call the mediator" reach every member wherever they connected.
                await a.send("chat", channel="joint", text="Hello from process two")
                for peer in (med, b):
                    got = await peer.next("chat", chat_from(people.party_a, "joint"))
                    assert got["text"] == "Hello from process two"
                await b.send("call_mediator")
                assert (await med.next("call_mediator"))["from"] == people.party_b.id

                # A caucus with A, held by the owner on process one: B learns nothing of it.
                await med.send("caucus.open", members=[people.party_a.id])
                state = await a.state(lambda s: s["you"]["channel"] != "joint")
                caucus = state["you"]["channel"]
                await med.state(lambda s: s["you"]["channel"] == caucus)
                await med.send("chat", channel=caucus, text="Between us")
                assert (await a.next("chat", chat_from(people.mediator, caucus)))["text"] \
                    == "Between us"
                await b.send("chat", channel=caucus, text="Let me in")
                refused = await b.next("error")
                assert refused["code"] in ("forbidden", "not_found"), refused
                await nothing_of(b, "chat", 1.0)
                assert caucus not in json.dumps(b.backlog)

                # Media: every client's SDP comes from the owner's relay, through the pipe.
                await med.send("recall")
                await b.state(lambda s: people.party_a.id in s["channels"].get("joint", []))
                await media_stays_sealed(med, a, b, people)

    asyncio.run(asyncio.wait_for(scenario(), 120))


async def media_stays_sealed(med: Peer, a: Peer, b: Peer, people: People) -> None:
    async with publishing((med, people.mediator.id, "blue"), (a, people.party_a.id, "red"),
                          (b, people.party_b.id, "green")) as (cm, ca, cb):
        await eventually(lambda: cb.frames["blue"] >= 5 and cb.frames["red"] >= 5, 30,
                         "B (process two) sees the mediator (one) and A (two)")
        await eventually(lambda: cm.frames["red"] >= 5 and cm.frames["green"] >= 5, 30,
                         "the mediator sees both parties")
        await caucus_is_sealed(med, ca, cb, people.mediator.id, people.party_a.id)


def test_a_removal_on_one_process_closes_the_socket_held_by_another(cluster: Cluster) -> None:
    one, two = cluster.servers[0], cluster.servers[1]
    people = People(sign_in(one, one, "mediator"), sign_in(two, one, "party A"),
                    sign_in(one, one, "party B"))
    case_id = new_case(one, people)

    async def scenario() -> None:
        # A makes process two the owner; B's socket goes through process one to it.
        async with joined(two, people.party_a, case_id), \
                joined(one, people.party_b, case_id) as b:
            assert owner_of(cluster, "room", case_id) == two.url
            removed = await asyncio.to_thread(
                people.mediator.client.post,
                f"/api/v1/cases/{case_id}/participants/{people.party_b.id}/remove",
                json={"reason": "Asked to leave the mediation."})
            assert removed.status_code == 200, removed.text
            async with asyncio.timeout(10):
                error = await b.next("error")
                await b.ws.wait_closed()
            assert error["code"] == "removed"
            assert b.ws.close_code == 4403

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_draft_edited_through_two_processes_is_one_document(cluster: Cluster) -> None:
    one, two = cluster.servers[0], cluster.servers[1]
    people = People(sign_in(one, one, "mediator"), sign_in(two, one, "party A"),
                    sign_in(two, one, "party B"))
    draft_id = new_draft(people, new_case(one, people))

    def ws(server: Server) -> str:
        return f"{server.ws_url}/ws/drafts/{draft_id}"

    async def scenario() -> None:
        async with (YClient(ws(one), f"odr_session={people.mediator.cookie}") as med,
                    YClient(ws(two), f"odr_session={people.party_a.cookie}") as a):
            await med.synced.wait()
            await a.synced.wait()
            a.add_paragraph("Paid in three instalments.")
            await med.wait_for(lambda c: "three instalments" in c.text())
            med.add_paragraph("First instalment by 1 March.")
            await a.wait_for(lambda c: "1 March" in c.text())
            async with YClient(ws(two), f"odr_session={people.party_b.cookie}") as late:
                await late.wait_for(lambda c: c.text() == med.text())
            assert a.text() == med.text()
        # Stored once, by the owner: the API of either process reads the same text.
        for client in (people.mediator.client, people.party_b.client):
            body = client.get(f"/api/v1/drafts/{draft_id}").json()
            assert "three instalments" in body["text"] and "1 March" in body["text"], body

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_draft_frozen_through_one_process_takes_no_edit_through_the_other(
        cluster: Cluster) -> None:
    one, two = cluster.servers[0], cluster.servers[1]
    people = People(sign_in(one, one, "mediator"), sign_in(one, one, "party A"),
                    sign_in(one, one, "party B"))
    draft_id = new_draft(people, new_case(one, people))
    url = f"{two.ws_url}/ws/drafts/{draft_id}"

    async def scenario() -> None:
        # The writer connects through process two, which therefore owns the draft.
        async with YClient(url, f"odr_session={people.party_a.cookie}") as a:
            await a.synced.wait()
            assert owner_of(cluster, "draft", draft_id) == two.url
            a.add_paragraph("Agreed text.")
            await eventually(lambda: "Agreed text." in people.mediator.client.get(
                f"/api/v1/drafts/{draft_id}").json()["text"], 10, "edit stored")
            # Approved and frozen through process one, which does not hold the draft.
            for party in (people.party_a, people.party_b):
                got = party.client.post(f"/api/v1/drafts/{draft_id}/approve", json={})
                assert got.status_code == 200, got.text
            got = people.mediator.client.post(f"/api/v1/drafts/{draft_id}/freeze", json={})
            assert got.status_code == 200, got.text
            frozen = people.mediator.client.get(f"/api/v1/drafts/{draft_id}").json()
            # The owner on process two did not hear of the freeze; its writer refuses anyway.
            a.add_paragraph("Slipped in after the freeze.")
            await eventually(lambda: a.socket is not None and a.socket.close_code == 1012, 10,
                             "the writer's socket closed")
        after = people.mediator.client.get(f"/api/v1/drafts/{draft_id}").json()
        assert after["text"] == frozen["text"] and "Slipped" not in after["text"]
        assert after["version"] == frozen["version"]

    asyncio.run(asyncio.wait_for(scenario(), 60))

    # The agreement's PDF, made by process one, is the same file through process two (each
    # has a data folder of its own: the file is in the database).
    got = people.mediator.client.get(f"/api/v1/drafts/{draft_id}/agreement")
    assert got.status_code == 200, got.text
    agreement_id = got.json()["id"]
    pdfs = [who.client.get(f"/api/v1/agreements/{agreement_id}.pdf")
            for who in (people.mediator, sign_in(two, one, "party B"))]
    assert [p.status_code for p in pdfs] == [200, 200]
    assert pdfs[0].content == pdfs[1].content and pdfs[0].content.startswith(b"%PDF")

    # Signed through process one, verified through process two: one signing authority.
    for label, who in (("party A", people.party_a), ("party B", people.party_b),
                       ("mediator", people.mediator)):
        name = who.client.get("/api/v1/me").json()["name"]
        got = who.client.post(f"/api/v1/drafts/{draft_id}/sign", json={
            "full_name": name, "password": one.live.logins[label][1]})
        assert got.status_code == 200, got.text
    assert got.json()["complete"] is True
    pdf = people.mediator.client.get(f"/api/v1/agreements/{agreement_id}.pdf").content
    report = httpx.post(f"{two.url}/api/v1/verify", files={"file": ("a.pdf", pdf)},
                        timeout=30).json()
    assert report["valid"] is True, report
    assert report["match"]["complete"] is True


def test_killing_the_owner_moves_the_room_and_loses_nothing(cluster: Cluster) -> None:
    one, two = cluster.servers[0], cluster.servers[1]
    doomed = cluster.start(f"doomed-{secrets.token_hex(2)}")
    people = People(sign_in(doomed, one, "mediator"), sign_in(two, one, "party A"),
                    sign_in(two, one, "party B"))
    case_id = new_case(one, people)

    async def scenario() -> None:
        async with joined(doomed, people.mediator, case_id) as med, \
                joined(two, people.party_a, case_id) as a:
            assert owner_of(cluster, "room", case_id) == doomed.url
            await admit_all(med, (a, people.party_a.id))
            await med.send("caucus.open", members=[people.party_a.id])
            state = await a.state(lambda s: s["you"]["channel"] != "joint")
            caucus = state["you"]["channel"]
            await med.state(lambda s: s["you"]["channel"] == caucus)
            await a.send("chat", channel=caucus, text="Stored before the crash")
            await med.next("chat", chat_from(people.party_a, caucus))

            doomed.live.process.kill()
            doomed.live.process.wait()
            # A's pipe through process two ends with "restarting": the browser reconnects.
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await a.ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

        # Both come back through process two, which finds the owner gone and takes the room.
        started = time.monotonic()
        async with joined(two, people.party_a, case_id, join=False) as a2:
            await a2.send("join")
            state = await a2.state()
            assert state["you"]["channel"] == caucus, state  # the caucus, not the lobby
            history = await a2.next("history", lambda m: m["channel"] == caucus)
            assert [m["text"] for m in history["messages"]] == ["Stored before the crash"]
            assert time.monotonic() - started < 30  # within the grace period
            assert owner_of(cluster, "room", case_id) == two.url
            med_again = sign_in(one, one, "mediator")
            async with joined(one, med_again, case_id) as med2:
                await med2.state(lambda s: s["you"]["channel"] == caucus)
                await med2.send("chat", channel=caucus, text="Still here")
                assert (await a2.next("chat", chat_from(med_again, caucus)))["text"] \
                    == "Still here"

    asyncio.run(asyncio.wait_for(scenario(), 90))


def health(server: Server) -> int:
    return httpx.get(server.url + "/healthz", timeout=5).status_code


def test_while_redis_is_down_new_rooms_wait_and_then_open(cluster: Cluster) -> None:
    one = cluster.servers[0]
    people = People(sign_in(one, one, "mediator"), sign_in(one, one, "party A"),
                    sign_in(one, one, "party B"))
    held, waiting = new_case(one, people), new_case(one, people)

    async def scenario() -> None:
        async with joined(one, people.mediator, held) as med:
            cluster.redis.stop()
            try:
                await eventually(lambda: health(one) == 503, 10, "healthz reports Redis down")
                # A room this process holds goes on; a new one is refused, with the reason.
                await med.send("chat", channel="joint", text="Redis is down")
                await med.next("chat", chat_from(people.mediator, "joint"))
                async with connect(f"{one.ws_url}/ws/rooms/{waiting}", additional_headers={
                        "Cookie": f"odr_session={people.party_a.cookie}",
                        "Accept-Language": "en"}, proxy=None) as ws:
                    error = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert error["code"] == "unavailable", error
                    assert "trying again" in error["message"]
                    with pytest.raises(ConnectionClosed) as closed:
                        await asyncio.wait_for(ws.recv(), 10)
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            finally:
                cluster.redis.start()
            await eventually(lambda: health(one) == 200, 15, "healthz recovers")
            async with joined(one, people.party_a, waiting, join=False) as a:
                await a.send("join")
                await a.state()
            # The process took its lease back, so the room it held is still its own.
            await eventually(lambda: owner_of(cluster, "room", held) == one.url, 10,
                             "lease renewed")

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_without_postgres_several_processes_refuse_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="needs PostgreSQL"), live_server(
            tmp_path, ODR_REDIS_URL="redis://127.0.0.1:1/0", ODR_NODE_URL="http://x:1",
            ODR_DATABASE_URL=""):
        pass

