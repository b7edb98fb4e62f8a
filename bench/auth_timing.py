"""Does the time of a sign-in or a registration tell whether an address has an account?

Prints medians (milliseconds) over N requests of each kind, with the default argon2 parameters:

- sign-in with a known address and a wrong password, against an unknown address;
- registration with a new address, against one that has an account;
- a password reset request for a known address, against an unknown one.

Two ways of timing: ``server`` is what a client sees over HTTP from a real uvicorn server on
loopback (mails and the work behind them run after the answer); ``total`` runs the app
in-process with httpx's ASGI transport, which returns only when the background tasks are done
as well, so it compares the whole work a request causes. Run:

    .venv/bin/python bench/auth_timing.py [-n 20]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import uvicorn

from odr import accounts, migrate
from odr.app import create_app
from odr.schemas import Registration
from odr.services import Services
from odr.settings import Settings

PASSWORD = "correct horse battery staple"
KNOWN = "known@bench.odr"
PAUSE = 0.4  # seconds after each request over HTTP, for the work behind the answer to finish


def bench_settings(data_dir: Path) -> Settings:
    # Default argon2 parameters; the attempt and mail limits are lifted so they never answer.
    return Settings(
        data_dir=data_dir, secret_key="bench", public_url="http://127.0.0.1", smtp_host="",
        login_max_failures_account=10**6, login_max_failures_address=10**6,
        email_link_max_per_address=10**6, email_link_max_per_ip=10**6,
    )


async def create_known(settings: Settings) -> None:
    """The account whose address is "known": migrated and made before the app starts."""
    await asyncio.to_thread(migrate.upgrade, settings.effective_database_url)
    svc = Services.create(settings)
    try:
        async with svc.maker() as session:
            await accounts.create_user(Registration(email=KNOWN, name="Known Person",
                                                    password=PASSWORD),
                                       session=session, hashing=svc.hashing)
            await session.commit()
    finally:
        await svc.close()


Request = Callable[[httpx.AsyncClient, bool], Awaitable[httpx.Response]]


async def login(client: httpx.AsyncClient, known: bool) -> httpx.Response:
    email = KNOWN if known else f"nobody.{secrets.token_hex(4)}@bench.odr"
    return await client.post("/api/v1/auth/login", json={"email": email, "password": "wrong!"})


async def register(client: httpx.AsyncClient, known: bool) -> httpx.Response:
    email = KNOWN if known else f"new.{secrets.token_hex(4)}@bench.odr"
    return await client.post("/api/v1/auth/register",
                             json={"email": email, "name": "Bench Person", "password": PASSWORD})


async def reset(client: httpx.AsyncClient, known: bool) -> httpx.Response:
    email = KNOWN if known else f"nobody.{secrets.token_hex(4)}@bench.odr"
    return await client.post("/api/v1/auth/password-reset", json={"email": email})


CASES: list[tuple[str, Request, str, str]] = [
    ("sign-in", login, "known address, wrong password", "unknown address"),
    ("registration", register, "existing address", "new address"),
    ("password reset", reset, "known address", "unknown address"),
]


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)


async def medians(client: httpx.AsyncClient, request: Request, n: int,
                  pause: float = 0) -> tuple[float, float]:
    """Median milliseconds for (known, unknown), the two kinds interleaved to share any drift."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for known in (True, False):  # one of each first, not timed (first-use costs)
        await request(client, known)
    for _ in range(n):
        for known in (True, False):
            start = time.perf_counter()
            response = await request(client, known)
            times[known].append((time.perf_counter() - start) * 1000)
            assert response.status_code < 500, response.text
            await asyncio.sleep(pause)
    return statistics.median(times[True]), statistics.median(times[False])


def report(mode: str, results: list[tuple[str, str, str, float, float]]) -> None:
    print(f"\n{mode}")
    for name, known_label, unknown_label, known, unknown in results:
        print(f"  {name:15} {known_label:32} {known:8.1f} ms   {unknown_label:18} "
              f"{unknown:8.1f} ms   ratio {known / unknown:5.2f}")


async def run_total(n: int) -> list[tuple[str, str, str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp))
        await create_known(settings)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                return [(name, kl, ul, *await medians(c, req, n)) for name, req, kl, ul in CASES]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run_server(n: int) -> list[tuple[str, str, str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(Path(tmp))
        await create_known(settings)
        app = create_app(settings)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            await asyncio.to_thread(wait_until, lambda: server.started)
            # A new connection per request, and a pause after each: uvicorn reads the next
            # request on a connection only when the previous one's background work is done,
            # which would put one request's mail work into the next one's time.
            no_reuse = httpx.Limits(max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                         limits=no_reuse) as c:
                results = [(name, kl, ul, *await medians(c, req, n, pause=PAUSE))
                           for name, req, kl, ul in CASES]
        finally:
            server.should_exit = True
            thread.join(timeout=30)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="requests of each kind (default 20)")
    parser.add_argument("--modes", default="server,total", help="server, total or both")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if "server" in modes:
        report("server (what a client sees over HTTP)", asyncio.run(run_server(args.n)))
    if "total" in modes:
        report("total (in-process, including the work after the answer)",
               asyncio.run(run_total(args.n)))


if __name__ == "__main__":
    main()
