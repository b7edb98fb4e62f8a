"""A case's timeline as its participants read it: who did what, in a whole sentence of the
reader's language ("Ерлан Қасымов подал заявку на медиацию"), with what goes with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import cases, vocab
from odr.i18n import Translator
from odr.models import Case, CaseEvent, User

# Kinds whose detail is a free text worth showing under the line (a reason, a filing number).
NOTED = frozenset({"status", "filed", "filing_accepted", "filing_rejected",
                   "participant_removed", "assigned"})


@dataclass(frozen=True)
class Line:
    at: datetime
    kind: str
    text: str
    note: str = ""


async def lines(case: Case, tr: Translator, *, session: AsyncSession) -> list[Line]:
    events = await cases.timeline(case, session=session)
    ids = {e.actor_id for e in events if e.actor_id is not None}
    actors = {u.id: u for u in (await session.exec(
        select(User).where(col(User.id).in_(ids)))).all()} if ids else {}
    return [line(e, actors.get(e.actor_id) if e.actor_id else None, tr) for e in events]


def line(event: CaseEvent, actor: User | None, tr: Translator) -> Line:
    kind, detail = event.kind, event.detail
    params = {"role": tr.gettext(vocab.CASE_ROLE_LABELS[detail])
              if detail in vocab.CASE_ROLE_LABELS else ""}
    status = event.status.value if event.status else None
    if status:
        params["status"] = tr.gettext(vocab.STATUS_LABELS[status])
    sentence = (vocab.STATUS_SENTENCES.get(status or "", vocab.STATUS_SENTENCE_OTHER)
                if kind == "status" else vocab.EVENT_SENTENCES.get(kind))
    if actor is not None and sentence is not None:
        text = tr.gettext_of(actor.grammatical_gender.value, sentence, name=actor.name, **params)
    else:
        # Nobody acted (the term ran out, everyone had signed), or an unknown kind.
        text = tr.gettext(vocab.EVENT_LABELS.get(kind, kind))
        if status and kind == "status":
            text += ": " + params["status"]
        if params["role"] and kind in ("invited", "joined", "invitation_revoked"):
            text += f" ({params['role']})"
    note = detail if kind in NOTED else ""
    if kind == "closed" and ":" in detail:
        outcome, reason = detail.split(":", 1)
        note = (f"{tr.gettext(vocab.OUTCOME_LABELS.get(outcome, outcome))} "
                f"({tr.gettext(vocab.CLOSE_REASON_LABELS.get(reason, reason))})")
    return Line(event.at, kind, text, note)
