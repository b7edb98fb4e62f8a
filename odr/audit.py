"""The append-only, hash-chained audit log and the check that finds a changed or removed entry."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.errors import N_
from odr.models import AuditEntry, AuditHead, utcnow

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
    Each append also moves the sealed head (``AuditHead``), which is how a cut-off end is found.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, seq: int, hash_: str) -> str:
        return hmac.new(self._key, f"audit-head:{seq}:{hash_}".encode(), "sha256").hexdigest()

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
        head = await session.get(AuditHead, 1) or AuditHead(id=1, seq=0, hash="", mac="")
        head.seq, head.hash, head.mac = entry.seq, entry.hash, self._mac(entry.seq, entry.hash)
        session.add(head)
        await session.flush()
        return entry

    async def verify(self, session: AsyncSession) -> ChainReport:
        entries = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))).all()
        report = verify_entries(entries)
        head = await session.get(AuditHead, 1)
        last = entries[-1] if entries else None
        if head is None:
            if last is not None:
                report.add(N_("The seal on the newest entry is missing."))
        elif not hmac.compare_digest(head.mac, self._mac(head.seq, head.hash)):
            report.add(N_("The seal on the newest entry does not match: it was altered."))
        elif last is None or head.seq > last.seq:
            report.add(N_("Entries after %(seq)s were removed (the log had %(total)s)."),
                       seq=last.seq if last else 0, total=head.seq)
        elif (head.seq, head.hash) != (last.seq, last.hash):
            report.add(N_("Entry %(seq)s was not written by the platform."), seq=last.seq)
        return report


@dataclass
class ChainReport:
    """What the check found: each problem a message id and its values, translated at the edge."""

    entries: int
    findings: list[tuple[str, dict[str, int]]] = field(default_factory=list)

    def add(self, message: str, **values: int) -> None:
        self.findings.append((message, values))

    @property
    def intact(self) -> bool:
        return not self.findings

    def problems(self, gettext: Callable[..., str] | None = None) -> list[str]:
        """The problems in words: translated with ``gettext`` (a ``Translator.gettext``)."""
        return [gettext(m, **values) if gettext else m % values for m, values in self.findings]


def verify_entries(entries: Sequence[AuditEntry]) -> ChainReport:
    """Recompute the chain: an edited entry breaks its own hash, a removed one the next link."""
    report = ChainReport(entries=len(entries))
    prev_hash = GENESIS
    expected_seq = 1
    for entry in entries:
        if entry.seq != expected_seq:
            report.add(N_("Entry %(seq)s is missing (the next one found is %(next)s)."),
                       seq=expected_seq, next=entry.seq)
        if entry.prev_hash != prev_hash:
            report.add(N_("Entry %(seq)s: the link to the previous entry is broken."),
                       seq=entry.seq)
        if entry_hash(entry) != entry.hash:
            report.add(N_("Entry %(seq)s: its content does not match its hash."), seq=entry.seq)
        prev_hash = entry.hash
        expected_seq = entry.seq + 1
    return report
