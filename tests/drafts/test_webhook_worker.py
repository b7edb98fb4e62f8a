"""Webhook deliveries kept in the database and sent by a worker that runs with the app: a notice
the court's system could not take survives a restart and is delivered by the next process on
the same database; a receiver that keeps failing is given up after the last attempt, recorded.
A real local HTTP receiver plays the court's system."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from documents.filings import Filings
from tests.drafts.test_signing import signed_agreement, wait_until
from tests.harness import Platform, expect, open_platform


class Receiver:
    """A court's system on a given port, answering ``status`` to every notice."""

    def __init__(self, port: int, status: int = 204) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def port() -> int:
    """A free port where nothing listens yet (the receiver is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free: int = s.getsockname()[1]
        return free


def deliveries(platform: Platform) -> list[tuple[Any, ...]]:
    return platform.sql("select event, attempts, delivered_at, next_attempt_at, gave_up_at, "
                        "last_status, last_error from webhookdelivery order by id")


def test_a_notice_waiting_when_the_app_stops_is_delivered_by_the_next_one(
    tmp_path: Path, template_db: Path, port: int
) -> None:
    url = f"http://127.0.0.1:{port}/odr-hook"
    with open_platform(tmp_path, template_db) as first:
        filings: Filings = first.app.state.documents.filings
        filings.backoff = (0.5, 0.5, 0.5)
        cast = first.cast()
        case_id, _draft, _agreement = signed_agreement(first, cast)
        clerk = first.clerk()
        court_id = expect(clerk.client.get("/api/v1/me"), 200)["court_id"]
        hook = expect(first.admin.client.put(f"/api/v1/admin/courts/{court_id}/webhook",
                                             json={"url": url}), 200)
        filing = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/filings",
                                                  json={"court_id": court_id}), 201)
        # The receiver is down: the first attempt fails and the next one is scheduled.
        wait_until(lambda: deliveries(first)[0][1] >= 1)
        worker = filings._worker
        assert worker is not None and not worker.done()
    # The app stopped: its worker with it, cleanly.
    assert worker.done() and filings._worker is None
    ((event, attempts, delivered, next_at, gave_up, status, error),) = deliveries(first)
    assert event == "filing.received" and delivered is None and gave_up is None
    assert next_at is not None and status is None and error  # connection refused, recorded

    receiver = Receiver(port)
    try:
        with open_platform(tmp_path, template_db) as second:  # same database and data folder
            wait_until(lambda: deliveries(second)[0][2] is not None)
            ((_event, attempts_after, _delivered, next_at, gave_up, status, _error),) = (
                deliveries(second))
        assert attempts_after == attempts + 1 and status == 204
        assert next_at is None and gave_up is None
        ((headers, body),) = receiver.received
        assert headers["x-odr-signature"] == "sha256=" + hmac.new(
            hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        notice = json.loads(body)
        assert notice["event"] == "filing.received"
        assert notice["filing"]["number"] == filing["number"]
    finally:
        receiver.close()


@pytest.fixture
def failing(port: int) -> Iterator[Receiver]:
    receiver = Receiver(port, status=500)
    yield receiver
    receiver.close()


def test_a_receiver_that_keeps_failing_is_given_up_after_the_last_attempt(
    platform: Platform, port: int, failing: Receiver
) -> None:
    filings: Filings = platform.app.state.documents.filings
    filings.backoff = (0.05, 0.1)  # three attempts in all
    cast = platform.cast()
    case_id, _draft, _agreement = signed_agreement(platform, cast)
    clerk = platform.clerk()
    court_id = expect(clerk.client.get("/api/v1/me"), 200)["court_id"]
    expect(platform.admin.client.put(f"/api/v1/admin/courts/{court_id}/webhook",
                                     json={"url": f"http://127.0.0.1:{port}/hook"}), 200)
    expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/filings",
                                     json={"court_id": court_id}), 201)
    wait_until(lambda: deliveries(platform)[0][4] is not None)
    ((_event, attempts, delivered, next_at, _gave_up, status, _error),) = deliveries(platform)
    assert (attempts, delivered, next_at, status) == (3, None, None, 500)
    assert len(failing.received) == 3
