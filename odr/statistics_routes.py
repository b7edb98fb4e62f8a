"""Statistics over HTTP (odr.statistics): for an organisation's coordinators (exact, per mediator
too), for administrators (platform-wide or per organisation, small cells hidden), and the open
statistics anyone may read (per region, category or month, small cells hidden). Each comes as a
page with charts and tables, as JSON, and as CSV; also the early-warning page and its
subscription."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import charts, early_warning, organisations, statistics, vocab, warning_watch
from odr.deps import CurrentUser, OptionalUser, QueryId, ServicesDep, SessionDep, Tr
from odr.errors import N_, Forbidden, NotFound, Refused, Unauthenticated
from odr.forms import read_form
from odr.i18n import LANGUAGE_NAMES, Translator
from odr.models import AccountRole, Organisation, User
from odr.openapi import refusals
from odr.organisation_routes import flag_public, may_see_warnings
from odr.pages import PageDep, login_redirect, redirect
from odr.schemas import (
    FlagPublic,
    StatisticsPublic,
    StatisticsRowPublic,
    SubscriptionIn,
    SubscriptionPublic,
)
from odr.services import Services

router = APIRouter()

Dimension = Literal["category", "region", "language", "mediator_kind", "organisation",
                    "mediator", "month"]
PublicDimension = Literal["region", "category", "month"]
HIDDEN = "[c]"  # the mark statistical offices use for a cell kept confidential
# The charts of every statistics page: the column each draws.
CHARTS = ("requested", "agreement_rate", "days_to_first_session", "days_to_close")
LONGEST = timedelta(days=3660)
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)  # beyond: no case, and no arithmetic


@dataclass(frozen=True)
class Scope:
    organisation: Organisation | None
    exact: bool


async def scope_of(user: User | None, organisation_id: int | None, by: str,
                   session: AsyncSession) -> Scope:
    """Who sees which figures: an organisation's coordinators its exact ones, administrators
    any organisation's or the platform's with small cells hidden; nobody else (the open
    statistics are for them)."""
    if user is None:
        raise Unauthenticated(N_("Please sign in first."))
    admin = user.role == AccountRole.administrator
    scope: Scope
    if organisation_id is None:
        if not admin:
            raise Forbidden(N_("Only administrators see the platform's statistics; "
                               "coordinators see their organisation's."))
        scope = Scope(None, False)
    else:
        org = await session.get(Organisation, organisation_id)
        if org is not None and await _coordinates(user, org, session):
            scope = Scope(org, True)
        elif org is not None and admin:
            scope = Scope(org, False)
        else:
            raise NotFound(N_("No such organisation."))
    if by == "mediator" and not scope.exact:
        raise Refused(N_("Figures per mediator are shown only to the mediator's "
                         "organisation."), field="by")
    return scope


async def _coordinates(user: User, org: Organisation, session: AsyncSession) -> bool:
    return any(o.id == org.id for o in await organisations.coordinated_by(user, session=session))


def period(start: date | None, end: date | None, svc: Services) -> tuple[date, date]:
    """The days asked for (both included); the last twelve months by default."""
    zone = ZoneInfo(svc.settings.default_timezone)
    end = end or datetime.now(zone).date()
    start = start or end - timedelta(days=364)
    if start < EARLIEST or end > LATEST:
        raise Refused(N_("Choose days between %(first)s and %(last)s."), field="start",
                      first=EARLIEST.isoformat(), last=LATEST.isoformat())
    if start > end:
        raise Refused(N_("The period's first day must not come after its last."), field="start")
    if end - start > LONGEST:
        raise Refused(N_("A period of at most ten years can be counted."), field="start")
    return start, end


async def compute(by: str, days: tuple[date, date], scope: Scope, session: AsyncSession,
                  svc: Services) -> statistics.Table:
    zone = ZoneInfo(svc.settings.default_timezone)
    start = datetime.combine(days[0], time(), zone)
    end = datetime.combine(days[1] + timedelta(days=1), time(), zone)
    return await statistics.table(
        by, start, end, session=session, exact=scope.exact,
        organisation_id=scope.organisation.id if scope.organisation else None)


def label(by: str, row: statistics.Row, tr: Translator) -> str:
    if row.key is None:
        return tr.gettext(vocab.DIMENSION_NONE_LABELS.get(by, N_("Not set")))
    names = {"category": vocab.CATEGORY_LABELS, "region": vocab.REGION_LABELS,
             "mediator_kind": vocab.MEDIATOR_KIND_LABELS}.get(by)
    if names is not None:
        return tr.gettext(names.get(row.key, row.key))
    if by == "language":
        return LANGUAGE_NAMES.get(row.key, row.key)
    return row.name or row.key


def figure(value: float | None, column: str) -> str:
    if value is None:
        return "—"
    if column in statistics.COUNTS:
        return f"{int(value)}"
    return f"{value:.1f}"


def cell(row: statistics.Row, column: str, tr: Translator) -> str:
    return HIDDEN if column in row.hidden else figure(row.values.get(column), column)


def public(table: statistics.Table, days: tuple[date, date], tr: Translator
           ) -> StatisticsPublic:
    def one(row: statistics.Row, name: str) -> StatisticsRowPublic:
        return StatisticsRowPublic(key=row.key, label=name,
                                   values={c: row.shown(c) for c in statistics.COLUMNS},
                                   hidden=sorted(row.hidden))
    return StatisticsPublic(
        by=table.by, start=days[0], end=days[1], exact=table.exact,
        columns=list(statistics.COLUMNS),
        rows=[one(r, label(table.by, r, tr)) for r in table.rows],
        total=one(table.total, tr.gettext(N_("All"))))


def as_csv(table: statistics.Table, days: tuple[date, date], tr: Translator) -> Response:
    """UTF-8 with a byte-order mark, so that a spreadsheet opens Kazakh and Russian right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([tr.gettext(vocab.DIMENSION_LABELS[table.by]),
                     *[tr.gettext(vocab.STATISTICS_COLUMN_LABELS[c])
                       for c in statistics.COLUMNS]])
    for row, name in [*[(r, label(table.by, r, tr)) for r in table.rows],
                      (table.total, tr.gettext(N_("All")))]:
        writer.writerow([name, *[cell(row, c, tr) for c in statistics.COLUMNS]])
    if not table.exact:
        writer.writerow([f"{HIDDEN}: " + tr.gettext(HIDDEN_NOTE)])
    name = f"statistics-{table.by}-{days[0]}-{days[1]}.csv"
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


