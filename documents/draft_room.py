"""Draft rooms: one Yjs document per draft, shared by its connections, persisted before shared.

The order for every edit is: validate -> store in the database (group commit) -> apply to the
server's document -> forward the client's own bytes to the other connections. Nobody sees an
edit the database does not hold, so a crash or restart loses no edit anyone has seen.
Writes from read-only connections, and to frozen drafts, are refused in both sync step 2 and
update messages (refusing only updates would let a read-only client write through step 2).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Doc, get_state
from sqlalchemy import func, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col, select

from documents import yprotocol as yp
from documents.models import Draft, DraftUpdate
from odr.models import utcnow

log = logging.getLogger("odr.drafts")

# Stored updates are merged into one when a room loads with more than this many.
COMPACT_AFTER = 1000
# Close code of a socket whose draft another process owns now (the editor reconnects).
MOVED = 1012
# Forwarded updates are applied to the server's copy in batches of at most this many.
APPLY_AFTER = 32


class Connection(Protocol):
    """One client of a draft room (a WebSocket, or anything that can send bytes)."""

    user_id: int
    can_write: bool

    async def send(self, data: bytes) -> None: ...

    async def close(self, code: int = ..., reason: str = ...) -> None: ...


class SqliteWriter:
    """Stores batches of updates on SQLite with plain sqlite3, usually without leaving the loop.

    Going through SQLAlchemy and aiosqlite costs about 0.7 ms of CPU per commit (statement
    compilation, one thread wake-up per statement); plain sqlite3 with executemany costs under
    0.1 ms (WAL, no fsync per commit). So the batch is written right on the event loop when the
    write lock is free, and only when another connection holds it does the write move to a
    thread of its own to wait there (waiting on the loop could block the very holder).
    """

    # Checkpoints copy the write-ahead log into the database file and wait for the disk: about
    # 17 ms here, which on the loop was every update's 99th percentile. So the writer's own
    # connection never checkpoints, and a thread does it (PASSIVE: writers go on meanwhile)
    # after this many commits, a few hundred pages of log.
    CHECKPOINT_EVERY = 100

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="draft-sqlite")
        self._checkpointer = ThreadPoolExecutor(max_workers=1,
                                                thread_name_prefix="draft-checkpoint")
        self._db: sqlite3.Connection | None = None
        self._checkpoint_db: sqlite3.Connection | None = None
        self._commits = 0
        self._checkpoint: asyncio.Future[None] | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
        return self._db

    def _checkpoint_sync(self) -> None:
        if self._checkpoint_db is None:
            self._checkpoint_db = sqlite3.connect(self.path, isolation_level=None,
                                                  check_same_thread=False)
        self._checkpoint_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _after_commit(self) -> None:
        self._commits += 1
        if self._commits >= self.CHECKPOINT_EVERY and (
                self._checkpoint is None or self._checkpoint.done()):
            self._commits = 0
            self._checkpoint = asyncio.get_running_loop().run_in_executor(
                self._checkpointer, self._checkpoint_sync)
            self._checkpoint.add_done_callback(_log_checkpoint_failure)

    def _write_sync(self, rows: list[tuple[int, bytes, int | None]],
                    versions: list[tuple[int, int]], wait_ms: int) -> None:
        db = self._connection()
        db.execute(f"PRAGMA busy_timeout={wait_ms}")
        # UTCDateTime's storage on SQLite: naive UTC text.
        at = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                f"INSERT INTO {DraftUpdate.__tablename__} (draft_id, data, author_id, at) "
                "VALUES (?, ?, ?, ?)", [(d, u, a, at) for d, u, a in rows])
            db.executemany(f"UPDATE {Draft.__tablename__} SET version = version + ? "
                           "WHERE id = ?", versions)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def write(self, rows: list[tuple[int, bytes, int | None]],
                    versions: list[tuple[int, int]]) -> None:
        try:
            self._write_sync(rows, versions, wait_ms=0)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._write_sync, rows, versions, 30_000)
        self._after_commit()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._checkpointer.shutdown(wait=True)
        for db in (self._db, self._checkpoint_db):
            if db is not None:
                db.close()


def _log_checkpoint_failure(future: asyncio.Future[None]) -> None:
    # The log stays whole and is checkpointed next time (or by the next connection to close).
    if not future.cancelled() and future.exception() is not None:
        log.warning("draft log checkpoint failed: %s", future.exception())


class WriteRefused(Exception):
    """A write the connection may not make; the room has told the client."""


@dataclass(eq=False)
class DraftRoom:
    draft_id: int
    stored_doc: Doc[Any]
    version: int
    frozen: bool
    case_id: int = 0
    connections: set[Connection] = field(default_factory=set)
    # Presence by Yjs client id: (clock, state JSON). Clients echo each other's presence, so
    # it is kept per client, and each client belongs to the connection that first sent it.
    presence: dict[int, tuple[int, str]] = field(default_factory=dict)
    owners: dict[int, Connection] = field(default_factory=dict)
    holders: int = 0
    pending: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # Stored and forwarded, not yet applied to ``stored_doc``: applying each in a transaction
    # of its own costs four times as much as a batch in one (pycrdt commits per transaction).
    unapplied: list[bytes] = field(default_factory=list)

    @property
    def doc(self) -> Doc[Any]:
        """The document with every stored update applied."""
        self.apply_backlog()
        return self.stored_doc

    def apply_backlog(self) -> None:
        if self.unapplied:
            with self.stored_doc.transaction():
                for update in self.unapplied:
                    self.stored_doc.apply_update(update)
            self.unapplied.clear()

    def text_state(self) -> bytes:
        return self.doc.get_update()

    async def broadcast(self, data: bytes, *, exclude: Connection | None = None) -> None:
        for connection in list(self.connections):
            if connection is not exclude:
                try:
                    await connection.send(data)
                except Exception:  # a broken socket must not stop the others
                    self.connections.discard(connection)


@dataclass
class _Pending:
    room: DraftRoom
    update: bytes
    message: bytes
    sender: Connection | None
    author_id: int | None


class DraftRooms:
    """The rooms by draft id, loading on first use (one loader at a time per draft), storing
    edits with a single writer task that commits everything waiting in one transaction."""

    def __init__(self, engine: AsyncEngine, *, max_update_bytes: int,
                 shared: bool = False) -> None:
        self.engine = engine
        self.max_update_bytes = max_update_bytes
        # Several processes (odr.cluster): another one may freeze a draft this one writes.
        self.shared = shared
        self._rooms: dict[int, DraftRoom] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        url = engine.url
        self._sqlite = (SqliteWriter(str(url.database))
                        if url.get_backend_name() == "sqlite" and url.database else None)
        self.on_refused: Callable[[int, int, str], None] | None = None

    # --- rooms ------------------------------------------------------------------------------

    async def _load(self, draft_id: int) -> DraftRoom:
        async with self.engine.connect() as conn:
            draft, rows = await self._read(conn, draft_id)
            await conn.rollback()
        doc: Doc[Any] = Doc()
        for _id, data in rows:
            doc.apply_update(data)
        room = DraftRoom(draft_id, doc, version=draft.version,
                         frozen=draft.frozen_at is not None, case_id=draft.case_id)
        room.idle.set()
        if len(rows) > COMPACT_AFTER:
            await self._compact(draft_id, doc.get_update(), last_id=rows[-1][0])
        return room

    @staticmethod
    async def _read(conn: AsyncConnection, draft_id: int) -> tuple[Any, Sequence[Any]]:
        draft = (await conn.execute(select(Draft).where(col(Draft.id) == draft_id))).first()
        if draft is None:
            raise KeyError(draft_id)
        rows = (
            await conn.execute(
                select(DraftUpdate.id, DraftUpdate.data)
                .where(DraftUpdate.draft_id == draft_id)
                .order_by(col(DraftUpdate.id))
            )
        ).all()
        return draft, rows

    async def _compact(self, draft_id: int, merged: bytes, *, last_id: int) -> None:
        """Replace the stored updates with their merge (same document, faster loading)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                DraftUpdate.__table__.delete().where(  # type: ignore[attr-defined]
                    col(DraftUpdate.draft_id) == draft_id, col(DraftUpdate.id) <= last_id
                )
            )
            await conn.execute(insert(DraftUpdate), [
                {"draft_id": draft_id, "data": merged, "author_id": None, "at": utcnow()}
            ])

    @asynccontextmanager
    async def use(self, draft_id: int) -> AsyncIterator[DraftRoom]:
        """The draft's room, loaded if needed and kept while in use. Raises KeyError if absent.

        Never call it inside an open transaction: loading reads through a connection of its
        own, which on SQLite waits for the write lock that transaction holds (see ``odr.db``).
        """
        lock = self._locks.setdefault(draft_id, asyncio.Lock())
        async with lock:
            room = self._rooms.get(draft_id)
            if room is None:
                room = await self._load(draft_id)
                self._rooms[draft_id] = room
            room.holders += 1
        try:
            yield room
        finally:
            room.holders -= 1
            self._drop_if_unused(room)

    def _drop_if_unused(self, room: DraftRoom) -> None:
        if room.holders == 0 and not room.connections and room.pending == 0:
            if self._rooms.get(room.draft_id) is room:
                del self._rooms[room.draft_id]

    def loaded(self, draft_id: int) -> DraftRoom | None:
        return self._rooms.get(draft_id)

    # --- connections ------------------------------------------------------------------------

    async def connect(self, room: DraftRoom, connection: Connection) -> None:
        """Greet a new client: our state vector (sync step 1) and everyone's presence."""
        room.connections.add(connection)
        await connection.send(yp.sync_message(yp.STEP1, get_state(room.doc.get_update())))
        if room.presence:
            await connection.send(self._presence_message(room))

    @staticmethod
    def _presence_message(room: DraftRoom) -> bytes:
        return yp.write_awareness([(client, clock, state)
                                   for client, (clock, state) in room.presence.items()])

    async def disconnect(self, room: DraftRoom, connection: Connection) -> None:
        """Forget the connection and tell the others its people left (their cursors go)."""
        room.connections.discard(connection)
        gone = [client for client, owner in room.owners.items() if owner is connection]
        removed = []
        for client in gone:
            del room.owners[client]
            clock, _state = room.presence.pop(client, (0, "null"))
            removed.append((client, clock + 1, "null"))
        if removed:
            await room.broadcast(yp.write_awareness(removed))

    async def disconnect_user(self, case_id: int, user_id: int, code: int, reason: str) -> None:
        """Close every connection of the user to the case's drafts (``odr.cases.Disconnector``);
        the reader of each socket then sees it end and ``disconnect`` tidies up."""
        for room in list(self._rooms.values()):
            if room.case_id != case_id:
                continue
            for connection in [c for c in room.connections if c.user_id == user_id]:
                try:
                    await connection.close(code, reason)
                except Exception:  # already gone
                    log.debug("closing a removed person's draft socket", exc_info=True)

    def connected(self) -> list[int]:
        """The drafts someone is connected to here (with several processes: the ones held)."""
        return [draft_id for draft_id, room in self._rooms.items() if room.connections]

    async def moved(self, draft_id: int) -> None:
        """Another process owns the draft now: its clients here reconnect, and are sent there.
        The copy here is forgotten, so that a later use loads what the database holds."""
        room = self._rooms.pop(draft_id, None)
        if room is None:
            return
        for connection in list(room.connections):
            try:
                await connection.close(MOVED, "moved")
            except Exception:  # already gone
                log.debug("closing a draft socket that moved", exc_info=True)

    def _presence(self, room: DraftRoom, connection: Connection, payload: bytes) -> None:
        for client, clock, state in yp.read_awareness(payload):
            known = room.presence.get(client)
            if known is not None and clock < known[0]:
                continue
            room.owners.setdefault(client, connection)
            if state == "null":
                room.presence.pop(client, None)
            else:
                room.presence[client] = (clock, state)

    async def receive(self, room: DraftRoom, connection: Connection, data: bytes) -> None:
        """Handle one message; raises ``yp.ProtocolError`` for bytes that are not a message."""
        if len(data) > self.max_update_bytes:
            raise yp.ProtocolError("message too large")
        message = yp.parse(data)
        if message.kind == yp.SYNC:
            if message.step == yp.STEP1:
                await connection.send(
                    yp.sync_message(yp.STEP2, room.doc.get_update(message.payload))
                )
                return
            await self._write(room, connection, message.payload, data)
            return
        if message.kind == yp.AWARENESS:
            self._presence(room, connection, message.payload)
            await room.broadcast(data, exclude=connection)
            return
        if message.kind == yp.QUERY_AWARENESS and room.presence:
            await connection.send(self._presence_message(room))

    async def _write(self, room: DraftRoom, connection: Connection, update: bytes,
                     data: bytes) -> None:
        if yp.is_empty_update(update):
            return
        # A reconnecting client's sync step 2 often holds only what the server already has
        # (e.g. its delete set): that is no edit, so it must neither count nor be refused.
        if data[1] == yp.STEP2 and self._changes_nothing(room, update):
            return
        if room.frozen or not connection.can_write:
            reason = "frozen" if room.frozen else "read-only"
            await connection.send(yp.permission_denied(reason))
            if self.on_refused is not None:
                self.on_refused(room.draft_id, connection.user_id, reason)
            raise WriteRefused(reason)
        try:
            get_state(update)  # decodes the whole update: malformed bytes never reach storage
        except ValueError as exc:
            raise yp.ProtocolError("malformed update") from exc
        forward = data if data[1] == yp.UPDATE else yp.sync_message(yp.UPDATE, update)
        self.submit(room, update, forward, sender=connection, author_id=connection.user_id)

    @staticmethod
    def _changes_nothing(room: DraftRoom, update: bytes) -> bool:
        before = room.doc.get_update()
        trial: Doc[Any] = Doc()
        trial.apply_update(before)
        try:
            trial.apply_update(update)
        except ValueError:
            return False  # malformed: let the normal path refuse it
        return trial.get_update() == before

    # --- storing ----------------------------------------------------------------------------

    def submit(self, room: DraftRoom, update: bytes, message: bytes | None = None, *,
               sender: Connection | None = None, author_id: int | None = None) -> None:
        """Queue an update to be stored, then applied and forwarded to the others.

        The sender's connection goes on reading meanwhile: its own updates keep their order in
        the single queue, and batches grow with the load instead of one commit per message.
        """
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="draft-writer")
        room.pending += 1
        room.idle.clear()
        self._queue.append(_Pending(room, update, message or yp.sync_message(yp.UPDATE, update),
                                    sender, author_id))
        self._wakeup.set()

    async def store(self, room: DraftRoom, update: bytes, message: bytes | None = None, *,
                    sender: Connection | None = None, author_id: int | None = None) -> None:
        """Store, apply and forward an update; returns once it is durable and shared."""
        self.submit(room, update, message, sender=sender, author_id=author_id)
        await self.settle(room)

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                refused = await self._commit(batch)
            except Exception:
                # Nothing of the batch was stored, so nobody sees it; the writers' clients
                # still hold their edits and send them again when they reconnect.
                log.exception("storing %d draft updates failed", len(batch))
                for item in batch:
                    self._settled(item.room)
                    if item.sender is not None:
                        try:
                            await item.sender.close()
                        except Exception:  # already gone
                            log.debug("closing a writer after a failed store", exc_info=True)
                continue
            for item in batch:
                room = item.room
                if room.draft_id in refused:
                    await self._refuse_frozen(item)
                    continue
                room.unapplied.append(item.update)
                if len(room.unapplied) >= APPLY_AFTER:
                    room.apply_backlog()
                room.version += 1
                await room.broadcast(item.message, exclude=item.sender)
                self._settled(room)
            # Let the messages that have arrived meanwhile be read first, so that they share
            # the next commit. (Waiting a millisecond for more saved little CPU here and cost
            # every edit that millisecond: the readers' wake-ups are what costs most.)
            await asyncio.sleep(0)

    def _settled(self, room: DraftRoom) -> None:
        room.pending -= 1
        if room.pending == 0:
            room.idle.set()
            self._drop_if_unused(room)

    async def _refuse_frozen(self, item: _Pending) -> None:
        """Another process froze the draft before this update was stored: it is dropped, and
        its sender reconnects to find the draft frozen (its edit then refused as usual)."""
        item.room.frozen = True
        self._settled(item.room)
        if item.sender is not None:
            try:
                await item.sender.close(MOVED, "frozen")
            except Exception:  # already gone
                log.debug("closing a writer to a frozen draft", exc_info=True)

    async def _commit(self, batch: list[_Pending]) -> set[int]:
        """Store a batch; returns the drafts whose updates were refused (frozen meanwhile)."""
        per_draft: dict[int, int] = {}
        for item in batch:
            per_draft[item.room.draft_id] = per_draft.get(item.room.draft_id, 0) + 1
        if self._sqlite is not None:
            # One process only on SQLite, and it stops writes before it freezes.
            await self._sqlite.write(
                [(i.room.draft_id, i.update, i.author_id) for i in batch],
                [(count, draft_id) for draft_id, count in per_draft.items()])
            return set()
        now = utcnow()
        refused: set[int] = set()
        async with self.engine.begin() as conn:
            if self.shared:
                # The rows' locks order this commit and a freeze by another process (which
                # checks the version it froze): an update is stored before the freeze or not
                # at all. One process stops its own writes before it freezes.
                rows = (await conn.execute(
                    select(Draft.id, Draft.frozen_at)
                    .where(col(Draft.id).in_(list(per_draft))).with_for_update()
                )).all()
                refused = {draft_id for draft_id, frozen_at in rows if frozen_at is not None}
                batch = [i for i in batch if i.room.draft_id not in refused]
                for draft_id in refused:
                    del per_draft[draft_id]
                if not batch:
                    return refused
            await conn.execute(insert(DraftUpdate), [
                {"draft_id": i.room.draft_id, "data": i.update, "author_id": i.author_id,
                 "at": now}
                for i in batch
            ])
            for draft_id, count in per_draft.items():
                await conn.execute(
                    update(Draft).where(col(Draft.id) == draft_id)
                    .values(version=col(Draft.version) + count)
                )
        return refused

    async def settle(self, room: DraftRoom) -> None:
        """Wait until every update of the room that was accepted is stored and applied.

        Never call it inside an open transaction: on SQLite the writer needs the write lock.
        """
        await room.idle.wait()

    async def count_updates(self, draft_id: int) -> int:
        async with self.engine.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(DraftUpdate)
                                    .where(DraftUpdate.draft_id == draft_id))).scalar_one()
            await conn.rollback()
        return int(n)

    async def close(self) -> None:
        if self._writer is not None:
            # Let what was accepted reach the database before shutting down (a few seconds
            # at most: a database that keeps failing must not hold the shutdown forever).
            for _ in range(500):
                if not self._queue and not any(r.pending for r in self._rooms.values()):
                    break
                self._wakeup.set()
                await asyncio.sleep(0.01)
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
        if self._sqlite is not None:
            self._sqlite.close()
