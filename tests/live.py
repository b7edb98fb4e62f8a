"""A real server for the real-server tier: ``odr run`` in a subprocess on a free port."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import httpx
from sqlalchemy.engine import make_url

from tests.databases import ON_POSTGRES, database_for

ODR = Path(sys.executable).parent / "odr"
DEMO_LINE = re.compile(r"^\s+(administrator|mediator|party A|party B|court clerk)\s+(\S+)\s+(\S+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[str]
    data_dir: Path
    database_url: str | None = None  # None: the SQLite file in data_dir
    output: list[str] = field(default_factory=list)
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (email, password)


def query(server: LiveServer, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows from the server's own database (``?`` parameters), read behind its back."""
    if server.database_url is None:
        with sqlite3.connect(server.data_dir / "odr.sqlite3", timeout=30) as db:
            rows = db.execute(sql, params).fetchall()
        db.close()
        return rows
    numbers = iter(range(1, len(params) + 1))
    numbered = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)
    dsn = make_url(server.database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)

    async def fetch() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await connection.fetch(numbered, *params)]
        finally:
            await connection.close()

    # Its own loop, in a thread: the caller may be inside a running one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, fetch()).result()


def mailed_link(server: LiveServer, to: str, path: str, timeout: float = 10.0) -> str:
    """The newest link to ``path`` mailed to ``to``, read from the server's outbox.

    The server mails after it has answered, so the link may take a moment to appear.
    """
    deadline = time.monotonic() + timeout
    while True:
        bodies = [row[0] for row in query(
            server, 'SELECT body FROM outboxmail WHERE "to" = ? ORDER BY id DESC', to)]
        for body in bodies:
            for link in re.findall(r"https?://\S+", body):
                if urlsplit(link).path.startswith(path):
                    return str(link)
        assert time.monotonic() < deadline, f"no link to {path} mailed to {to}"
        time.sleep(0.05)


@contextmanager
def live_server(data_dir: Path, *, timeout: float = 30.0, port: int | None = None,
                environment: Mapping[str, str] | None = None, **env: str
                ) -> Iterator[LiveServer]:
    """Start ``odr run`` with its own data folder; wait until it serves; stop it afterwards.
    ``environment`` and ``env`` (ODR_...) are added to this process's environment."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    database = None
    if ON_POSTGRES and "ODR_DATABASE_URL" not in (dict(environment or {}) | env):
        database = database_for(data_dir)  # empty at first: ``odr run`` migrates it
        env = env | {"ODR_DATABASE_URL": database}
    environ = os.environ | {
        "ODR_DATA_DIR": str(data_dir), "PORT": str(port), "ODR_PUBLIC_URL": url,
        "ODR_ARGON2_TIME_COST": "1", "ODR_ARGON2_MEMORY_COST": "1024", "PYTHONUNBUFFERED": "1",
        # All test clients come from 127.0.0.1.
        "ODR_EMAIL_LINK_MAX_PER_IP": "100000",
    } | dict(environment or {}) | env
    process = subprocess.Popen(
        [str(ODR), "run"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    server = LiveServer(url, process, data_dir, database)

    listening = threading.Event()  # uvicorn said it is serving, or the output ended
    serving: list[bool] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.output.append(line.rstrip("\n"))
            if match := DEMO_LINE.match(line.rstrip("\n")):
                server.logins[match[1]] = (match[2], match[3])
            if "Uvicorn running on" in line:
                serving.append(True)
                listening.set()
        listening.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not listening.wait(timeout):
            raise TimeoutError("server did not start:\n" + "\n".join(server.output))
        if not serving:
            raise RuntimeError("server exited:\n" + "\n".join(server.output))
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
