"""Organisations over HTTP: the list, the administrator's changes, and each organisation's
coordinator inbox (API and page). Coordinators get metadata only (odr.organisations)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import early_warning, organisations
from odr.deps import Administrator, CurrentUser, OptionalUser, PathId, ServicesDep, SessionDep
from odr.errors import N_, Forbidden, Unauthenticated
from odr.forms import FormInvalid, parse, read_form
from odr.models import AccountRole, Category, Organisation, OrganisationKind, User
from odr.openapi import refusals
from odr.pages import PageDep, login_redirect, redirect
from odr.schemas import (
    AssignIn,
    FlagPublic,
    MemberIn,
    OrganisationIn,
    OrganisationPublic,
    RequestMetadata,
)

router = APIRouter()
COORDINATORS = refusals(401, 404)


def organisation_public(org: Organisation) -> OrganisationPublic:
    return OrganisationPublic(id=org.id or 0, name=org.name, kind=OrganisationKind(org.kind),
                              region=org.region, active=org.active)


@router.get("/api/v1/organisations", tags=["register"])
async def list_organisations(session: SessionDep) -> list[OrganisationPublic]:
    """Organisations a request can be addressed to."""
    rows = (await session.exec(select(Organisation).where(col(Organisation.active).is_(True))
                               .order_by(col(Organisation.name)))).all()
    return [organisation_public(o) for o in rows]


@router.post("/api/v1/admin/organisations", status_code=status.HTTP_201_CREATED,
             tags=["admin"])
async def create_organisation(data: OrganisationIn, admin: Administrator, svc: ServicesDep,
                              session: SessionDep) -> OrganisationPublic:
    org = await organisations.save(data, actor=admin, session=session, audit=svc.audit)
    await session.commit()
    return organisation_public(org)


@router.put("/api/v1/admin/organisations/{organisation_id}/members/{user_id}",
            status_code=status.HTTP_204_NO_CONTENT, tags=["admin"],
            responses=refusals(400, 404))
async def add_member(organisation_id: PathId, user_id: PathId, data: MemberIn,
                     admin: Administrator, svc: ServicesDep, session: SessionDep) -> Response:
    """Make an account one of the organisation's mediators or coordinators."""
    await organisations.add_member(organisation_id, user_id, data.role, actor=admin,
                                   session=session, audit=svc.audit)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/v1/organisations/{organisation_id}/requests", tags=["organisations"],
            responses=COORDINATORS)
async def organisation_requests(organisation_id: PathId, user: OptionalUser,
                                session: SessionDep) -> list[RequestMetadata]:
    """For its coordinators: requests addressed to the organisation that wait for a mediator,
    each with the organisation's mediators best fitting first."""
    org = await organisations.require_coordinator(organisation_id, user, session=session)
    return await organisations.inbox(org, session=session)


@router.get("/api/v1/organisations/{organisation_id}/cases", tags=["organisations"],
            responses=COORDINATORS)
async def organisation_cases(organisation_id: PathId, user: OptionalUser,
                             session: SessionDep) -> list[RequestMetadata]:
    """For its coordinators: the organisation's cases, as metadata only."""
    org = await organisations.require_coordinator(organisation_id, user, session=session)
    return await organisations.cases_of(org, session=session)


@router.post("/api/v1/organisations/{organisation_id}/requests/{case_id}/assign",
             tags=["organisations"], responses=refusals(400, 401, 404, 409))
async def assign_request(organisation_id: PathId, case_id: PathId, data: AssignIn,
                         user: CurrentUser, svc: ServicesDep, session: SessionDep
                         ) -> RequestMetadata:
    """A coordinator chooses the organisation's mediator for a request; it then waits for
    that mediator to take it."""
    org = await organisations.require_coordinator(organisation_id, user, session=session)
    case = await organisations.assign(org, case_id, data.mediator_id, coordinator=user,
                                      session=session, cases=svc.cases)
    await session.commit()
    return await organisations.metadata(case, session=session)


@router.get("/api/v1/early-warning", tags=["organisations"], responses=refusals(401, 403))
async def early_warning_flags(user: OptionalUser, session: SessionDep) -> list[FlagPublic]:
    """For coordinators and administrators: categories and regions where this week's requests
    rise well above the same category's previous twelve weeks there (odr.early_warning),
    with the series that raised each flag. Only category, region and date are read."""
    await may_see_warnings(user, session)
    return [flag_public(f) for f in await early_warning.flags(session=session)]


async def may_see_warnings(user: User | None, session: AsyncSession) -> None:
    if user is None:
        raise Unauthenticated(N_("Please sign in first."))
    if user.role != AccountRole.administrator and not await organisations.coordinated_by(
            user, session=session):
        raise Forbidden(N_("Only coordinators and administrators see early warnings."))


def flag_public(flag: early_warning.Flag) -> FlagPublic:
    return FlagPublic(category=Category(flag.category), region=flag.region,
                      district=flag.district, week_start=flag.week_start, count=flag.count,
                      mean=round(flag.mean, 2), spread=round(flag.spread, 2),
                      threshold=round(flag.threshold, 2), series=flag.series)


@router.get("/organisations/{organisation_id}", include_in_schema=False)
async def organisation_page(organisation_id: PathId, p: PageDep) -> Response:
    if p.user is None:
        return login_redirect(p.request)
    org = await organisations.require_coordinator(organisation_id, p.user, session=p.session)
    return p.render("organisation.html", org=org,
                    requests=await organisations.inbox(org, session=p.session),
                    cases=await organisations.cases_of(org, session=p.session),
                    flags=await early_warning.flags(session=p.session))


@router.post("/organisations/{organisation_id}/requests/{case_id}/assign",
             include_in_schema=False)
async def assign_form(organisation_id: PathId, case_id: PathId, p: PageDep) -> Response:
    values = await read_form(p.request)
    user = p.require_user()
    org = await organisations.require_coordinator(organisation_id, user, session=p.session)
    try:
        data = parse(AssignIn, values, p.tr)
    except FormInvalid:
        return redirect(f"/organisations/{organisation_id}")
    await organisations.assign(org, case_id, data.mediator_id, coordinator=user,
                               session=p.session, cases=p.svc.cases)
    await p.session.commit()
    return redirect(f"/organisations/{organisation_id}?done=assigned")
