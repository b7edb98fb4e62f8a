"""The administrative command line as an operator uses it: migrate, demo, clerks of a court."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.databases import sqlite_only
from tests.harness import PASSWORD, expect, open_platform
from tests.test_audit import odr_command

pytestmark = sqlite_only

LOGIN_LINE = re.compile(r"^\s+(\S.*?)\s+(\S+@demo\.odr)\s+(\S+)$", re.MULTILINE)


def test_migrate_builds_an_empty_database(tmp_path: Path) -> None:
    first = odr_command(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    assert "Database is up to date." in first.stdout
    again = odr_command(tmp_path, "migrate")
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(tmp_path / "odr.sqlite3") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert {"user", "case", "auditentry", "audithead", "agreement"} <= tables
        assert db.execute("SELECT count(*) FROM \"user\"").fetchone() == (0,)


def test_demo_prints_passwords_that_sign_in_once(tmp_path: Path, template_db: Path) -> None:
    created = odr_command(tmp_path, "demo")
    assert created.returncode == 0, created.stderr
    logins = LOGIN_LINE.findall(created.stdout)
    assert len(logins) >= 5, created.stdout
    again = odr_command(tmp_path, "demo")
    assert "nothing created" in again.stdout
    assert not LOGIN_LINE.findall(again.stdout)

    with open_platform(tmp_path, template_db) as platform:
        for _label, email, password in logins:
            person = platform.login(email, password)
            expect(person.client.get("/api/v1/me"), 200)
        passwords = {email: password for _label, email, password in logins}
        mediator = next(email for label, email, _p in logins if "ediator" in label)
        demo_cases = platform.login(mediator, passwords[mediator]).client.get("/api/v1/cases")
        assert len(expect(demo_cases, 200)) == 1


def test_a_court_clerk_is_created_for_a_court(tmp_path: Path, template_db: Path) -> None:
    assert odr_command(tmp_path, "demo").returncode == 0
    with sqlite3.connect(tmp_path / "odr.sqlite3") as db:
        (court_id,) = db.execute("SELECT id FROM court ORDER BY id LIMIT 1").fetchone()

    made = odr_command(tmp_path, "create-user", "clerk2@court.kz", "--name", "Second Clerk",
                       "--role", "court_clerk", "--court", str(court_id), "--password-stdin",
                       stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    with open_platform(tmp_path, template_db) as platform:
        clerk = platform.login("clerk2@court.kz", PASSWORD)
        expect(clerk.client.get(f"/api/v1/courts/{court_id}/filings"), 200)

    unknown = odr_command(tmp_path, "create-user", "clerk3@court.kz", "--name", "Third Clerk",
                          "--role", "court_clerk", "--court", "9999", "--password-stdin",
                          stdin=PASSWORD + "\n")
    assert unknown.returncode == 2
    assert "No such court" in unknown.stderr
    no_court = odr_command(tmp_path, "create-user", "clerk4@court.kz", "--name", "Fourth Clerk",
                           "--role", "court_clerk", "--password-stdin", stdin=PASSWORD + "\n")
    assert no_court.returncode == 2
    assert "--court" in no_court.stderr
