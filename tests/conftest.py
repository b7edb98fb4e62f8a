"""Fixtures of the fast tier: the real app over a real database (SQLite, or PostgreSQL with
``ODR_TEST_DATABASE=postgres``), one client per person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from odr import migrate
from tests.databases import (
    CREATED_DATABASES,
    ON_POSTGRES,
    create_database,
    drop_database,
    url_of,
)
from tests.harness import Cast, Platform, open_platform, sqlite_url
from tests.smtp import SmtpServer, smtp_server


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | str]:
    """A database migrated to the newest revision, copied by every test that needs one: a
    SQLite file, or the name of a PostgreSQL database (``tests.databases``)."""
    if ON_POSTGRES:
        name = create_database()
        migrate.upgrade(url_of(name))
        yield name
        drop_database(name)
        return
    path = tmp_path_factory.mktemp("template") / "odr.sqlite3"
    migrate.upgrade(sqlite_url(path))
    yield path


@pytest.fixture(scope="session", autouse=ON_POSTGRES)
def _drop_remaining_databases() -> Iterator[None]:
    """What the modules' and packages' own folders made (``tests.databases.database_for``)."""
    yield
    while CREATED_DATABASES:
        drop_database(CREATED_DATABASES.popitem()[1])


@pytest.fixture(autouse=ON_POSTGRES)
def _drop_test_databases(tmp_path: Path) -> Iterator[None]:
    """The PostgreSQL databases a test made in its folder go when it ends."""
    yield
    for folder in [f for f in CREATED_DATABASES if f.is_relative_to(tmp_path)]:
        drop_database(CREATED_DATABASES.pop(folder))


@pytest.fixture
def platform(tmp_path: Path, template_db: Path | str) -> Iterator[Platform]:
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
def mailing_platform(tmp_path: Path, template_db: Path | str,
                     smtp: SmtpServer) -> Iterator[Platform]:
    """The platform sending its mail over SMTP to ``smtp``."""
    with open_platform(tmp_path, template_db, smtp_host="127.0.0.1", smtp_port=smtp.port,
                       smtp_sender="ODR <no-reply@odr.test>") as platform:
        yield platform

