"""How mediation works, in figures: for the cases requested in a period, grouped by one
dimension (category, region, language, mediator kind, organisation, mediator or month).

Only metadata is counted: the category, place, language, dates, status and outcome of each
case, how many sessions it had and how the mediator's time was shared (the neutrality
record), and the anonymous feedback scores. Never what a case says.

Figures that leave an organisation are protected against pointing at a person: every count
under ``SMALL`` cases is hidden, and so is a second cell wherever a hidden one could be worked
out from a total (``protect``); a mean, median or share is hidden when fewer than ``SMALL``
cases stand behind it or when it could give a hidden count back. An organisation's own
coordinators see its exact figures, per mediator too.

The database does the counting: one grouped query for the counts and sums (the case keeps the
running sums of its neutrality records and feedback), and one per median that returns how many
cases took each number of days, all answered from one index of the case table
(``ix_case_statistics``), so that the wide case rows are never read
(``bench/statistics_bench.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, or_
from sqlalchemy import case as when
from sqlalchemy import select as sa_select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.models import (
    Case,
    CaseStatus,
    MediatorProfile,
    Organisation,
    OrganisationMember,
    Outcome,
    User,
)

SMALL = 5
DIMENSIONS = ("category", "region", "language", "mediator_kind", "organisation", "mediator",
              "month")
# What the open statistics may be grouped by: no organisation or person.
PUBLIC_DIMENSIONS = ("region", "category", "month")

OUTCOMES = tuple(o.value for o in Outcome)
# Counts of cases; a group's outcomes add up to its closed cases.
COUNTS = ("requested", "accepted", "closed", *OUTCOMES, "court_accepted", "court_rejected",
          "sessions", "answers")
# Figures computed from the counts or over some of the cases.
MEASURES = ("agreement_rate", "days_to_first_session", "days_to_close", "side_a_share",
            "neutral_score", "clear_score")
COLUMNS = COUNTS + MEASURES


class days_between(FunctionElement[int]):
    """Whole days from the first moment to the second, in the database's own arithmetic."""

    type = Integer()
    inherit_cache = True


@compiles(days_between, "sqlite")
def _days_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    first, second = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({second}) - julianday({first}) AS INTEGER)"


@compiles(days_between, "postgresql")
def _days_postgres(element: days_between, compiler: Any, **kw: Any) -> str:
    first, second = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(floor(extract(epoch FROM ({second} - {first})) / 86400) AS INTEGER)"


class month_of(FunctionElement[str]):
    """The UTC month of a moment, as YYYY-MM."""

    type = String()
    inherit_cache = True


