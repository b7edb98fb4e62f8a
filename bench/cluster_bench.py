"""Several processes: chat and draft-update latency with the clients split over two processes,
against all of them on one; then owners killed on a schedule, checking that no room ever has
two owners.

Real ``odr run`` servers on the machine's PostgreSQL (a database of the bench's own) and a
private ``redis-server``; clients are Python WebSocket clients in this process, so a latency is
one clock's difference (send -> receive), loopback only.

- Latency: ROOMS rooms of a mediator and two parties. "one": all three on process one. "split":
  the mediator on process one (the room's owner), the parties on process two (relayed). Party A
  chats at RATE messages/s per room; the latency is to the mediator and to party B. In each room's
  draft party A types, with a paragraph sent as soon as the last one reached both readers
  (closed loop); the latency is until both have it. Medians of p50/p99 over RUNS runs.
- Churn: three processes, ROOMS rooms with everyone joined, the clients spread over the three
  and reconnecting (to the next live process) when their socket closes, as the room page does.
  Every KILL_EVERY seconds the process owning the most rooms is killed (SIGKILL) and started
  again. Every process logs when it starts and stops holding a room; the intervals of any one
  room must never overlap between processes (a killed process's end at its kill). Printed: the
  overlaps (target 0) and how long the rooms took to be whole again after each kill.

Run ``.venv/bin/python bench/cluster_bench.py -h``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from tests.databases import create_database, drop_database, url_of  # noqa: E402
from tests.drafts.yclient import YClient  # noqa: E402
from tests.live import LiveServer, free_port, live_server  # noqa: E402
from tests.rooms.test_cluster import RedisServer  # noqa: E402

# The servers' log lines start with the local time (odr.cli), to the millisecond.
STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*"
HELD = re.compile(STAMP + r"room (\d+): held here")
RELEASED = re.compile(STAMP + r"room (\d+): no longer held here")


def wall(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass
class Account:
    id: int
    cookie: str
    client: httpx.Client


@dataclass
class Process:
    name: str
    live: LiveServer
    stack: ExitStack
    killed_at: float | None = None  # wall-clock time

    @property
    def ws(self) -> str:
        return self.live.url.replace("http://", "ws://")


class Bench:
    def __init__(self, base: Path, database_url: str, redis: RedisServer) -> None:
        self.base, self.database_url, self.redis = base, database_url, redis
        self.processes: list[Process] = []
        self.logins: dict[str, tuple[str, str]] = {}

    def start(self, name: str) -> Process:
        port = free_port()
        stack = ExitStack()
        env = {"ODR_DATABASE_URL": self.database_url, "ODR_REDIS_URL": self.redis.url,
               "ODR_NODE_URL": f"http://127.0.0.1:{port}", "ODR_OWNER_LEASE_SECONDS": "3",
               "ODR_SECRET_KEY": SECRET,
               "ODR_ROOM_GRACE_SECONDS": "60"}
        live = stack.enter_context(live_server(self.base / f"{name}-{port}", port=port,
                                               environment=env))
        process = Process(name, live, stack)
        self.logins = self.logins or dict(live.logins)
        self.processes.append(process)
        return process

    def kill(self, process: Process) -> None:
        process.killed_at = time.time()
        process.live.process.kill()
        process.live.process.wait()
        process.stack.close()


def sign_in(url: str, email: str, password: str) -> Account:
    client = httpx.Client(base_url=url, timeout=30)
    got = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    got.raise_for_status()
    return Account(got.json()["id"], str(client.cookies.get("odr_session")), client)


SECRET = "cluster-bench-secret-key-the-same-everywhere"


def demo_sets(bench: Bench, count: int) -> list[dict[str, tuple[str, str]]]:
    """COUNT demo sets (a mediator, two parties, a case), one per room: a person is in one
    room at a time."""
    from odr.demo import create_demo
    from odr.services import Services
    from odr.settings import Settings

    async def make() -> list[dict[str, tuple[str, str]]]:
        svc = Services.create(Settings(database_url=bench.database_url, secret_key=SECRET,
                                       data_dir=bench.base / "demo", argon2_time_cost=1,
                                       argon2_memory_cost=1024))
        try:
            sets = []
            for _ in range(count):
                made = await create_demo(svc, only_if_empty=False, tag=secrets.token_hex(3))
                logins = {label: (email, password) for label, email, password in made.logins}
                logins["case"] = (str(made.case_id), "")
                sets.append(logins)
            return sets
        finally:
            await svc.close()

    return asyncio.run(make())


def seat_case(url: str, logins: dict[str, tuple[str, str]]
              ) -> tuple[int, int, tuple[Account, Account, Account]]:
    """The set's case consented, with a draft: (case id, draft id, (mediator, A, B))."""
    med, a, b = (sign_in(url, *logins[r]) for r in ("mediator", "party A", "party B"))
    case_id = int(logins["case"][0])
    b.client.post(f"/api/v1/cases/{case_id}/consent", json={}).raise_for_status()
    got = med.client.post(f"/api/v1/cases/{case_id}/drafts",
                          json={"language": "en", "template": "default"})
    got.raise_for_status()
    return case_id, got.json()["id"], (med, a, b)


