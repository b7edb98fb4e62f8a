"""The async database engine and sessions (aiosqlite by default, asyncpg when configured)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

_ON_COMMIT = "odr.on_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the session's transaction has committed, never if it rolls back:
    what others are told of (a live room closing, say) must be what the database holds."""
    session.info.setdefault(_ON_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for callback in session.info.pop(_ON_COMMIT, []):
        callback()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_ON_COMMIT, None)


# Seconds a writer waits for SQLite's write lock before "database is locked".
WRITE_BUSY_TIMEOUT = 30.0
# A reader in WAL mode waits only in rare moments (another connection recovering the WAL after
# a crash); it waits on the event loop (below), so briefly.
READ_BUSY_TIMEOUT = 1.0


class _LoopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the event loop's thread, not its worker's.

    aiosqlite hands every call (cursor, execute, fetch, close, commit) to a thread of its own
    and back: about 50 us each, and 8 of them for a one-query request, which made such a
    request cost ~2 ms where the query itself takes ~20 us. A read in WAL mode does not wait
    for locks, so on the loop it costs only its own work. Only the read engine uses this: a
    writer may wait seconds for the write lock and keeps its thread. (Opening and closing still
    go through the worker, as aiosqlite does them.)
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def make_engine(url: str) -> AsyncEngine:
    """The engine for transactions that may write."""
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_pre_ping=True)
    engine = _sqlite_engine(url, read_only=False)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with "database is
        # locked" when another connection wrote in between (the busy timeout does not help).
        # Taking the write lock at BEGIN makes writers wait their turn instead, and it orders
        # audit log appends, which read the previous entry before adding theirs.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_read_engine(url: str, writer: AsyncEngine) -> AsyncEngine:
    """The engine for requests that only read (GET pages and API reads).

    On SQLite only one transaction at a time holds the write lock, and every transaction of
    ``make_engine`` takes it at BEGIN; were reads to do so too, every signed-in page would wait
    for every other. Here transactions are deferred, so in WAL mode they read a snapshot side by
    side with each other and with the one writer, and ``query_only`` turns an accidental write
    into an error instead of a lock taken in the middle of a read. PostgreSQL readers never wait
    for writers; its read-only transactions refuse writes alike.
    """
    if not url.startswith("sqlite"):
        return writer.execution_options(postgresql_readonly=True)
    path = _sqlite_path(url)
    if path in ("", ":memory:"):
        return writer  # a second engine would open a second, empty database

    async def connect() -> aiosqlite.Connection:
        return await _LoopConnection(
            lambda: sqlite3.connect(path, timeout=READ_BUSY_TIMEOUT, check_same_thread=False),
            iter_chunk_size=64)

    engine = _sqlite_engine(url, read_only=True, async_creator=connect)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_deferred(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def _sqlite_path(url: str) -> str:
    return url.split("///", 1)[-1]


def _sqlite_engine(url: str, *, read_only: bool, **options: Any) -> AsyncEngine:
    path = _sqlite_path(url)
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": WRITE_BUSY_TIMEOUT}, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # WAL keeps commits cheap and lets readers run beside the writer; foreign keys are off
        # by default in SQLite.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        if read_only:
            cur.execute("PRAGMA query_only=ON")
        cur.close()
        # We begin transactions ourselves (the "begin" listeners) instead of the driver.
        dbapi_conn.isolation_level = None

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with maker() as session:
        yield session
