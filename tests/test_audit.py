"""The hash-chained audit log: what writes to it, and how a changed or removed entry is found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from odr import audit
from odr.audit import ChainReport
from odr.models import AuditEntry, CaseStatus
from odr.services import Services
from tests.databases import sqlite_only
from tests.harness import (
    FAST_HASHING,
    PASSWORD,
    Cast,
    Platform,
    expect,
    make_settings,
    open_platform,
)

ODR = Path(sys.executable).with_name("odr")
CLI_TIMEOUT = 120


def odr_command(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the ``odr`` command line over the data folder, as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODR_")}
    env["ODR_DATA_DIR"] = str(data_dir)
    env["ODR_SECRET_KEY"] = make_settings(data_dir).secret_key  # the deployment's own key
    env.update({f"ODR_{k.upper()}": str(v) for k, v in FAST_HASHING.items()})
    command = [str(ODR)] if ODR.exists() else [sys.executable, "-m", "odr.cli"]
    return subprocess.run([*command, *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT, check=False)


def verify(platform: Platform) -> ChainReport:
    async def check(svc: Services) -> ChainReport:
        async with svc.maker() as session:
            return await svc.audit.verify(session)

    return platform.run(check)


def tamper(platform: Platform, query: str, *params: object) -> None:
    """Change the log behind the platform's back, as someone with the database's owner rights
    could: the database refuses changes to entries until its guard triggers are dropped."""
    try:
        platform.sql(query, *params)
    except DBAPIError as refused:
        assert "the audit log is append-only" in str(refused)
    else:
        raise AssertionError("the database let an audit entry change")
    drop_guard(platform)
    platform.sql(query, *params)


def drop_guard(platform: Platform) -> None:
    if platform.db_path is None:  # PostgreSQL: one trigger for both (migration 0004)
        platform.sql("DROP TRIGGER auditentry_append_only ON auditentry")
        return
    platform.sql("DROP TRIGGER auditentry_append_only_update")
    platform.sql("DROP TRIGGER auditentry_append_only_delete")


def entries(platform: Platform) -> list[tuple[int, str, int | None, str]]:
    rows = platform.sql("SELECT seq, action, case_id, detail FROM auditentry ORDER BY seq")
    return [(seq, action, case_id, detail) for seq, action, case_id, detail in rows]


def test_actions_are_audited(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.consented)
    actions = [(action, case) for _seq, action, case, _detail in entries(platform)]
    # The register entries of the two mediators, then the case's life.
    assert actions.count(("register.profile_saved", None)) == 2
    case_actions = [a for a, c in actions if c == case_id]
    assert case_actions == (
        ["case.requested", "case.status"]
        # Once the other party is in, the mediation contract is prepared; the others who
        # join next do not sign it, so it stays.
        + ["case.invited", "case.joined", "case.contract_prepared"]
        + ["case.invited", "case.joined"] * 4
        + ["case.contract_signed"] * 3 + ["case.contract_concluded", "case.status"]
    )
    statuses = [json.loads(d)["status"] for _s, a, c, d in entries(platform)
                if c == case_id and a == "case.status"]
    assert statuses == ["accepted", "consented"]
    seqs = [seq for seq, *_ in entries(platform)]
    assert seqs == list(range(1, len(seqs) + 1))

    report = verify(platform)
    assert report.intact and report.entries == len(seqs)
    api = expect(platform.admin.client.get("/api/v1/admin/audit/verify"), 200)
    assert api == {"entries": len(seqs), "intact": True, "problems": []}


def test_refused_actions_leave_no_entry(platform: Platform, cast: Cast) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    before = entries(platform)
    expect(cast.observer.client.post(f"/api/v1/cases/{case_id}/status",
                                     json={"status": "withdrawn"}), 403)
    expect(cast.requester.client.post(f"/api/v1/cases/{case_id}/consent", json={}), 409)
    assert entries(platform) == before


def test_only_the_administrator_verifies_over_http(platform: Platform, cast: Cast) -> None:
    expect(cast.mediator.client.get("/api/v1/admin/audit/verify"), 403)
    expect(platform.anonymous.get("/api/v1/admin/audit/verify"), 401)


def test_a_changed_entry_is_found(platform: Platform, cast: Cast) -> None:
    platform.build_case(cast, CaseStatus.accepted)
    total = len(entries(platform))
    tamper(platform, "UPDATE auditentry SET detail = ? WHERE seq = 3",
           json.dumps({"status": "declined", "detail": ""}))

    report = verify(platform)
    assert not report.intact
    assert report.problems() == ["Entry 3: its content does not match its hash."]
    api = expect(platform.admin.client.get("/api/v1/admin/audit/verify"), 200)
    assert api == {"entries": total, "intact": False,
                   "problems": ["Entry 3: its content does not match its hash."]}
    platform.admin.client.cookies.set("odr_lang", "ru")
    api = expect(platform.admin.client.get("/api/v1/admin/audit/verify"), 200)
    assert api["problems"] == ["Запись 3: её содержимое не совпадает с её хешем."]


def test_a_changed_entry_with_a_recomputed_hash_breaks_the_next_link(
    platform: Platform, cast: Cast
) -> None:
    platform.build_case(cast, CaseStatus.accepted)

    async def forge(svc: Services) -> None:
        async with svc.maker() as session:
            entry = (await session.exec(select(AuditEntry).where(AuditEntry.seq == 3))).one()
            entry.detail = json.dumps({"forged": True})
            entry.hash = audit.entry_hash(entry)
            session.add(entry)
            await session.commit()

    drop_guard(platform)
    platform.run(forge)
    assert verify(platform).problems() == ["Entry 4: the link to the previous entry is broken."]


def test_a_removed_entry_is_found(platform: Platform, cast: Cast) -> None:
    platform.build_case(cast, CaseStatus.accepted)
    total = len(entries(platform))
    tamper(platform, "DELETE FROM auditentry WHERE seq = 4")

    report = verify(platform)
    assert report.entries == total - 1
    assert report.problems() == [
        "Entry 4 is missing (the next one found is 5).",
        "Entry 5: the link to the previous entry is broken.",
    ]


def test_removed_newest_entries_are_found(platform: Platform, cast: Cast) -> None:
    platform.build_case(cast, CaseStatus.accepted)
    total = len(entries(platform))
    tamper(platform, "DELETE FROM auditentry WHERE seq > ?", total - 2)

    assert verify(platform).problems() == [
        f"Entries after {total - 2} were removed (the log had {total})."]


def test_the_seal_on_the_newest_entry_cannot_be_moved_back(platform: Platform, cast: Cast) -> None:
    platform.build_case(cast, CaseStatus.accepted)
    total = len(entries(platform))
    prev_hash = platform.scalar("SELECT hash FROM auditentry WHERE seq = ?", total - 1)
    tamper(platform, "DELETE FROM auditentry WHERE seq = ?", total)
    platform.sql("UPDATE audithead SET seq = ?, hash = ?", total - 1, prev_hash)
    assert verify(platform).problems() == [
        "The seal on the newest entry does not match: it was altered."]

    platform.sql("DELETE FROM audithead")
    assert verify(platform).problems() == ["The seal on the newest entry is missing."]


@sqlite_only  # the command reads the data folder's database
def test_audit_verify_command(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db) as platform:
        platform.build_case(platform.cast(), CaseStatus.accepted)
        total = len(entries(platform))

    intact = odr_command(tmp_path, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert f"Audit log intact: {total} entries." in intact.stdout

    with open_platform(tmp_path, template_db) as platform:
        tamper(platform, "DELETE FROM auditentry WHERE seq = 2")
    broken = odr_command(tmp_path, "audit", "verify")
    assert broken.returncode == 1, broken.stderr
    assert "BROKEN" in broken.stdout
    assert "Entry 2 is missing (the next one found is 3)." in broken.stdout


@sqlite_only
def test_create_user_command(tmp_path: Path, template_db: Path) -> None:
    result = odr_command(tmp_path, "create-user", "x@y.kz", "--name", "First Admin",
                         "--role", "administrator", "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert "Created administrator x@y.kz" in result.stdout

    with open_platform(tmp_path, template_db) as platform:
        admin = platform.login("x@y.kz", PASSWORD)
        me = expect(admin.client.get("/api/v1/me"), 200)
        assert (me["name"], me["role"]) == ("First Admin", "administrator")
        expect(admin.client.get("/api/v1/admin/outbox"), 200)
        assert [a for _s, a, _c, _d in entries(platform)] == ["account.created_by_cli"]
        assert verify(platform).intact

    again = odr_command(tmp_path, "create-user", "X@Y.kz", "--name", "Second Admin",
                        "--role", "administrator", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 2
    assert "already exists" in again.stderr
    short = odr_command(tmp_path, "create-user", "z@y.kz", "--name", "Short Password",
                        "--role", "party", "--password-stdin", stdin="short\n")
    assert short.returncode == 2
    assert "password" in short.stderr
