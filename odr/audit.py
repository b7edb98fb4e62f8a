"""The append-only, hash-chained audit log and the check that finds a changed or removed entry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.models import AuditEntry, utcnow

GENESIS = "0" * 64
# Any constant will do: it names the PostgreSQL advisory lock that orders appends across processes.
_PG_LOCK_KEY = 0x0D12A0D1


def entry_hash(entry: AuditEntry) -> str:
    canonical = json.dumps(
        [
            entry.seq,
            entry.at.isoformat(timespec="microseconds"),
            entry.actor_id,
            entry.action,
            entry.case_id,
            entry.detail,
            entry.prev_hash,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    """Appends entries inside the caller's transaction, one writer at a time.

    The chain needs the previous entry's hash, so appends must not interleave: SQLite
    transactions hold the write lock from their start (see ``odr.db``), and on PostgreSQL an
    advisory transaction lock orders them across connections and processes until commit.
    """

    async def append(
        self,
        session: AsyncSession,
        action: str,
        *,
        actor_id: int | None,
        case_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        if session.get_bind().dialect.name == "postgresql":
            connection = await session.connection()
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})"))
        last = (
            await session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(1))
        ).first()
        entry = AuditEntry(
            seq=(last.seq + 1) if last else 1,
            at=utcnow(),
            actor_id=actor_id,
            action=action,
            case_id=case_id,
            detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
            prev_hash=last.hash if last else GENESIS,
            hash="",
        )
        entry.hash = entry_hash(entry)
        session.add(entry)
        await session.flush()
        return entry


@dataclass(frozen=True)
class ChainReport:
    entries: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_entries(entries: Sequence[AuditEntry]) -> ChainReport:
    """Recompute the chain: an edited entry breaks its own hash, a removed one the next link."""
    problems: list[str] = []
    prev_hash = GENESIS
    expected_seq = 1
    for entry in entries:
        if entry.seq != expected_seq:
            problems.append(f"entry {expected_seq} is missing (next found is {entry.seq})")
        if entry.prev_hash != prev_hash:
            problems.append(f"entry {entry.seq}: link to the previous entry is broken")
        if entry_hash(entry) != entry.hash:
            problems.append(f"entry {entry.seq}: content does not match its hash")
        prev_hash = entry.hash
        expected_seq = entry.seq + 1
    return ChainReport(entries=len(entries), problems=problems)


async def verify(session: AsyncSession) -> ChainReport:
    entries = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))).all()
    return verify_entries(entries)
