"""Fixtures of the fast tier: the real app over a real SQLite database, one client per person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from odr import migrate
from tests.harness import Cast, Platform, open_platform, sqlite_url
from tests.smtp import SmtpServer, smtp_server


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated to the newest revision, copied by every test that needs one."""
    path = tmp_path_factory.mktemp("template") / "odr.sqlite3"
    migrate.upgrade(sqlite_url(path))
    return path


@pytest.fixture
def platform(tmp_path: Path, template_db: Path) -> Iterator[Platform]:
    with open_platform(tmp_path, template_db) as p:
        yield p


@pytest.fixture
def cast(platform: Platform) -> Cast:
    return platform.cast()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mailing_platform(tmp_path: Path, template_db: Path, smtp: SmtpServer) -> Iterator[Platform]:
    """The platform sending its mail over SMTP to ``smtp``."""
    with open_platform(tmp_path, template_db, smtp_host="127.0.0.1", smtp_port=smtp.port,
                       smtp_sender="ODR <no-reply@odr.test>") as platform:
        yield platform
