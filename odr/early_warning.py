"""Early warning of conflict: districts where requests of one category rise well above their own
history there.

The rule, meant to be explained to anyone who sees a flag: for each category and district (the
region, and within it the district or town where the requester named one), this week's number
of requests is compared with the same category's numbers there over the previous twelve weeks.
A flag goes up when this week's count is at least ``MINIMUM`` and above
the twelve weeks' mean by more than ``SPREADS`` standard deviations (a spread of at least one
request, so that a quiet series does not flag every small bump). Only the category, the region,
the district and the date of each request are read: no case content. Districts are compared as
stored: each word capitalised, spaces collapsed (``odr.schemas.District``).

The counting is done by the database in one grouped query (thirteen weekly buckets), so the
weekly run over a hundred thousand cases stays short (``bench/warning_bench.py``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case as when
from sqlalchemy import select as sa_select
from sqlmodel import col, func
from sqlmodel.ext.asyncio.session import AsyncSession

from odr.models import Case

WEEKS = 12
SPREADS = 3.0
MINIMUM = 5


@dataclass(frozen=True)
class Flag:
    category: str
    region: str
    district: str  # "" where requesters named none
    week_start: datetime  # the week flagged: seven days up to the run's moment
    count: int
    mean: float
    spread: float
    series: list[int]  # the twelve weeks before, oldest first, then this week

    @property
    def threshold(self) -> float:
        return self.mean + SPREADS * max(self.spread, 1.0)


def week_starts(now: datetime) -> list[datetime]:
    """The starts of the thirteen weeks ending at ``now``, oldest first."""
    return [now - timedelta(days=7 * (WEEKS + 1 - i)) for i in range(WEEKS + 1)]


async def weekly_counts(now: datetime, *, session: AsyncSession
                        ) -> dict[tuple[str, str, str], list[int]]:
    """Requests per (category, region, district) in each of the thirteen weeks ending at ``now``."""
    starts = week_starts(now)
    bucket = when(*[(col(Case.created_at) < starts[i + 1], i) for i in range(WEEKS)],
                  else_=WEEKS)
    # Wider than sqlmodel's typed select goes; the rows are read by position below.
    query: Any = (sa_select(col(Case.category), col(Case.region), col(Case.district), bucket,
                            func.count(col(Case.id)))
                  .where(col(Case.created_at) >= starts[0], col(Case.created_at) < now)
                  .group_by(col(Case.category), col(Case.region), col(Case.district), bucket))
    series: dict[tuple[str, str, str], list[int]] = {}
    for category, region, district, week, count in (await session.exec(query)).all():
        key = (getattr(category, "value", str(category)), str(region), str(district))
        series.setdefault(key, [0] * (WEEKS + 1))[int(week)] += int(count)
    return series


async def flags(now: datetime | None = None, *, session: AsyncSession) -> list[Flag]:
    now = now or datetime.now(UTC)
    found = []
    for (category, region, district), series in (
            await weekly_counts(now, session=session)).items():
        history, current = series[:WEEKS], series[WEEKS]
        mean, spread = statistics.fmean(history), statistics.pstdev(history)
        flag = Flag(category, region, district, now - timedelta(days=7), current, mean, spread,
                    series)
        if current >= MINIMUM and current > flag.threshold:
            found.append(flag)
    return sorted(found, key=lambda f: (-(f.count - f.mean), f.category, f.region, f.district))
