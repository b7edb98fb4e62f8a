"""Statistics over generated cases (tests/generated.py): the figures match direct SQL counts; cells
of fewer than five cases are hidden wherever figures leave the organisation, and no hidden cell
can be worked out from a total; each organisation sees only its own; nothing of what a case
says is read. And the weekly early warning mails its subscribers once."""

from __future__ import annotations

import csv
import io
import statistics as stdlib_statistics
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from odr import statistics, warning_watch
from odr.models import Case, Category, Outcome
from odr.services import Services
from tests import generated
from tests.harness import Person, Platform, expect

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # a Monday, 11:00 in Almaty
START, END = date(2025, 1, 1), date(2026, 11, 30)
ZONE = ZoneInfo("Asia/Almaty")
BOUNDS = (datetime.combine(START, time(), ZONE).astimezone(UTC),
          datetime.combine(END + timedelta(days=1), time(), ZONE).astimezone(UTC))
PERIOD = f"start={START}&end={END}"
# The weekly run's test is set in a week of its own, so that the service's own job (running on
# the real clock) does not claim it first.
MONDAY = datetime(2030, 3, 4, 6, 0, tzinfo=UTC)  # 11:00 in Almaty
SECRET = "Zhanibek-owes-Serik-4000-tenge"  # in every summary: must never come out


class World:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        admin = platform.admin.client
        self.orgs = [expect(admin.post("/api/v1/admin/organisations", json={
            "name": name, "kind": "centre", "region": "almaty_city"}), 201)["id"]
            for name in ("Almaty Mediation Centre", "Astana Chamber of Mediators")]
        self.mediators = [platform.mediator(f"Mediator {n}") for n in ("One", "Two", "Three")]
        self.coordinators = [platform.register(f"Coordinator {n}") for n in ("A", "B")]
        for org, coordinator, mediators in ((self.orgs[0], self.coordinators[0],
                                             self.mediators[:2]),
                                            (self.orgs[1], self.coordinators[1],
                                             self.mediators[2:])):
            for person, role in [(coordinator, "coordinator"),
                                 *[(m, "mediator") for m in mediators]]:
                expect(admin.put(f"/api/v1/admin/organisations/{org}/members/{person.id}",
                                 json={"role": role}), 204)
        self.requester = platform.register("Generated Requester")
        home = {m.id: self.orgs[0] for m in self.mediators[:2]} | {
            self.mediators[2].id: self.orgs[1]}

        async def fill(svc: Services) -> None:
            async with svc.maker() as session:
                await generated.insert(session, cases=2500, now=NOW,
                                       requester_id=self.requester.id, mediators=home,
                                       summary=SECRET)
                # A region with three requests: its cells must be hidden outside.
                await generated.insert(session, cases=3, now=NOW, seed=5, prefix="u",
                                       requester_id=self.requester.id, mediators=home,
                                       regions=("ulytau",), summary=SECRET)

        platform.run(fill)

    def exact(self, by: str, organisation_id: int | None = None) -> statistics.Table:
        async def compute(svc: Services) -> statistics.Table:
            async with svc.reader() as session:
                return await statistics.table(by, *BOUNDS, session=session, exact=True,
                                              organisation_id=organisation_id)
        return self.platform.run(compute)


@pytest.fixture
def world(platform: Platform) -> World:
    return World(platform)


def moment(platform: Platform, at: datetime) -> datetime:
    """A bound as the database compares it (SQLite keeps naive UTC text)."""
    sqlite = platform.settings.effective_database_url.startswith("sqlite")
    return at.replace(tzinfo=None) if sqlite else at


