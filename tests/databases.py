"""The tests' databases: SQLite files by default, PostgreSQL databases when
``ODR_TEST_DATABASE=postgres`` (``make test`` runs the suite both ways when PostgreSQL answers;
``tests.live`` gives each live server an empty database, which ``odr run`` migrates).

On PostgreSQL one database is migrated per session and each test gets a copy of it
(``CREATE DATABASE ... TEMPLATE``), dropped when the test ends: the same isolation as the SQLite
file each test copies.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import URL, make_url

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT = 5.0
ON_POSTGRES = os.environ.get("ODR_TEST_DATABASE") == "postgres"

# Made by ``tests.harness.open_platform``, by folder: dropped when the test owning the folder
# ends, or at the end of the session for a module's (conftest).
CREATED_DATABASES: dict[Path, str] = {}

# Tests of SQLite itself (its write lock, the draft writer's sqlite3 path, file copies).
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="a test of the SQLite engine")


def server_url() -> URL:
    return make_url(os.environ.get("ODR_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def url_of(name: str) -> str:
    return server_url().set(database=name).render_as_string(hide_password=False)


async def admin_command(sql: str) -> None:
    dsn = server_url().set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncio.wait_for(asyncpg.connect(dsn), CONNECT_TIMEOUT)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_database(template: str | None = None) -> str:
    """A new database (a copy of ``template`` if given); skips the test if PostgreSQL is not
    reachable. Returns its name."""
    name = f"odr_test_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        asyncio.run(admin_command(f'CREATE DATABASE "{name}"{copy}'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL is not reachable at {server_url()!r}: {exc}")
    return name


def database_for(folder: Path, template: str | None = None) -> str:
    """The URL of ``folder``'s own database, made on first use (empty, or a copy of
    ``template``): as with a SQLite file in the folder, whoever opens it again finds what was
    left there. Dropped with the test owning the folder, or at the end of the session."""
    marker = folder / "postgres-database"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(create_database(template))
        CREATED_DATABASES[folder] = marker.read_text()
    return url_of(marker.read_text())


def drop_database(name: str) -> None:
    asyncio.run(admin_command(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def database(template: str | None = None) -> Iterator[str]:
    """A database of its own for the block: its URL."""
    name = create_database(template)
    try:
        yield url_of(name)
    finally:
        drop_database(name)
