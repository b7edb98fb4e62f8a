"""A real SMTP server (aiosmtpd) on a free port, keeping what it receives for the test to read."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.live import free_port

MAIL_TIMEOUT = 10.0


class Mailbox:
    """An aiosmtpd handler that keeps what it receives and lets a test wait for it."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._arrived:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, to: str, timeout: float = MAIL_TIMEOUT,
                 subject: str | None = None) -> EmailMessage:
        """The first message to ``to`` (with ``subject`` if given), waiting for it to arrive."""

        def found() -> EmailMessage | None:
            return next((m for m in self.messages
                         if m["To"] == to and subject in (None, m["Subject"])), None)

        with self._arrived:
            assert self._arrived.wait_for(lambda: found() is not None, timeout), (
                f"no mail to {to} within {timeout} s; got {[m['To'] for m in self.messages]}")
            message = found()
        assert message is not None
        return message


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()
