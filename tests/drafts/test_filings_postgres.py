"""Concurrent identical filings on PostgreSQL, where two requests really can both find no filing
and both insert one: the unique index on open filings refuses the second, which answers with
the first. Skipped when the test server cannot be reached (see tests/test_postgres.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from tests.drafts.test_signing import frozen_case, sign, signed_agreement
from tests.harness import Platform, expect
from tests.test_postgres import database_url, pg_platform  # noqa: F401  (fixtures)


def at_once(requests: list[Callable[[], Any]]) -> list[Any]:
    """Send each request from its own thread, all released together; their answers in order."""
    start = threading.Barrier(len(requests))
    answers: list[Any] = [None] * len(requests)

    def send(i: int) -> None:
        start.wait()
        answers[i] = requests[i]()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_identical_filings_at_the_same_moment_on_postgres(pg_platform: Platform) -> None:  # noqa: F811
    platform = pg_platform
    cast = platform.cast()
    case_id, _draft, _agreement = signed_agreement(platform, cast)
    clerk = platform.clerk()
    court_id = expect(clerk.client.get("/api/v1/me"), 200)["court_id"]
    twins = [cast.mediator] + [platform.login(cast.mediator.email) for _ in range(3)]
    answers = at_once([partial(twin.client.post, f"/api/v1/cases/{case_id}/filings",
                               json={"court_id": court_id}) for twin in twins])
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * (len(twins) - 1) + [201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(expect(clerk.client.get(f"/api/v1/courts/{court_id}/filings"), 200)) == 1


def test_parallel_wrong_passwords_are_counted_one_by_one_on_postgres(
    pg_platform: Platform,  # noqa: F811
) -> None:
    """Eight wrong passwords at the same moment: five are counted, the rest meet the lock."""
    platform = pg_platform
    cast = platform.cast()
    _case, draft_id = frozen_case(platform, cast)
    tabs = [platform.login(cast.requester.email) for _ in range(8)]
    answers = at_once([partial(sign, tab, draft_id, password=f"wrong guess {i}")
                       for i, tab in enumerate(tabs)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [403] * 5 + [429] * 3, [a.text for a in answers]
