"""Organisations of mediators: a centre, a chamber, a court's conciliation office, a council of
public consent, the Assembly of People's public mediators.

An organisation has mediators and coordinators. A citizen may address a request to an
organisation instead of a named mediator; its coordinators then choose one of its mediators
(helped by how each fits the request's category, language and region, and by their load), and
see their organisation's cases as metadata only: number, category, language, region, status,
dates and mediator. Never the description, drafts, chat, notes or documents: those stay behind
the case's own access policy, where a coordinator is an outsider.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.access import FINAL
from odr.audit import AuditLog
from odr.cases import CaseService
from odr.errors import N_, Conflict, NotFound, Refused, Unauthenticated
from odr.models import (
    AccountRole,
    Case,
    CaseRole,
    CaseStatus,
    MediatorProfile,
    Organisation,
    OrganisationMember,
    Participant,
    User,
)
from odr.register import unpack
from odr.schemas import OrganisationIn, RequestMetadata, Suggestion

MEDIATOR, COORDINATOR = "mediator", "coordinator"


async def save(data: OrganisationIn, *, actor: User, session: AsyncSession, audit: AuditLog,
               organisation_id: int | None = None) -> Organisation:
    org = (await session.get(Organisation, organisation_id) if organisation_id
           else Organisation(name=data.name, kind=data.kind.value, region=data.region))
    if org is None:
        raise NotFound(N_("No such organisation."))
    org.name, org.kind, org.region, org.active = (data.name, data.kind.value, data.region,
                                                  data.active)
    session.add(org)
    await session.flush()
    await audit.append(session, "organisation.saved", actor_id=actor.id,
                       detail={"organisation_id": org.id, "name": org.name})
    return org


async def add_member(organisation_id: int, user_id: int, role: str, *, actor: User,
                     session: AsyncSession, audit: AuditLog) -> None:
    """Make someone a mediator (a registered one) or a coordinator of an organisation."""
    if await session.get(Organisation, organisation_id) is None:
        raise NotFound(N_("No such organisation."))
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(N_("No such user."))
    if role == MEDIATOR and user.role != AccountRole.mediator:
        raise Refused(N_("Only a mediator of the register can be an organisation's mediator."))
    exists = (await session.exec(select(OrganisationMember).where(
        OrganisationMember.organisation_id == organisation_id,
        OrganisationMember.user_id == user_id, OrganisationMember.role == role))).first()
    if exists is None:
        session.add(OrganisationMember(organisation_id=organisation_id, user_id=user_id,
                                       role=role))
        await audit.append(session, "organisation.member_added", actor_id=actor.id,
                           detail={"organisation_id": organisation_id, "user_id": user_id,
                                   "role": role})


async def active(organisation_id: int, *, session: AsyncSession) -> Organisation | None:
    org = await session.get(Organisation, organisation_id)
    return org if org is not None and org.active else None


async def require_coordinator(organisation_id: int, user: User | None, *,
                              session: AsyncSession) -> Organisation:
    """The organisation, if ``user`` coordinates it; to anyone else it has no inbox (404)."""
    if user is None:
        raise Unauthenticated(N_("Please sign in first."))
    org = await session.get(Organisation, organisation_id)
    member = org and (await session.exec(select(OrganisationMember.id).where(
        OrganisationMember.organisation_id == organisation_id,
        OrganisationMember.user_id == user.id,
        OrganisationMember.role == COORDINATOR))).first()
    if org is None or member is None:
        raise NotFound(N_("No such organisation."))
    return org


async def coordinated_by(user: User, *, session: AsyncSession) -> Sequence[Organisation]:
    return (await session.exec(select(Organisation).join(
        OrganisationMember, col(OrganisationMember.organisation_id) == col(Organisation.id))
        .where(OrganisationMember.user_id == user.id,
               OrganisationMember.role == COORDINATOR).order_by(col(Organisation.name)))).all()


async def _mediators(organisation_id: int, session: AsyncSession
                     ) -> list[tuple[User, MediatorProfile]]:
    rows = (await session.exec(select(User, MediatorProfile).join(
        OrganisationMember, col(OrganisationMember.user_id) == col(User.id)).join(
        MediatorProfile, col(MediatorProfile.user_id) == col(User.id)).where(
        OrganisationMember.organisation_id == organisation_id,
        OrganisationMember.role == MEDIATOR, col(MediatorProfile.active).is_(True),
        col(User.active).is_(True)).order_by(col(User.name)))).all()
    return list(rows)


async def _loads(user_ids: list[int], session: AsyncSession) -> dict[int, int]:
    """How many cases each mediator holds that have not ended."""
    if not user_ids:
        return {}
    rows = (await session.exec(select(Participant.user_id, func.count(col(Participant.id)))
                               .join(Case, col(Case.id) == col(Participant.case_id)).where(
        col(Participant.user_id).in_(user_ids), Participant.role == CaseRole.mediator,
        col(Participant.removed_at).is_(None), col(Case.status).not_in(list(FINAL)))
        .group_by(col(Participant.user_id)))).all()
    return dict(rows)


async def suggestions(case: Case, organisation_id: int, *, session: AsyncSession
                      ) -> list[Suggestion]:
    """The organisation's mediators for a request, best fitting first, then least loaded."""
    mediators = await _mediators(organisation_id, session)
    loads = await _loads([u.id or 0 for u, _p in mediators], session)
    found = [Suggestion(
        user_id=u.id or 0, name=u.name,
        fits_category=case.category.value in unpack(p.specialisations),
        speaks_language=case.language in unpack(p.languages),
        serves_region=case.region in unpack(p.regions), open_cases=loads.get(u.id or 0, 0))
        for u, p in mediators]
    return sorted(found, key=lambda s: (-(s.fits_category + s.speaks_language
                                          + s.serves_region), s.open_cases, s.name))


