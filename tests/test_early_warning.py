"""Early warning over generated data: two years of requests spread over categories and regions,
with one surge planted in one district and category. The surge is flagged and nothing else; the
counts behind the flag match a direct SQL count; coordinators and administrators see the flags,
nobody else does."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from odr import early_warning
from odr.models import Case, Category
from odr.services import Services
from tests.harness import Platform, expect

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
REGIONS = ("almaty_city", "astana", "shymkent", "karaganda", "turkistan")


def generate(platform: Platform, requester_id: int) -> int:
    """About 3,600 requests over 104 weeks, then 24 family ones in Shymkent this week."""
    rng = random.Random(401)
    rows = []
    for _ in range(3600):
        at = NOW - timedelta(seconds=rng.uniform(7 * 86400, 104 * 7 * 86400))
        rows.append((rng.choice(list(Category)), rng.choice(REGIONS), at))
    for _ in range(3):  # an ordinary week too
        rows.append((Category.labour, "astana", NOW - timedelta(days=rng.uniform(0, 6.9))))
    for _ in range(24):
        rows.append((Category.family, "shymkent", NOW - timedelta(days=rng.uniform(0, 6.9))))

    async def insert(svc: Services) -> None:
        async with svc.maker() as session:
            for i, (category, region, at) in enumerate(rows):
                session.add(Case(number=f"gen-{i:05d}", category=category, summary="-",
                                 language="ru", region=region, requester_id=requester_id,
                                 other_party_name="-", other_party_contact="-",
                                 created_at=at, updated_at=at))
            await session.commit()

    platform.run(insert)
    return len(rows)


def test_a_planted_surge_is_flagged_and_nothing_else(platform: Platform) -> None:
    requester = platform.register("Generated Requester")
    generate(platform, requester.id)

    async def run(svc: Services) -> list[early_warning.Flag]:
        async with svc.reader() as session:
            return await early_warning.flags(NOW, session=session)

    flags = platform.run(run)
    assert [(f.category, f.region) for f in flags] == [("family", "shymkent")]
    flag = flags[0]
    assert flag.count == 24 and flag.count > flag.threshold
    # The series the flag shows is what a direct count finds, week by week.
    for i, start in enumerate(early_warning.week_starts(NOW)):
        end = start + timedelta(days=7)
        direct = platform.scalar(
            'SELECT count(*) FROM "case" WHERE category = ? AND region = ? '
            "AND created_at >= ? AND created_at < ?", "family", "shymkent",
            start.replace(tzinfo=None) if platform.settings.effective_database_url.startswith(
                "sqlite") else start,
            end.replace(tzinfo=None) if platform.settings.effective_database_url.startswith(
                "sqlite") else end)
        assert flag.series[i] == direct, (i, flag.series, direct)


def test_only_coordinators_and_administrators_see_the_flags(platform: Platform) -> None:
    coordinator = platform.register("Kamila Coordinator")
    org = expect(platform.admin.client.post("/api/v1/admin/organisations", json={
        "name": "Council of Public Consent, Shymkent", "kind": "public_council",
        "region": "shymkent"}), 201)["id"]
    expect(platform.admin.client.put(
        f"/api/v1/admin/organisations/{org}/members/{coordinator.id}",
        json={"role": "coordinator"}), 204)
    citizen = platform.register("Plain Citizen")
    for person in (coordinator, platform.admin):
        expect(person.client.get("/api/v1/early-warning"), 200)
    expect(citizen.client.get("/api/v1/early-warning"), 403)
    page = coordinator.client.get(f"/organisations/{org}")
    assert page.status_code == 200 and "Early warning" in page.text
    expect(platform.anonymous.get("/api/v1/early-warning"), 401)
