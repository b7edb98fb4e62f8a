"""The draft writer on SQLite: its commits never checkpoint on the event loop, yet the log does
reach the database file, checkpointed by a thread."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from documents.draft_room import SqliteWriter
from tests.databases import sqlite_only
from tests.harness import copy_database

pytestmark = sqlite_only

ROUNDS = 3 * SqliteWriter.CHECKPOINT_EVERY


def _count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        (count,) = conn.execute("SELECT count(*) FROM draftupdate").fetchone()
    finally:
        conn.close()
    return int(count)


def test_the_log_is_checkpointed_by_a_thread_not_by_the_commits(tmp_path: Path,
                                                                template_db: Path) -> None:
    db = tmp_path / "odr.sqlite3"
    copy_database(template_db, db)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    before = _count(db)
    writer = SqliteWriter(str(db))

    async def run() -> tuple[int, int]:
        for n in range(ROUNDS):
            await writer.write([(1, f"update {n} ".encode() * 40, None)], [(1, 1)])
        checkpoint = writer._checkpoint  # the last one started
        assert checkpoint is not None
        await asyncio.wait_for(checkpoint, 30)
        # Copy the database file alone, without its -wal: only what was checkpointed.
        shutil.copyfile(db, tmp_path / "file-only.sqlite3")
        (autocheckpoint,) = writer._connection().execute(
            "PRAGMA wal_autocheckpoint").fetchone()
        return autocheckpoint, _count(db)

    try:
        autocheckpoint, total = asyncio.run(run())
    finally:
        writer.close()
    assert autocheckpoint == 0  # commits on the loop never stop to copy the log
    assert total == before + ROUNDS
    # The database file itself holds at least what came before the first checkpoint.
    assert _count(tmp_path / "file-only.sqlite3") >= before + SqliteWriter.CHECKPOINT_EVERY