async def metadata(case: Case, session: AsyncSession) -> RequestMetadata:
    mediator = await session.get(User, case.chosen_mediator_id) if case.chosen_mediator_id \
        else None
    return RequestMetadata(id=case.id or 0, number=case.number, category=case.category,
                           language=case.language, region=case.region,
                           district=case.district, status=case.status, created_at=case.created_at,
                           mediator=mediator.name if mediator else None)


async def inbox(org: Organisation, *, session: AsyncSession) -> list[RequestMetadata]:
    """Requests addressed to the organisation that wait for a mediator, with suggestions."""
    waiting = (await session.exec(select(Case).where(
        Case.organisation_id == org.id, Case.status == CaseStatus.requested,
        col(Case.chosen_mediator_id).is_(None)).order_by(col(Case.created_at)))).all()
    result = []
    for case in waiting:
        item = await metadata(case, session)
        item.suggestions = await suggestions(case, org.id or 0, session=session)
        result.append(item)
    return result


async def cases_of(org: Organisation, *, session: AsyncSession) -> list[RequestMetadata]:
    """The organisation's cases: addressed to it, or held by one of its mediators."""
    members = select(OrganisationMember.user_id).where(
        OrganisationMember.organisation_id == org.id, OrganisationMember.role == MEDIATOR)
    rows = (await session.exec(select(Case).where(or_(
        Case.organisation_id == org.id, col(Case.chosen_mediator_id).in_(members)))
        .order_by(col(Case.created_at).desc()))).all()
    return [await metadata(case, session) for case in rows]


async def assign(org: Organisation, case_id: int, mediator_id: int, *, coordinator: User,
                 session: AsyncSession, cases: CaseService) -> Case:
    """Choose the mediator of a request addressed to the organisation: it then waits for that
    mediator to take it, as a request naming them would."""
    case = await session.get(Case, case_id)
    if case is None or case.organisation_id != org.id:
        raise NotFound(N_("No such request."))
    if case.status != CaseStatus.requested or case.chosen_mediator_id is not None:
        raise Conflict(N_("This request already has its mediator."))
    if mediator_id not in {u.id for u, _p in await _mediators(org.id or 0, session)}:
        raise Refused(N_("Choose one of the organisation's mediators."), field="mediator_id")
    case.chosen_mediator_id = mediator_id
    session.add(case)
    mediator = await session.get(User, mediator_id)
    await cases.record(session, case, "assigned", actor=coordinator,
                       detail=mediator.name if mediator else "",
                       audit_detail={"organisation_id": org.id, "mediator_id": mediator_id})
    return case
