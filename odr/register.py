"""The public register of mediators, and the list of courts, kept by the administrator."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.audit import AuditLog
from odr.errors import N_, NotFound, Refused
from odr.models import (
    AccountRole,
    Court,
    MediatorKind,
    MediatorProfile,
    Organisation,
    OrganisationMember,
    User,
)
from odr.schemas import CourtIn, MediatorProfileIn, MediatorPublic


def pack(values: Iterable[str]) -> str:
    """Store a list as ``,a,b,`` so that ``LIKE '%,a,%'`` finds it on SQLite and PostgreSQL."""
    return "," + ",".join(dict.fromkeys(str(v) for v in values)) + ","


def unpack(stored: str) -> list[str]:
    return [v for v in stored.split(",") if v]


def mediator_public(profile: MediatorProfile, user: User) -> MediatorPublic:
    return MediatorPublic(
        user_id=user.id or 0, name=user.name, kind=profile.kind, certificate=profile.certificate,
        certified_on=profile.certified_on, languages=unpack(profile.languages),
        regions=unpack(profile.regions), specialisations=unpack(profile.specialisations),
        bio=profile.bio,
    )


async def search_mediators(
    *,
    session: AsyncSession,
    language: str | None = None,
    region: str | None = None,
    specialisation: str | None = None,
    kind: MediatorKind | None = None,
) -> list[MediatorPublic]:
    query = (
        select(MediatorProfile, User)
        .join(User, col(User.id) == col(MediatorProfile.user_id))
        .where(col(MediatorProfile.active).is_(True), col(User.active).is_(True),
               User.role == AccountRole.mediator)
        .order_by(col(User.name))
    )
    for column, value in (
        (MediatorProfile.languages, language),
        (MediatorProfile.regions, region),
        (MediatorProfile.specialisations, specialisation),
    ):
        if value:
            query = query.where(col(column).contains(f",{value},", autoescape=True))
    if kind is not None:
        query = query.where(MediatorProfile.kind == kind)
    found = [mediator_public(p, u) for p, u in (await session.exec(query)).all()]
    names = await organisations_of_mediators(session=session)
    for mediator in found:
        mediator.organisations = names.get(mediator.user_id, [])
    return found


async def save_profile(
    user_id: int, data: MediatorProfileIn, *, actor: User, session: AsyncSession, audit: AuditLog
) -> MediatorProfile:
    """Create or replace a mediator's entry; the account becomes a mediator account."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(N_("No such user."))
    if user.role not in (AccountRole.mediator, AccountRole.party):
        raise Refused(N_("This account cannot be a mediator."))
    profile = (
        await session.exec(select(MediatorProfile).where(MediatorProfile.user_id == user_id))
    ).first() or MediatorProfile(user_id=user_id, kind=data.kind)
    profile.kind = data.kind
    profile.certificate = data.certificate
    profile.certified_on = data.certified_on
    profile.languages = pack(data.languages)
    profile.regions = pack(data.regions)
    profile.specialisations = pack(s.value for s in data.specialisations)
    profile.bio = data.bio
    profile.active = data.active
    user.role = AccountRole.mediator
    session.add_all([profile, user])
    await session.flush()
    await audit.append(session, "register.profile_saved", actor_id=actor.id,
                       detail={"user_id": user_id, "active": data.active})
    return profile


async def profile_of(user_id: int, *, session: AsyncSession) -> MediatorProfile | None:
    return (
        await session.exec(select(MediatorProfile).where(MediatorProfile.user_id == user_id))
    ).first()


async def courts(*, session: AsyncSession, active_only: bool = False) -> Sequence[Court]:
    query = select(Court).order_by(col(Court.name))
    if active_only:
        query = query.where(col(Court.active).is_(True))
    return (await session.exec(query)).all()


async def save_court(
    data: CourtIn, *, actor: User, session: AsyncSession, audit: AuditLog,
    court_id: int | None = None,
) -> Court:
    court = Court(name=data.name, region=data.region)
    if court_id is not None:
        court = await court_by_id(court_id, session=session)
    court.name, court.region, court.address, court.active = (
        data.name, data.region, data.address, data.active
    )
    return await _court_saved(court, actor=actor, session=session, audit=audit)


async def set_court_active(
    court_id: int, active: bool, *, actor: User, session: AsyncSession, audit: AuditLog
) -> Court:
    """Take a court out of use (no new filings) or back; its past filings and clerks stay."""
    court = await court_by_id(court_id, session=session)
    court.active = active
    return await _court_saved(court, actor=actor, session=session, audit=audit)


async def court_by_id(court_id: int, *, session: AsyncSession) -> Court:
    court = await session.get(Court, court_id)
    if court is None:
        # The field lets a form show the refusal beside its court choice.
        raise NotFound(N_("No such court."), field="court_id")
    return court


async def _court_saved(
    court: Court, *, actor: User, session: AsyncSession, audit: AuditLog
) -> Court:
    session.add(court)
    await session.flush()
    await audit.append(session, "register.court_saved", actor_id=actor.id,
                       detail={"court_id": court.id, "name": court.name, "active": court.active})
    return court


async def assign_clerk(
    user_id: int, court_id: int, *, actor: User, session: AsyncSession, audit: AuditLog
) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(N_("No such user."))
    # A citizen's account (or a clerk moving court) only: making an administrator a clerk would
    # take away their administration (found by fuzzing: the fuzzer's admin demoted itself), and a
    # mediator's cases and register entry would be left behind.
    if user.role not in (AccountRole.party, AccountRole.court_clerk):
        raise Refused(N_("This account cannot be a court clerk."))
    await court_by_id(court_id, session=session)
    user.role = AccountRole.court_clerk
    user.court_id = court_id
    session.add(user)
    await audit.append(session, "register.clerk_assigned", actor_id=actor.id,
                       detail={"user_id": user_id, "court_id": court_id})
    return user


async def organisations_of_mediators(*, session: AsyncSession) -> dict[int, list[str]]:
    """Each mediator's organisations, for the register."""
    rows = (await session.exec(select(OrganisationMember.user_id, Organisation.name).join(
        Organisation, col(Organisation.id) == col(OrganisationMember.organisation_id))
        .where(OrganisationMember.role == "mediator", col(Organisation.active).is_(True))
        .order_by(col(Organisation.name)))).all()
    found: dict[int, list[str]] = {}
    for user_id, name in rows:
        found.setdefault(user_id, []).append(name)
    return found