HIDDEN_NOTE = N_("hidden so that no figure points at fewer than five cases (or lets a hidden "
                 "one be worked out from a total).")


def page_charts(table: statistics.Table, tr: Translator) -> list[charts.Chart]:
    return [charts.bar_chart(
        f"chart-{column}", tr.gettext(vocab.STATISTICS_COLUMN_LABELS[column]),
        [(label(table.by, r, tr), r.shown(column),
          cell(r, column, tr)) for r in table.rows]) for column in CHARTS]


# The API ------------------------------------------------------------------------------------

STATISTICS_REFUSALS = refusals(400, 401, 403, 404)


@router.get("/api/v1/statistics", tags=["organisations"], responses=STATISTICS_REFUSALS)
async def statistics_json(user: OptionalUser, session: SessionDep, tr: Tr, svc: ServicesDep,
                          by: Dimension = "category", start: date | None = None,
                          end: date | None = None,
                          organisation_id: QueryId | None = None,
                          ) -> StatisticsPublic:
    """For an organisation's coordinators (exact, ``by=mediator`` too) and administrators
    (small cells hidden): the cases requested from ``start`` to ``end``, per group."""
    scope = await scope_of(user, organisation_id, by, session)
    days = period(start, end, svc)
    return public(await compute(by, days, scope, session, svc), days, tr)


@router.get("/api/v1/statistics.csv", tags=["organisations"], responses=STATISTICS_REFUSALS,
            response_class=Response)
async def statistics_csv(user: OptionalUser, session: SessionDep, tr: Tr, svc: ServicesDep,
                         by: Dimension = "category", start: date | None = None,
                         end: date | None = None,
                         organisation_id: QueryId | None = None,
                         ) -> Response:
    scope = await scope_of(user, organisation_id, by, session)
    days = period(start, end, svc)
    return as_csv(await compute(by, days, scope, session, svc), days, tr)


@router.get("/api/v1/open-statistics", tags=["register"], responses=refusals(400))
async def open_statistics_json(session: SessionDep, tr: Tr, svc: ServicesDep,
                               by: PublicDimension = "region", start: date | None = None,
                               end: date | None = None) -> StatisticsPublic:
    """Anyone: the platform's figures per region, category or month, small cells hidden."""
    days = period(start, end, svc)
    return public(await compute(by, days, Scope(None, False), session, svc), days, tr)


@router.get("/api/v1/open-statistics.csv", tags=["register"], responses=refusals(400),
            response_class=Response)