class Member:
    """One room socket that keeps every message, and the time it arrived."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.chat_latencies: list[float] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                message = json.loads(raw)
                if message["type"] == "chat" and message["text"].startswith("t="):
                    sent = float(message["text"][2:])
                    self.chat_latencies.append(time.perf_counter() - sent)
                else:
                    await self.inbox.put(message)

    async def wait(self, type: str, where: Any = None) -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                message = await self.inbox.get()
                if message["type"] == type and (where is None or where(message)):
                    return message

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type, **fields}))


async def open_member(process: Process, case_id: int, who: Account) -> Member:
    ws = await connect(f"{process.ws}/ws/rooms/{case_id}", proxy=None,
                       additional_headers={"Cookie": f"odr_session={who.cookie}"})
    member = Member(ws)
    await member.send("join")
    return member


async def seated_room(med_at: Process, parties_at: Process, case_id: int,
                      med: Account, a: Account, b: Account) -> list[Member]:
    m = await open_member(med_at, case_id, med)
    await m.wait("state")
    members = [m]
    for who in (a, b):
        guest = await open_member(parties_at, case_id, who)
        await m.wait("state", lambda s, u=who.id: u in s["lobby"])
        await m.send("admit", user_id=who.id)
        await guest.wait("state", lambda s: s["you"]["channel"] == "joint")
        members.append(guest)
    return members


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def has(marker: str) -> Callable[[YClient], bool]:
    return lambda client: marker in client.text()


Room = tuple[int, int, tuple[Account, Account, Account]]  # case, draft, (mediator, A, B)


async def latency_run(med_at: Process, parties_at: Process, rooms: list[Room],
                      seconds: float, rate: float) -> tuple[list[float], list[float]]:
    seated = [await seated_room(med_at, parties_at, c, *people) for c, _, people in rooms]

    async def chatter(m: list[Member]) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await m[1].send("chat", channel="joint", text=f"t={time.perf_counter()}")
            await asyncio.sleep(1 / rate)

    await asyncio.gather(*(chatter(m) for m in seated))
    await asyncio.sleep(0.5)  # the last messages in flight
    chat = [x for m in seated for x in (m[0].chat_latencies + m[2].chat_latencies)]
    for m in seated:
        for member in m:
            await member.send("leave")  # no place held for the next run
            await member.ws.wait_closed()
            member.reader.cancel()

    drafts: list[float] = []

    async def typist(draft_id: int, people: tuple[Account, Account, Account]) -> None:
        med, a, b = people
        url = f"/ws/drafts/{draft_id}"
        async with (YClient(parties_at.ws + url, f"odr_session={a.cookie}") as writer,
                    YClient(med_at.ws + url, f"odr_session={med.cookie}") as r1,
                    YClient(parties_at.ws + url, f"odr_session={b.cookie}") as r2):
            for client in (writer, r1, r2):
                await client.synced.wait()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                marker = f"p{secrets.token_hex(4)}"
                started = time.perf_counter()
                writer.add_paragraph(marker)
                for reader in (r1, r2):
                    await reader.wait_for(has(marker), 30)
                drafts.append(time.perf_counter() - started)

    await asyncio.gather(*(typist(d, people) for _, d, people in rooms))
    return chat, drafts


def latency(bench: Bench, rooms_n: int, runs: int, seconds: float, rate: float) -> None:
    one, two = bench.start("one"), bench.start("two")
    rooms = [seat_case(one.live.url, logins) for logins in demo_sets(bench, rooms_n)]
    results: dict[str, list[tuple[float, float, float, float]]] = {"one": [], "split": []}
    for _ in range(runs):
        for layout, parties_at in (("one", one), ("split", two)):
            chat, drafts = asyncio.run(latency_run(one, parties_at, rooms, seconds, rate))
            results[layout].append((percentile(chat, 0.5), percentile(chat, 0.99),
                                    percentile(drafts, 0.5), percentile(drafts, 0.99)))
    print(f"\nLatency, {rooms_n} rooms x 3 people, chat at {rate:g}/s per room, "
          f"{seconds:g} s x {runs} runs (medians), ms")
    print(f"{'layout':<8}{'chat p50':>10}{'chat p99':>10}{'draft p50':>11}{'draft p99':>11}")
    medians = {k: [statistics.median(r[i] for r in v) * 1000 for i in range(4)]
               for k, v in results.items()}
    for layout, row in medians.items():
        print(f"{layout:<8}" + "".join(f"{x:>10.2f} " for x in row))
    ratio = [s / o for s, o in zip(medians["split"], medians["one"], strict=True)]
    print(f"{'ratio':<8}" + "".join(f"{x:>10.2f} " for x in ratio)
          + "  (target: p99 split/one <= 2)")
    for process in (one, two):
        process.stack.close()


async def churn_run(bench: Bench, rooms: list[Room], kills: int, kill_every: float
                    ) -> list[float]:
    """Clients that reconnect like the room page; returns seconds to whole again per kill."""
    whole: dict[int, asyncio.Event] = {c: asyncio.Event() for c, _, _ in rooms}
    stop = asyncio.Event()

    async def client(case_id: int, who: Account, slot: int) -> None:
        while not stop.is_set():
            live = [p for p in bench.processes if p.killed_at is None]
            process = live[slot % len(live)]
            slot += 1
            try:
                ws = await connect(f"{process.ws}/ws/rooms/{case_id}", proxy=None,
                                   additional_headers={"Cookie": f"odr_session={who.cookie}"})
            except OSError:
                await asyncio.sleep(0.2)
                continue
            try:
                await ws.send(json.dumps({"type": "join"}))
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] != "state" or not message["you"]["mediator"]:
                        continue
                    for uid in message["lobby"]:
                        await ws.send(json.dumps({"type": "admit", "user_id": uid}))
                    online = [p for p in message["people"].values() if p["online"]]
                    if len(online) == 3 and not message["lobby"]:
                        whole[case_id].set()
            except ConnectionClosed:
                pass
            await asyncio.sleep(0.2)

    tasks = [asyncio.create_task(client(c, who, i + j))
             for i, (c, _, people) in enumerate(rooms) for j, who in enumerate(people)]
    recovery: list[float] = []
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in whole.values())), 60)
        for n in range(kills):
            await asyncio.sleep(kill_every)
            counts: dict[str, int] = {}
            for c in whole:
                owner = bench.redis.get(f"odr:owner:room:{c}")
                if owner:
                    counts[owner.split(" ")[0]] = counts.get(owner.split(" ")[0], 0) + 1
            victim = max((p for p in bench.processes if p.killed_at is None),
                         key=lambda p: counts.get(p.live.url, 0))
            for event in whole.values():
                event.clear()
            killed = time.monotonic()
            bench.kill(victim)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in whole.values())), 60)
            recovery.append(time.monotonic() - killed)
            await asyncio.to_thread(bench.start, f"spare{n}")
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return recovery


def overlaps(bench: Bench) -> int:
    """Pairs of processes that held the same room at the same time."""
    intervals: dict[int, list[tuple[float, float, str]]] = {}
    for p in bench.processes:
        opened: dict[int, float] = {}
        for line in list(p.live.output):
            if m := HELD.search(line):
                opened[int(m[2])] = wall(m[1])
            elif (m := RELEASED.search(line)) and int(m[2]) in opened:
                intervals.setdefault(int(m[2]), []).append(
                    (opened.pop(int(m[2])), wall(m[1]), p.name))
        end = p.killed_at or time.time()
        for room, start in opened.items():
            intervals.setdefault(room, []).append((start, end, p.name))
    found = 0
    for spans in intervals.values():
        spans.sort()
        for (_s1, e1, n1), (s2, _e2, n2) in zip(spans, spans[1:], strict=False):
            if n1 != n2 and s2 < e1:
                found += 1
    return found


def churn(bench: Bench, rooms_n: int, kills: int, kill_every: float) -> None:
    bench.processes.clear()
    for name in ("c1", "c2", "c3"):
        bench.start(name)
    url = bench.processes[0].live.url
    rooms = [seat_case(url, logins) for logins in demo_sets(bench, rooms_n)]
    recovery = asyncio.run(churn_run(bench, rooms, kills, kill_every))
    found = overlaps(bench)
    print(f"\nChurn: 3 processes, {rooms_n} rooms x 3 people, the busiest owner killed every "
          f"{kill_every:g} s, {kills} kills")
    print(f"rooms whole again after a kill: median {statistics.median(recovery):.2f} s, "
          f"max {max(recovery):.2f} s")
    print(f"rooms held by two processes at once: {found} (target 0)")
    for p in bench.processes:
        if p.killed_at is None:
            p.stack.close()


@contextmanager
def environment() -> Iterator[Bench]:
    name = create_database()
    url = url_of(name)
    redis = RedisServer()
    redis.start()
    try:
        with tempfile.TemporaryDirectory() as base:
            yield Bench(Path(base), url, redis)
    finally:
        redis.stop()
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rate", type=float, default=10, help="chat messages/s per room")
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--kill-every", type=float, default=10)
    parser.add_argument("--skip-churn", action="store_true")
    args = parser.parse_args()
    with environment() as bench:
        latency(bench, args.rooms, args.runs, args.seconds, args.rate)
        if not args.skip_churn:
            churn(bench, args.rooms, args.kills, args.kill_every)


if __name__ == "__main__":
    main()
