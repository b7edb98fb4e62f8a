"""The neutrality record: how long the mediator spent in the joint session and in separate
meetings with each side, per session and per case.

A mediator who hears one side far longer than the other loses the other's trust; the record
lets the mediator see the balance while it can still be kept (live, in the room), and lets the
parties see it afterwards (the case page, the certificate of completion). The room counts
(``Tally``, fed by ``rooms.state.Room``); each session's count is kept when the room closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.errors import N_
from odr.i18n import Translator
from odr.models import Case, NeutralityRecord

# Where the mediator can be: the joint session, a separate meeting with side A's people, with
# side B's, or another (with both sides' people, or with nobody but co-mediators).
KEYS = ("joint", "a", "b", "other")
LABELS = {"joint": N_("joint session"), "a": N_("with side A"), "b": N_("with side B"),
          "other": N_("other meetings")}


def zero() -> dict[str, float]:
    return dict.fromkeys(KEYS, 0.0)


@dataclass
class Tally:
    """Seconds per place, and where the mediator is now (None: not in any meeting) since
    when. Times are Unix times, so that the count goes on in another process."""

    seconds: dict[str, float] = field(default_factory=zero)
    position: str | None = None
    since: float = 0.0
    started: float | None = None

    def advance(self, position: str | None, now: float) -> None:
        """The time since the last change goes to where the mediator was; from now on it
        goes to ``position``."""
        if self.position is not None:
            self.seconds[self.position] += max(0.0, now - self.since)
        if position is not None and self.started is None:
            self.started = now
        self.position, self.since = position, now

    def current(self, now: float) -> dict[str, float]:
        seconds = dict(self.seconds)
        if self.position is not None:
            seconds[self.position] += max(0.0, now - self.since)
        return seconds

    @property
    def counted(self) -> bool:
        return self.started is not None

    def snapshot(self) -> dict[str, Any]:
        return {"seconds": dict(self.seconds), "position": self.position, "since": self.since,
                "started": self.started}

    @classmethod
    def restore(cls, data: dict[str, Any] | None) -> Tally:
        if not data:
            return cls()
        seconds = zero() | {k: float(v) for k, v in data.get("seconds", {}).items()
                            if k in KEYS}
        position = data.get("position")
        return cls(seconds, position if position in KEYS else None,
                   float(data.get("since", 0.0)),
                   float(data["started"]) if data.get("started") is not None else None)


def record_of(case_id: int, tally: Tally, now: float) -> NeutralityRecord:
    """The session's count, to keep once the room closes."""
    seconds = tally.current(now)
    return NeutralityRecord(
        case_id=case_id,
        started_at=datetime.fromtimestamp(tally.started or now, UTC),
        ended_at=datetime.fromtimestamp(now, UTC),
        joint_seconds=round(seconds["joint"]), side_a_seconds=round(seconds["a"]),
        side_b_seconds=round(seconds["b"]), other_seconds=round(seconds["other"]))


async def keep(record: NeutralityRecord, *, session: AsyncSession) -> None:
    """Keep a session's record, and add it to its case's running sums (for the statistics),
    in the caller's transaction."""
    session.add(record)
    await session.exec(update(Case).where(col(Case.id) == record.case_id).values(
        sessions_held=col(Case.sessions_held) + 1,
        side_a_seconds=col(Case.side_a_seconds) + record.side_a_seconds,
        side_b_seconds=col(Case.side_b_seconds) + record.side_b_seconds))


async def of_case(case_id: int, *, session: AsyncSession) -> Sequence[NeutralityRecord]:
    return (await session.exec(select(NeutralityRecord).where(
        NeutralityRecord.case_id == case_id).order_by(col(NeutralityRecord.id)))).all()


def seconds_of(record: NeutralityRecord) -> dict[str, int]:
    return {"joint": record.joint_seconds, "a": record.side_a_seconds,
            "b": record.side_b_seconds, "other": record.other_seconds}


def totals(records: Sequence[NeutralityRecord]) -> dict[str, int]:
    result = dict.fromkeys(KEYS, 0)
    for record in records:
        for key, value in seconds_of(record).items():
            result[key] += value
    return result


def duration(seconds: float, tr: Translator) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return tr.ngettext("%(num)d min", "%(num)d min", minutes)
    return tr.gettext("%(hours)d h %(minutes)02d min", hours=minutes // 60,
                      minutes=minutes % 60)


def describe(seconds: dict[str, int], tr: Translator) -> str:
    """One line, as the case page and the certificate of completion print it."""
    return " · ".join(f"{tr.gettext(LABELS[key])}: {duration(seconds[key], tr)}"
                      for key in KEYS if seconds[key] or key != "other")
