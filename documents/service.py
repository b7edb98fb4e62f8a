"""Drafts: creating from a template, reading, approvals, freezing, versions and differences."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents import agreement_templates, contract_templates, prosemirror
from documents.draft_room import DraftRoom, DraftRooms
from documents.models import Draft, DraftApproval, DraftSnapshot, DraftUpdate
from documents.schemas import (
    ApprovalPublic,
    DiffLine,
    DiffPublic,
    DraftCreate,
    DraftPublic,
    PartyApproval,
    VersionPublic,
)
from odr import access, cases
from odr.access import DraftAction, DraftScope, Subject
from odr.deps import CaseAccess
from odr.errors import N_, Conflict, NotFound, Refused, Unauthenticated
from odr.i18n import Catalogues
from odr.models import Case, CaseRole, CaseStatus, Participant, User, utcnow
from odr.register import pack, unpack
from odr.vocab import REGION_LABELS, SIDE_LABELS


def scope(draft: Draft) -> DraftScope:
    return DraftScope(members=frozenset(int(m) for m in unpack(draft.members)),
                      frozen=draft.frozen_at is not None)


@dataclass
class DraftAccess(CaseAccess):
    """A draft with its case and the asker; checked by the policy for the action asked."""

    draft: Draft

    def may(self, action: DraftAction) -> bool:
        return access.may_draft(action, self.subject, self.case, scope(self.draft))


async def load_draft_access(
    draft_id: int, user: User | None, action: DraftAction, session: AsyncSession
) -> DraftAccess:
    """Load a draft and check ``action`` with the policy (routes and the WebSocket use this)."""
    if user is None:
        raise Unauthenticated(N_("Please sign in first."))
    draft = await session.get(Draft, draft_id)
    if draft is None:
        raise NotFound(N_("No such draft."))
    case = await cases.get_case(draft.case_id, session=session)
    participant = await cases.participant_of(case.id or 0, user.id, session=session)
    access.check_draft(action, Subject(user, participant), case, scope(draft))
    return DraftAccess(case, user, participant, draft)


class DraftService:
    def __init__(self, rooms: DraftRooms, cases: cases.CaseService, catalogues: Catalogues
                 ) -> None:
        self.rooms = rooms
        self.cases = cases
        self.catalogues = catalogues

    async def create(self, case: Case, data: DraftCreate, *, creator: User,
                     session: AsyncSession) -> Draft:
        """A new draft from the template, in the chosen language, with the case's people."""
        tr = self.catalogues.get(data.language)
        rows = (await session.exec(
            select(Participant, User).join(User, col(User.id) == col(Participant.user_id))
            .where(Participant.case_id == case.id, cases.ACTIVE).order_by(col(Participant.id))
        )).all()
        member_ids = {p.user_id for p, _u in rows}
        unknown = [m for m in data.members if m not in member_ids]
        if unknown:
            raise Refused(N_("Choose the caucus members among the case's participants."),
                          field="members")
        facts = agreement_templates.AgreementFacts(
            case_number=case.number, category=case.category.value, summary=case.summary,
            region_name=tr.gettext(REGION_LABELS.get(case.region, case.region)),
            parties=[(u.name, tr.gettext(SIDE_LABELS[p.side.value]) if p.side else "")
                     for p, u in rows if p.role == CaseRole.party],
            mediators=[u.name for p, u in rows
                       if p.role in (CaseRole.mediator, CaseRole.co_mediator)],
            today=utcnow().date(),
        )
        first = agreement_templates.initial_update(data.language, facts)
        title = agreement_templates.WORDS[data.language]["title"]
        draft = Draft(
            case_id=case.id or 0, channel=data.channel, language=data.language,
            members=pack(str(m) for m in sorted(set(data.members) | {creator.id or 0}))
            if data.members else "",
            template=data.template, title=title, created_by=creator.id or 0, version=1,
        )
        session.add(draft)
        await session.flush()
        session.add(DraftUpdate(draft_id=draft.id or 0, data=first, author_id=creator.id))
        doc: Doc[Any] = Doc()
        doc.apply_update(first)
        session.add(DraftSnapshot(draft_id=draft.id or 0, version=1, reason="created",
                                  text=prosemirror.to_text(doc), html=prosemirror.to_html(doc)))
        await self.cases.record(session, case, "draft_created", actor=creator,
                                detail=str(draft.id), audit_detail={"draft_id": draft.id})
        return draft

    async def public(self, da: DraftAccess, *, session: AsyncSession) -> DraftPublic:
        draft = da.draft
        if draft.frozen_at is not None:
            html, text, version = (draft.frozen_html or "", draft.frozen_text or "",
                                   draft.frozen_version or draft.version)
        else:
            await session.commit()  # end the read transaction before the room loads (odr.db)
            async with self.rooms.use(draft.id or 0) as room:
                html, text, version = (prosemirror.to_html(room.doc),
                                       prosemirror.to_text(room.doc), room.version)
        approvals = (await session.exec(
            select(DraftApproval, User).join(User, col(User.id) == col(DraftApproval.user_id))
            .where(DraftApproval.draft_id == draft.id).order_by(col(DraftApproval.at))
        )).all()
        by_user = {a.user_id: a for a, _u in approvals}
        parties = (await session.exec(
            select(Participant, User).join(User, col(User.id) == col(Participant.user_id))
            .where(Participant.case_id == draft.case_id, Participant.role == CaseRole.party,
                   cases.ACTIVE)
            .order_by(col(Participant.id))
        )).all()
        return DraftPublic(
            id=draft.id or 0, case_id=draft.case_id, channel=draft.channel,
            members=[int(m) for m in unpack(draft.members)], language=draft.language,
            template=draft.template, title=draft.title, version=version,
            frozen=draft.frozen_at is not None, frozen_sha256=draft.frozen_sha256,
            html=html, text=text,
            approvals=[ApprovalPublic(user_id=a.user_id, name=u.name, version=a.version,
                                      at=a.at) for a, u in approvals],
            parties=[PartyApproval(user_id=u.id or 0, name=u.name, approved_current=(
                u.id in by_user and by_user[u.id or 0].version == version))
                for _p, u in parties],
        )

    async def approve(self, da: DraftAccess, *, session: AsyncSession) -> None:
        """A party marks the current version as acceptable (an older mark is replaced)."""
        await session.commit()  # end the read transaction before waiting for the draft writer
        async with self.rooms.use(da.draft.id or 0) as room:
            await self.rooms.settle(room)
            approval = (await session.exec(select(DraftApproval).where(
                DraftApproval.draft_id == da.draft.id, DraftApproval.user_id == da.user.id
            ))).first() or DraftApproval(draft_id=da.draft.id or 0, user_id=da.user.id or 0,
                                         version=room.version)
            approval.version = room.version
            approval.at = utcnow()
            session.add(approval)
            await self._snapshot(session, room, "approved")
        await self.cases.record(session, da.case, "draft_approved", actor=da.user,
                                detail=str(da.draft.id),
                                audit_detail={"draft_id": da.draft.id, "version": room.version})

    async def freeze(self, da: DraftAccess, *, session: AsyncSession) -> tuple[str, int]:
        """Freeze for signature once every party approved the current version.

        The room stops taking writes first, then waits for what it already accepted, so the
        version checked is the version frozen.
        """
        draft = da.draft
        await session.commit()  # end the read transaction before waiting for the draft writer
        async with self.rooms.use(draft.id or 0) as room:
            room.frozen = True
            try:
                await self.rooms.settle(room)
                approvals = {a.user_id: a.version for a in (await session.exec(
                    select(DraftApproval).where(DraftApproval.draft_id == draft.id))).all()}
                parties = [p for p in await cases.participants(da.case, session=session)
                           if p.role == CaseRole.party]
                if not parties or any(approvals.get(p.user_id) != room.version for p in parties):
                    raise Conflict(N_("Every party must approve the current version before it "
                                      "can be frozen."))
                text = prosemirror.to_text(room.doc)
                html = prosemirror.to_html(room.doc)
                digest = hashlib.sha256(text.encode()).hexdigest()
                # Only the version checked: with several processes the draft's edits are
                # stored by the process that owns it, so this one's copy may be a moment old.
                # The owner's writer refuses updates to a frozen draft (``DraftRooms``).
                frozen = await session.exec(
                    update(Draft)
                    .where(col(Draft.id) == draft.id, col(Draft.version) == room.version,
                           col(Draft.frozen_at).is_(None))
                    .values(frozen_at=utcnow(), frozen_version=room.version, frozen_text=text,
                            frozen_html=html, frozen_sha256=digest)
                )
                if frozen.rowcount != 1:
                    raise Conflict(N_("The draft changed while it was being frozen. Every "
                                      "party must approve the current version."))
                await session.refresh(draft)
                await self._snapshot(session, room, "frozen")
                await self.cases.record(session, da.case, "draft_frozen", actor=da.user,
                                        detail=digest, audit_detail={"draft_id": draft.id,
                                                                     "version": room.version})
                if da.case.status == CaseStatus.consented:
                    await self.cases.transition(da.case, CaseStatus.in_session, actor=da.user,
                                                session=session)
                if da.case.status == CaseStatus.in_session:
                    await self.cases.transition(da.case, CaseStatus.agreement_drafted,
                                                actor=da.user, session=session)
                await session.commit()
            except BaseException:
                room.frozen = False
                raise
        return digest, draft.frozen_version or 0

    async def _snapshot(self, session: AsyncSession, room: DraftRoom, reason: str) -> None:
        session.add(DraftSnapshot(draft_id=room.draft_id, version=room.version, reason=reason,
                                  text=prosemirror.to_text(room.doc),
                                  html=prosemirror.to_html(room.doc)))

    async def versions(self, da: DraftAccess, *, session: AsyncSession) -> list[VersionPublic]:
        rows = await _snapshots(da.draft, session)
        return [VersionPublic(version=s.version, at=s.at, reason=s.reason) for s in rows]

    async def diff(self, da: DraftAccess, old: int, new: int, *,
                   session: AsyncSession) -> DiffPublic:
        """Line differences between two kept versions (approved, frozen, or the first)."""
        texts = {s.version: s.text for s in await _snapshots(da.draft, session)}
        if old not in texts or new not in texts:
            raise NotFound(N_("No such version of the draft."))
        lines: list[DiffLine] = []
        for line in difflib.ndiff(texts[old].splitlines(), texts[new].splitlines()):
            code, body = line[:2], line[2:]
            if code == "  ":
                lines.append(DiffLine(op="equal", text=body))
            elif code == "+ ":
                lines.append(DiffLine(op="insert", text=body))
            elif code == "- ":
                lines.append(DiffLine(op="delete", text=body))
        return DiffPublic(from_version=old, to_version=new, lines=lines)


async def _snapshots(draft: Draft, session: AsyncSession) -> Sequence[DraftSnapshot]:
    return (await session.exec(select(DraftSnapshot).where(DraftSnapshot.draft_id == draft.id)
                               .order_by(col(DraftSnapshot.id)))).all()


async def drafts_of(case: Case, subject: Subject, *, session: AsyncSession) -> list[Draft]:
    """The case's drafts this person may open (the mediation contract has its own place)."""
    rows = (await session.exec(select(Draft).where(
        Draft.case_id == case.id, Draft.template != contract_templates.TEMPLATE)
        .order_by(col(Draft.id)))).all()
    return [d for d in rows
            if access.may_draft(DraftAction.view_draft, subject, case, scope(d))]