def test_figures_match_a_direct_count(world: World) -> None:
    platform, org = world.platform, world.orgs[0]
    coordinator = world.coordinators[0]
    got = expect(coordinator.client.get(
        f"/api/v1/statistics?by=category&organisation_id={org}&{PERIOD}"), 200)
    assert got["exact"] is True and got["start"] == str(START) and got["end"] == str(END)
    mediators = tuple(m.id for m in world.mediators[:2])
    scope = ('FROM "case" c WHERE (c.organisation_id = ? OR c.chosen_mediator_id IN '
             '(?, ?)) AND c.created_at >= ? AND c.created_at < ? AND c.category = ?')
    rows = {r["key"]: r for r in got["rows"]}
    assert set(rows) == {c.value for c in Category}
    cases = cases_of(platform, org, mediators)
    for category in Category:
        params = (org, *mediators, *(moment(platform, b) for b in BOUNDS), category.value)

        def count(condition: str = "1 = 1", *extra: object, table: str = "",
                  params: tuple[object, ...] = params) -> int:
            return int(platform.scalar(f"SELECT count(*) {scope} AND {condition}",
                                       *params, *extra)) if not table else int(
                platform.scalar(f"SELECT count(*) FROM {table} x WHERE x.case_id IN "
                                f"(SELECT c.id {scope})", *params))
        values = rows[category.value]["values"]
        assert rows[category.value]["hidden"] == []
        assert values["requested"] == count() > 0
        assert values["accepted"] == count("c.accepted_at IS NOT NULL")
        assert values["closed"] == count("c.outcome IS NOT NULL")
        for outcome in Outcome:
            assert values[outcome.value] == count("c.outcome = ?", outcome.value), outcome
        assert values["court_accepted"] == count("c.status = 'court_accepted'")
        assert values["court_rejected"] == count("c.status = 'court_rejected'")
        assert values["sessions"] == count(table="neutralityrecord")
        assert values["answers"] == count(table="feedback")
        # The measures, from the cases themselves.
        mine = [c for c in cases if c.category == category]
        closed = [c for c in mine if c.outcome is not None]
        agreed = [c for c in closed if c.outcome in (Outcome.full_agreement,
                                                     Outcome.partial_agreement)]
        assert values["agreement_rate"] == round(len(agreed) / len(closed) * 100, 1)
        for column, attribute in (("days_to_first_session", "first_session_at"),
                                  ("days_to_close", "closed_at")):
            days = [int((getattr(c, attribute) - c.created_at).total_seconds() // 86400)
                    for c in mine if getattr(c, attribute) is not None]
            assert values[column] == stdlib_statistics.median(days), column
    total = got["total"]["values"]
    assert total["requested"] == sum(r["values"]["requested"] for r in got["rows"])
    # Per mediator, for the organisation itself: the two mediators and nobody else's.
    per_mediator = expect(coordinator.client.get(
        f"/api/v1/statistics?by=mediator&organisation_id={org}&{PERIOD}"), 200)
    names = {r["label"] for r in per_mediator["rows"]}
    assert names == {"Mediator One", "Mediator Two"}


def cases_of(platform: Platform, org: int, mediators: tuple[int, ...]) -> list[Case]:
    async def read(svc: Services) -> list[Case]:
        async with svc.reader() as session:
            return list((await session.exec(select(Case).where(
                (col(Case.organisation_id) == org) | col(Case.chosen_mediator_id).in_(mediators),
                col(Case.created_at) >= BOUNDS[0], col(Case.created_at) < BOUNDS[1]))).all())
    return platform.run(read)


def assert_protected(got: dict[str, Any], truth: statistics.Table) -> None:
    """Every count under five hidden; no hidden count derivable from a shown total; the shown
    figures are the true ones."""
    true_rows = {r.key: r for r in truth.rows}
    rows = [(r, true_rows[r["key"]]) for r in got["rows"]] + [(got["total"], truth.total)]
    assert len(rows) == len(truth.rows) + 1
    for shown, true in rows:
        for column in statistics.COUNTS:
            value = true.values[column] or 0
            if value < statistics.SMALL:
                assert column in shown["hidden"] and shown["values"][column] is None, (
                    shown["label"], column, value)
            elif column not in shown["hidden"]:
                assert shown["values"][column] == value
        hidden_outcomes = [o for o in statistics.OUTCOMES if o in shown["hidden"]]
        assert "closed" in shown["hidden"] or len(hidden_outcomes) != 1, shown
    for column in statistics.COUNTS:
        if column not in got["total"]["hidden"]:
            assert sum(column in r["hidden"] for r in got["rows"]) != 1, column


def test_small_cells_are_hidden_wherever_figures_leave_the_organisation(
        world: World) -> None:
    platform = world.platform
    admin, anonymous = platform.admin.client, platform.anonymous
    for by in ("region", "category", "month"):
        truth = world.exact(by)
        for got in (expect(admin.get(f"/api/v1/statistics?by={by}&{PERIOD}"), 200),
                    expect(anonymous.get(f"/api/v1/open-statistics?by={by}&{PERIOD}"), 200)):
            assert got["exact"] is False
            assert_protected(got, truth)
    # Ulytau's three requests are behind [c] on the open page and in the open CSV.
    by_region = expect(anonymous.get(f"/api/v1/open-statistics?by=region&{PERIOD}"), 200)
    ulytau = next(r for r in by_region["rows"] if r["key"] == "ulytau")
    assert set(statistics.COUNTS) <= set(ulytau["hidden"])
    sheet = anonymous.get(f"/api/v1/open-statistics.csv?by=region&{PERIOD}")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert table[0][:2] == ["Region", "Requested"]
    ulytau_line = next(line for line in table if line[0] == "Ulytau Region")
    assert ulytau_line[1:1 + len(statistics.COUNTS)] == ["[c]"] * len(statistics.COUNTS)
    page = anonymous.get(f"/open-statistics?by=region&{PERIOD}")
    assert page.status_code == 200 and "Ulytau Region" in page.text and "[c]" in page.text
    # The administrator looking at one organisation is outside it too.
    org = world.orgs[0]
    assert_protected(expect(admin.get(
        f"/api/v1/statistics?by=region&organisation_id={org}&{PERIOD}"), 200),
        world.exact("region", org))
    # Inside, the coordinator sees the exact small figures.
    inside = expect(world.coordinators[0].client.get(
        f"/api/v1/statistics?by=region&organisation_id={org}&{PERIOD}"), 200)
    assert all(r["hidden"] == [] for r in inside["rows"])
    # Nothing of what the cases say is in any of it.
    for response in (sheet, page, admin.get(f"/statistics?{PERIOD}"),
                     world.coordinators[0].client.get(
                         f"/statistics?organisation_id={org}&by=mediator&{PERIOD}")):
        assert response.status_code == 200 and SECRET not in response.text


def test_each_organisation_sees_its_own_only(world: World) -> None:
    platform = world.platform
    a, b = world.orgs
    coordinator_a = world.coordinators[0].client
    expect(coordinator_a.get(f"/api/v1/statistics?organisation_id={b}"), 404)
    assert coordinator_a.get(f"/statistics?organisation_id={b}").status_code == 404
    expect(coordinator_a.get("/api/v1/statistics"), 403)
    mediator = world.mediators[0].client
    expect(mediator.get(f"/api/v1/statistics?organisation_id={a}"), 404)
    expect(platform.anonymous.get(f"/api/v1/statistics?organisation_id={a}"), 401)
    # Per mediator only inside the organisation; never on the open page.
    refused = expect(platform.admin.client.get(
        f"/api/v1/statistics?organisation_id={a}&by=mediator"), 400)
    assert "organisation" in refused["detail"]
    expect(platform.anonymous.get("/api/v1/open-statistics?by=mediator"), 422)
    expect(platform.anonymous.get("/api/v1/open-statistics?by=organisation"), 422)
    # A period the wrong way round, in the reader's language.
    russian = platform.client(**{"accept-language": "ru"})
    wrong = expect(russian.get("/api/v1/open-statistics?start=2026-05-01&end=2026-04-01"), 400)
    assert wrong["detail"] == "Первый день периода не может быть позже последнего."
    for bad in ("start=0001-01-01&end=0001-01-02", "start=2026-01-01&end=9999-12-31",
                "start=2001-01-01&end=2026-01-01", "start=2026-13-01"):
        response = russian.get(f"/api/v1/open-statistics?{bad}")
        assert response.status_code in (400, 422), (bad, response.status_code)
    b_view = expect(world.coordinators[1].client.get(
        f"/api/v1/statistics?by=mediator&organisation_id={b}&{PERIOD}"), 200)
    assert {r["label"] for r in b_view["rows"]} == {"Mediator Three"}


def test_the_weekly_warning_mails_subscribers_once(platform: Platform) -> None:
    org = expect(platform.admin.client.post("/api/v1/admin/organisations", json={
        "name": "Council of Public Consent, Shymkent", "kind": "public_council",
        "region": "shymkent"}), 201)["id"]
    subscriber, other = platform.register("Kamila Coordinator"), platform.register("Other Coord")
    for person in (subscriber, other):
        expect(platform.admin.client.put(
            f"/api/v1/admin/organisations/{org}/members/{person.id}",
            json={"role": "coordinator"}), 204)
    citizen = platform.register("Plain Citizen")
    expect(citizen.client.put("/api/v1/early-warning/subscription",
                              json={"subscribed": True}), 403)
    assert expect(subscriber.client.get("/api/v1/early-warning/subscription"), 200) == {
        "subscribed": False}
    expect(subscriber.client.put("/api/v1/early-warning/subscription",
                                 json={"subscribed": True}), 200)
    plant_surge(platform, subscriber)
    watch = warning_watch.WarningWatch(platform.services)

    def run(at: datetime) -> int:
        return platform.run(lambda _svc: watch.run_once(at))

    early = MONDAY.replace(hour=0)  # Monday 05:00 in Almaty: before the hour
    assert warning_watch.due_week(early, 0, 6, ZONE) is None
    assert run(early) == 0
    assert run(MONDAY) == 1
    assert run(MONDAY + timedelta(hours=1)) == 0  # claimed: once a week
    mails = platform.mails_to(subscriber.email)[1:]  # after the sign-up link
    assert len(mails) == 1 and "1" in mails[0].subject
    # In the subscriber's language (theirs is unset: the platform's, Russian).
    assert "Шымкент, Kazygurt: 24" in mails[0].body and "· 0 · 24" in mails[0].body
    assert len(platform.mails_to(other.email)) == 1  # the sign-up link only
    # Unsubscribed on the page, no mail the next week.
    page = subscriber.client.get("/early-warning")
    assert page.status_code == 200 and "Stop the e-mails" in page.text
    expect(subscriber.client.put("/api/v1/early-warning/subscription",
                                 json={"subscribed": False}), 200)
    assert run(MONDAY + timedelta(days=7)) == 0


def plant_surge(platform: Platform, person: Person) -> None:
    """Twenty-four family requests in one district of Shymkent this week, written as people
    write (spaces, lower case): the platform stores one form of the district's name."""
    for i in range(24):
        expect(person.client.post("/api/v1/cases", json={
            "category": "family", "summary": "Спор о порядке общения с ребёнком.",
            "other_party_name": "Другая сторона", "other_party_contact": f"p{i}@example.kz",
            "language": "ru", "region": "shymkent",
            "district": "  kazygurt " if i % 2 else "Kazygurt"}), 201)

    async def backdate(svc: Services) -> None:  # requested in the week before MONDAY
        async with svc.maker() as session:
            for case in (await session.exec(select(Case).where(
                    Case.district == "Kazygurt"))).all():
                case.created_at = MONDAY - timedelta(days=2)
                session.add(case)
            await session.commit()

    platform.run(backdate)
