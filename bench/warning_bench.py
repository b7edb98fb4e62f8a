"""The weekly early-warning run (odr.early_warning) over 100,000 generated requests, on SQLite
and on PostgreSQL: the median of several runs. Target: under 5 s.

Run: .venv/bin/python bench/warning_bench.py [--cases 100000] [--runs 5]
     [--databases sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from http_bench import database_urls  # bench/ is on the path

from odr import early_warning, migrate
from odr.models import Case, Category, User
from odr.services import Services
from odr.settings import Settings
from odr.vocab import REGION_LABELS

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TARGET_SECONDS = 5.0


async def fill(svc: Services, cases: int) -> None:
    rng = random.Random(7)
    regions = list(REGION_LABELS)
    async with svc.maker() as session:
        user = User(email="bench@example.kz", name="Bench")
        session.add(user)
        await session.flush()
        for start in range(0, cases, 5000):
            for n in range(start, min(cases, start + 5000)):
                at = NOW - timedelta(seconds=rng.uniform(0, 2 * 365 * 86400))
                session.add(Case(number=f"b-{n}", category=rng.choice(list(Category)),
                                 summary="-", language="ru", region=rng.choice(regions),
                                 requester_id=user.id or 0, other_party_name="-",
                                 other_party_contact="-", created_at=at, updated_at=at))
            await session.commit()


async def measure(url: str, cases: int, runs: int) -> list[float]:
    await asyncio.to_thread(migrate.upgrade, url)
    svc = Services.create(Settings(database_url=url, secret_key="bench" * 8,
                                   data_dir=Path(tempfile.mkdtemp())))
    try:
        await fill(svc, cases)
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            async with svc.reader() as session:
                await early_warning.flags(NOW, session=session)
            times.append(time.perf_counter() - began)
        return times
    finally:
        await svc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    print(f"early warning over {args.cases} cases, {args.runs} runs (median)")
    for name, url in database_urls(args.databases):
        times = asyncio.run(measure(url, args.cases, args.runs))
        median = statistics.median(times)
        print(f"{name:9} median {median * 1000:8.1f} ms  (min {min(times) * 1000:.1f}, "
              f"max {max(times) * 1000:.1f})  target < {TARGET_SECONDS:.0f} s: "
              f"{'met' if median < TARGET_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
