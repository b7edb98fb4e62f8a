"""The Alembic migrations build exactly the tables the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic import command

from odr.migrate import alembic_config, upgrade


def test_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'check.sqlite3'}"
    upgrade(url)
    # Raises when autogenerate would produce any operation: a model changed without a migration.
    command.check(alembic_config(url))


def test_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'again.sqlite3'}"
    upgrade(url)
    upgrade(url)
    command.check(alembic_config(url))