async def open_statistics_csv(session: SessionDep, tr: Tr, svc: ServicesDep,
                              by: PublicDimension = "region", start: date | None = None,
                              end: date | None = None) -> Response:
    days = period(start, end, svc)
    return as_csv(await compute(by, days, Scope(None, False), session, svc), days, tr)


@router.get("/api/v1/early-warning/subscription", tags=["organisations"],
            responses=refusals(401, 403))
async def subscription(user: OptionalUser, session: SessionDep) -> SubscriptionPublic:
    await may_see_warnings(user, session)
    assert user is not None
    return SubscriptionPublic(subscribed=await warning_watch.subscribed(user, session=session))


@router.put("/api/v1/early-warning/subscription", tags=["organisations"],
            responses=refusals(400, 401, 403))
async def subscribe(data: SubscriptionIn, user: CurrentUser, session: SessionDep
                    ) -> SubscriptionPublic:
    """Get (or stop getting) the weekly early warning by e-mail."""
    await may_see_warnings(user, session)
    await warning_watch.subscribe(user, data.subscribed, session=session)
    await session.commit()
    return SubscriptionPublic(subscribed=data.subscribed)


# Pages --------------------------------------------------------------------------------------

def _query(by: str, days: tuple[date, date], **more: object) -> str:
    parts = {"by": by, "start": days[0].isoformat(), "end": days[1].isoformat(), **more}
    return "&".join(f"{k}={v}" for k, v in parts.items() if v is not None)


async def _render(p: PageDep, *, title: str, action: str, csv_url: str, by: str,
                  dimensions: tuple[str, ...], days: tuple[date, date], scope: Scope,
                  **context: Any) -> Response:
    table = await compute(by, days, scope, p.session, p.svc)
    return p.render("statistics.html", title=title, action=action, csv_url=csv_url,
                    table=table, days=days, dimensions=dimensions, charts=page_charts(table, p.tr),
                    label=lambda r: label(by, r, p.tr), cell=lambda r, c: cell(r, c, p.tr),
                    columns=statistics.COLUMNS, hidden_mark=HIDDEN, hidden_note=HIDDEN_NOTE,
                    **context)


@router.get("/open-statistics", include_in_schema=False)
async def open_statistics_page(p: PageDep, by: PublicDimension = "region",
                               start: date | None = None, end: date | None = None) -> Response:
    days = period(start, end, p.svc)
    return await _render(p, title=p.tr.gettext(N_("Open statistics of mediation")),
                         action="/open-statistics",
                         csv_url="/api/v1/open-statistics.csv?" + _query(by, days), by=by,
                         dimensions=statistics.PUBLIC_DIMENSIONS, days=days,
                         scope=Scope(None, False))


@router.get("/statistics", include_in_schema=False)
async def statistics_page(p: PageDep, by: Dimension = "category", start: date | None = None,
                          end: date | None = None,
                          organisation_id: QueryId | None = None
                          ) -> Response:
    if p.user is None:
        return login_redirect(p.request)
    scope = await scope_of(p.user, organisation_id, by, p.session)
    days = period(start, end, p.svc)
    org = scope.organisation
    dimensions = tuple(d for d in statistics.DIMENSIONS if d != "mediator" or scope.exact)
    organisations_list = (await p.session.exec(select(Organisation).order_by(
        col(Organisation.name)))).all() if p.user.role == AccountRole.administrator else []
    return await _render(
        p, title=(org.name if org else p.tr.gettext(N_("Statistics of the platform"))),
        action="/statistics", by=by, dimensions=dimensions, days=days, scope=scope,
        csv_url="/api/v1/statistics.csv?" + _query(by, days, organisation_id=organisation_id),
        organisation=org, organisations=organisations_list)


@router.get("/early-warning", include_in_schema=False)
async def early_warning_page(p: PageDep) -> Response:
    if p.user is None:
        return login_redirect(p.request)
    await may_see_warnings(p.user, p.session)
    flags: list[FlagPublic] = [flag_public(f) for f in await early_warning.flags(
        session=p.session)]
    return p.render("early_warning.html", flags=flags,
                    subscribed=await warning_watch.subscribed(p.user, session=p.session))


@router.post("/early-warning/subscription", include_in_schema=False)
async def subscription_form(p: PageDep) -> Response:
    values = await read_form(p.request)
    user = p.require_user()
    await may_see_warnings(user, p.session)
    await warning_watch.subscribe(user, values.get("subscribed") == "yes", session=p.session)
    await p.session.commit()
    return redirect("/early-warning?done=saved")