@compiles(month_of, "sqlite")
def _month_sqlite(element: month_of, compiler: Any, **kw: Any) -> str:
    (moment,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"strftime('%Y-%m', {moment})"


@compiles(month_of, "postgresql")
def _month_postgres(element: month_of, compiler: Any, **kw: Any) -> str:
    (moment,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"to_char({moment} AT TIME ZONE 'UTC', 'YYYY-MM')"


@dataclass
class Row:
    key: str | None  # the group's value (a category, a region, a user id...); None: not set
    name: str = ""  # the organisation's or mediator's name, for those groups
    values: dict[str, float | None] = field(default_factory=dict)  # None: no such figure
    hidden: set[str] = field(default_factory=set)
    # How many cases stand behind each measure (a mean over two answers is not shown).
    basis: dict[str, int] = field(default_factory=dict)

    def shown(self, column: str) -> float | None:
        return None if column in self.hidden else self.values.get(column)


@dataclass
class Table:
    by: str
    start: datetime
    end: datetime
    exact: bool
    rows: list[Row]
    total: Row


def organisation_filter(organisation_id: int) -> ColumnElement[bool]:
    """An organisation's cases: addressed to it, or held by one of its mediators."""
    members = select(OrganisationMember.user_id).where(
        OrganisationMember.organisation_id == organisation_id,
        OrganisationMember.role == "mediator")
    return or_(col(Case.organisation_id) == organisation_id,
               col(Case.chosen_mediator_id).in_(members))


def _key(by: str) -> Any:  # a column or an SQL expression
    if by == "mediator_kind":
        return col(MediatorProfile.kind)
    if by == "organisation":
        # The organisation a request was addressed to, else its mediator's (the first one).
        first = (select(func.min(OrganisationMember.organisation_id)).where(
            col(OrganisationMember.user_id) == col(Case.chosen_mediator_id),
            OrganisationMember.role == "mediator").scalar_subquery())
        return func.coalesce(col(Case.organisation_id), first)
    if by == "mediator":
        return col(Case.chosen_mediator_id)
    if by == "month":
        return month_of(col(Case.created_at))
    return getattr(Case, by)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(when((condition, 1), else_=0))


def _text(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


async def table(by: str, start: datetime, end: datetime, *, session: AsyncSession,
                organisation_id: int | None = None, exact: bool = False) -> Table:
    """The figures of the cases requested from ``start`` to ``end``, per value of ``by``,
    with a total; protected (``protect``) unless ``exact``."""
    if by not in DIMENSIONS:
        raise ValueError(by)
    key = _key(by).label("key")
    where = [col(Case.created_at) >= start, col(Case.created_at) < end]
    if organisation_id is not None:
        where.append(organisation_filter(organisation_id))

    def scoped(query: Any) -> Any:
        if by == "mediator_kind":
            query = query.outerjoin(MediatorProfile,
                                    col(MediatorProfile.user_id) == col(Case.chosen_mediator_id))
        return query.where(*where)

    # One pass over the case rows' statistics index (odr.models.STATISTICS_COLUMNS).
    counts = scoped(sa_select(
        key, func.count(), func.count(col(Case.accepted_at)), func.count(col(Case.outcome)),
        *[_count_if(col(Case.outcome) == o) for o in Outcome],
        _count_if(col(Case.status) == CaseStatus.court_accepted),
        _count_if(col(Case.status) == CaseStatus.court_rejected),
        func.sum(col(Case.sessions_held)), _count_if(col(Case.sessions_held) > 0),
        func.sum(col(Case.side_a_seconds)), func.sum(col(Case.side_b_seconds)),
        func.sum(col(Case.feedback_answers)), func.sum(col(Case.feedback_neutral)),
        func.sum(col(Case.feedback_clear)),
    ).select_from(Case)).group_by(key)
    groups: dict[str | None, _Sums] = {}
    for values in (await session.exec(counts)).all():
        groups[_text(values[0])] = _Sums.of(values[1:])

    medians: dict[str, dict[str | None, dict[int, int]]] = {}
    for column, moment in (("days_to_first_session", Case.first_session_at),
                           ("days_to_close", Case.closed_at)):
        days = days_between(col(Case.created_at), col(moment)).label("days")
        histogram = scoped(select(key, days, func.count()).select_from(Case)).where(
            col(moment).is_not(None)).group_by(key, days)
        found: dict[str | None, dict[int, int]] = {}
        for group, n_days, n in (await session.exec(histogram)).all():
            found.setdefault(_text(group), {})[int(n_days)] = int(n)
        medians[column] = found

    rows = [_row(k, sums, {c: medians[c].get(k, {}) for c in medians})
            for k, sums in groups.items()]
    total_sums = _Sums.total(groups.values())
    total = _row("", total_sums, {c: _merge(medians[c].values()) for c in medians})
    await _name(by, rows, session)
    rows.sort(key=lambda r: (r.key is None, r.name or r.key or ""))
    result = Table(by, start, end, exact, rows, total)
    if not exact:
        protect(result)
    return result


@dataclass
class _Sums:
    requested: int = 0
    accepted: int = 0
    closed: int = 0
    outcomes: tuple[int, ...] = (0,) * len(OUTCOMES)
    court_accepted: int = 0
    court_rejected: int = 0
    sessions: int = 0
    cases_with_sessions: int = 0
    side_a: int = 0
    side_b: int = 0
    answers: int = 0
    neutral: int = 0
    clear: int = 0

    @classmethod
    def of(cls, values: Iterable[Any]) -> _Sums:
        v = [int(x or 0) for x in values]
        n = len(OUTCOMES)
        return cls(v[0], v[1], v[2], tuple(v[3:3 + n]), *v[3 + n:])

    @classmethod
    def total(cls, groups: Iterable[_Sums]) -> _Sums:
        result = cls()
        for g in groups:
            for name in result.__dataclass_fields__:
                a, b = getattr(result, name), getattr(g, name)
                setattr(result, name, tuple(map(sum, zip(a, b, strict=True)))
                        if name == "outcomes" else a + b)
        return result


def _merge(histograms: Iterable[dict[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for h in histograms:
        for days, n in h.items():
            merged[days] = merged.get(days, 0) + n
    return merged


def median(histogram: dict[int, int]) -> float | None:
    """The median of values given as {value: how many times}."""
    n = sum(histogram.values())
    if n == 0:
        return None

    def at(position: int) -> int:  # the value at a 0-based position of the sorted values
        seen = 0
        for value, count in sorted(histogram.items()):
            seen += count
            if position < seen:
                return value
        raise IndexError(position)

    return (at((n - 1) // 2) + at(n // 2)) / 2


def _ratio(part: int, whole: int, scale: float = 100.0) -> float | None:
    return round(part / whole * scale, 1) if whole else None


def _row(key: str | None, s: _Sums, histograms: dict[str, dict[int, int]]) -> Row:
    values: dict[str, float | None] = {
        "requested": s.requested, "accepted": s.accepted, "closed": s.closed,
        **dict(zip(OUTCOMES, map(float, s.outcomes), strict=True)),
        "court_accepted": s.court_accepted, "court_rejected": s.court_rejected,
        "sessions": s.sessions, "answers": s.answers,
        "agreement_rate": _ratio(s.outcomes[0] + s.outcomes[1], s.closed),
        "side_a_share": _ratio(s.side_a, s.side_a + s.side_b),
        "neutral_score": _ratio(s.neutral, s.answers, 1.0),
        "clear_score": _ratio(s.clear, s.answers, 1.0),
    }
    for column, histogram in histograms.items():
        values[column] = median(histogram)
    return Row(key, values=values, basis={
        "agreement_rate": s.closed, "side_a_share": s.cases_with_sessions,
        "neutral_score": s.answers, "clear_score": s.answers,
        **{c: sum(h.values()) for c, h in histograms.items()}})


async def _name(by: str, rows: list[Row], session: AsyncSession) -> None:
    if by not in ("organisation", "mediator"):
        return
    ids = [int(r.key) for r in rows if r.key is not None]
    model: Any = Organisation if by == "organisation" else User
    names = dict((await session.exec(select(model.id, model.name).where(
        col(model.id).in_(ids)))).all())
    for r in rows:
        r.name = names.get(int(r.key), "") if r.key is not None else ""


def protect(t: Table) -> None:
    """Hide what could point at fewer than ``SMALL`` cases.

    Every count under ``SMALL`` is hidden (zero too: "nobody" also says something about the
    few). Where a total is shown and just one of the cells adding up to it is hidden, the
    smallest shown one beside it is hidden as well, until no hidden cell can be worked out by
    subtraction: down each column (the groups add up to the total) and along each row (the
    outcomes add up to the closed cases). A measure is hidden when fewer than ``SMALL`` cases
    stand behind it, or, for the agreement rate, when a count it is made from is hidden.
    """
    everyone = [*t.rows, t.total]
    for row in everyone:
        for column in COUNTS:
            if (row.values[column] or 0) < SMALL:
                row.hidden.add(column)
    relations: list[tuple[Row, str, list[tuple[Row, str]]]] = [
        (t.total, column, [(r, column) for r in t.rows]) for column in COUNTS]
    relations += [(row, "closed", [(row, o) for o in OUTCOMES]) for row in everyone]
    changed = True
    while changed:
        changed = False
        for whole_row, whole, parts in relations:
            if whole in whole_row.hidden:
                continue
            hidden = [p for p in parts if p[1] in p[0].hidden]
            shown = [p for p in parts if p[1] not in p[0].hidden]
            if len(hidden) == 1 and shown:
                row, column = min(shown, key=lambda p: p[0].values[p[1]] or 0)
                row.hidden.add(column)
                changed = True
    for row in everyone:
        for column in MEASURES:
            if row.basis.get(column, 0) < SMALL:
                row.hidden.add(column)
        if {"closed", OUTCOMES[0], OUTCOMES[1]} & row.hidden:
            row.hidden.add("agreement_rate")

