"""The statistics page over 100,000 generated cases (tests/generated.py: acceptance, sessions with
neutrality records, outcomes, court decisions, feedback), on SQLite and on PostgreSQL.

Each run is a whole GET of the open statistics page through the application (the database's
grouped queries, the protection of small cells, the SVG charts and tables): the median of
several runs per grouping. Target: under 300 ms. The weekly early-warning run over the same
cases is measured by bench/warning_bench.py.

Run: .venv/bin/python bench/statistics_bench.py [--cases 100000] [--runs 5]
     [--databases sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from http_bench import database_urls  # noqa: E402 (bench/ on the path)

from odr import migrate  # noqa: E402
from odr.app import create_app  # noqa: E402
from odr.models import User  # noqa: E402
from odr.services import Services  # noqa: E402
from odr.settings import Settings  # noqa: E402
from tests import generated  # noqa: E402

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TARGET_MS = 300.0
PAGES = ("region", "category", "month")


async def fill(settings: Settings, cases: int) -> None:
    svc = Services.create(settings)
    try:
        async with svc.maker() as session:
            users = [User(email=f"bench{i}@example.kz", name=f"Bench {i}") for i in range(6)]
            session.add_all(users)
            await session.commit()
            ids = [u.id or 0 for u in users]
            await generated.insert(session, cases=cases, now=NOW, requester_id=ids[0],
                                   mediators=dict.fromkeys(ids[1:]))
    finally:
        await svc.close()


async def measure(url: str, cases: int, runs: int) -> dict[str, list[float]]:
    await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(database_url=url, secret_key="bench" * 8,
                        data_dir=Path(tempfile.mkdtemp()))
    began = time.perf_counter()
    await fill(settings, cases)
    print(f"  {cases} cases generated in {time.perf_counter() - began:.0f} s", flush=True)
    app = create_app(settings, migrate_on_start=False)
    times: dict[str, list[float]] = {by: [] for by in PAGES}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for by in PAGES:
                query = f"/open-statistics?by={by}&start=2024-12-08&end=2026-12-07"
                (await client.get(query)).raise_for_status()  # warm
                for _ in range(runs):
                    began = time.perf_counter()
                    response = await client.get(query)
                    times[by].append(time.perf_counter() - began)
                    response.raise_for_status()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    print(f"open statistics page over {args.cases} cases, {args.runs} runs (median)")
    for name, url in database_urls(args.databases):
        print(name, flush=True)
        times = asyncio.run(measure(url, args.cases, args.runs))
        for by, found in times.items():
            median = statistics.median(found) * 1000
            print(f"  by {by:9} median {median:7.1f} ms  (min {min(found) * 1000:.1f}, "
                  f"max {max(found) * 1000:.1f})  target < {TARGET_MS:.0f} ms: "
                  f"{'met' if median < TARGET_MS else 'MISSED'}", flush=True)


if __name__ == "__main__":
    main()
