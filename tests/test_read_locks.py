"""Reads never wait for SQLite's write lock; writes still take their turn (``odr.db``).

Another connection holds the write lock (``BEGIN IMMEDIATE``, as a long write would), and the
signed-in pages and API reads must answer at once meanwhile, while a write queues behind the
lock and lands once it is released.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.databases import sqlite_only
from tests.harness import Platform, expect

pytestmark = sqlite_only

ANSWER_WITHIN = 2.0  # seconds; a read waiting for the lock would wait the busy timeout (30 s)


@contextmanager
def write_lock_held(platform: Platform) -> Iterator[sqlite3.Connection]:
    assert platform.db_path is not None
    holder = sqlite3.connect(platform.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield holder
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def timed_get(client: object, path: str, **kwargs: object) -> tuple[int, float]:
    start = time.monotonic()
    response = client.get(path, **kwargs)  # type: ignore[attr-defined]
    return response.status_code, time.monotonic() - start


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/cases", "/dashboard", "/cases/{case}"])
def test_signed_in_reads_answer_while_the_write_lock_is_held(platform: Platform,
                                                               path: str) -> None:
    cast = platform.cast()
    case_id = platform.build_case(cast)
    client = cast.mediator.client
    with write_lock_held(platform):
        status, took = timed_get(client, path.format(case=case_id))
    assert status == 200
    assert took < ANSWER_WITHIN, f"{path} waited {took:.1f} s for the write lock"


def test_a_token_read_answers_while_the_write_lock_is_held(platform: Platform) -> None:
    person = platform.mediator()
    token = expect(person.client.post("/api/v1/tokens", json={"name": "court system"}), 201)
    api = platform.client()
    headers = {"Authorization": f"Bearer {token['token']}"}
    expect(api.get("/api/v1/me", headers=headers), 200)  # its use is recorded now
    with write_lock_held(platform):
        # Used again within the minute: nothing to record, so nothing to wait for.
        status, took = timed_get(api, "/api/v1/me", headers=headers)
    assert status == 200 and took < ANSWER_WITHIN


def test_a_write_waits_for_the_lock_and_lands_when_it_is_released(platform: Platform) -> None:
    person = platform.mediator()
    done = threading.Event()
    result: dict[str, int] = {}

    def rename() -> None:
        result["status"] = person.client.patch("/api/v1/me", json={"name": "Renamed Mediator"}
                                               ).status_code
        done.set()

    with write_lock_held(platform):
        writer = threading.Thread(target=rename)
        writer.start()
        # The write is queued behind the lock: not answered yet, while reads still are.
        assert not done.wait(0.5)
        assert timed_get(person.client, "/api/v1/me")[0] == 200
        assert not done.is_set()
    assert done.wait(10), "the write did not land after the lock was released"
    writer.join()
    assert result["status"] == 200
    assert expect(person.client.get("/api/v1/me"), 200)["name"] == "Renamed Mediator"
