"""Session reminders: at booking, a day before and an hour before, to everyone in the case, in
each one's language and time zone, with the session as an .ics file (through a real SMTP
server), each sent once, across restarts too."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from odr.models import CaseStatus
from tests.harness import Cast, Platform, expect, open_platform
from tests.smtp import SmtpServer


def remind(platform: Platform, now: datetime | None = None) -> int:
    sent: int = platform.run(lambda _svc: platform.app.state.reminders.run_once(now))
    return sent


def schedule(platform: Platform, cast: Cast, case_id: int, starts: datetime) -> None:
    expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/sessions", json={
        "starts_at": starts.isoformat(), "duration_minutes": 90,
        "note": "Bring the receipts."}), 201)


def people_of(platform: Platform, case_id: int) -> list[str]:
    return [row[0] for row in platform.sql(
        'SELECT "user".email FROM participant JOIN "user" ON "user".id = participant.user_id '
        "WHERE case_id = ? AND removed_at IS NULL", case_id)]


def test_reminders_reach_everyone_in_their_language_with_the_calendar_file(
    mailing_platform: Platform, smtp: SmtpServer
) -> None:
    platform = mailing_platform
    cast = platform.cast()
    case_id = platform.build_case(cast, CaseStatus.consented)
    number = expect(cast.mediator.client.get(f"/api/v1/cases/{case_id}"), 200)["number"]
    expect(cast.party_b.client.patch("/api/v1/me", json={"language": "kk",
                                                          "timezone": "Asia/Aqtobe"}), 200)
    expect(cast.mediator.client.patch("/api/v1/me", json={"language": "en",
                                                           "timezone": "Europe/London"}), 200)
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(hour=4, minute=30, second=0,
                                                             microsecond=0)
    schedule(platform, cast, case_id, starts)
    remind(platform)  # the booking's reminder (unless the worker was quicker: it is once)
    # In her language and time zone.
    local = starts.astimezone(ZoneInfo("Asia/Aqtobe"))
    booked = smtp.mailbox.wait_for(
        cast.party_b.email, subject=f"Медиация сессиясы {local:%d.%m.%Y %H:%M}, {number} іс")
    body = booked.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert f"/cases/{case_id}/room" in text and "/check" in text
    assert "Bring the receipts." in text
    calendars = [part for part in booked.iter_attachments()
                 if part.get_content_type() == "text/calendar"]
    assert len(calendars) == 1 and calendars[0].get_filename() == "session.ics"
    ics = calendars[0].get_content()
    assert f"DTSTART:{starts:%Y%m%dT%H%M%SZ}" in ics
    assert f"DTEND:{starts + timedelta(minutes=90):%Y%m%dT%H%M%SZ}" in ics
    assert "BEGIN:VEVENT" in ics and "\r\n" in ics

    everyone = people_of(platform, case_id)
    assert len(everyone) == 7
    deadline = time.monotonic() + 10  # the worker may be delivering them still
    while not all(any(m.is_multipart() for m in smtp.mailbox.to(e)) for e in everyone):
        assert time.monotonic() < deadline, "a booking reminder did not arrive"
        time.sleep(0.05)
    assert remind(platform) == 0  # sent once

    # A day before, then an hour before (the worker's clock is moved, not time itself).
    assert remind(platform, starts - timedelta(hours=23)) == 1
    london = starts.astimezone(ZoneInfo("Europe/London"))
    smtp.mailbox.wait_for(cast.mediator.email, subject=(
        f"Tomorrow: mediation session at {london:%d.%m.%Y %H:%M}, case {number}"))
    assert remind(platform, starts - timedelta(hours=23)) == 0
    assert remind(platform, starts - timedelta(minutes=30)) == 1
    assert len([m for m in smtp.mailbox.to(cast.observer.email)
                if number in m["Subject"] and m.is_multipart()]) == 3
    assert remind(platform, starts + timedelta(minutes=5)) == 0


def test_reminders_already_past_are_not_sent_and_a_restart_sends_nothing_twice(
    tmp_path: Path, template_db: Path
) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=50)
    with open_platform(tmp_path, template_db) as platform:
        cast = platform.cast()
        case_id = platform.build_case(cast, CaseStatus.consented)
        schedule(platform, cast, case_id, soon)
        kinds = sorted(r[0] for r in platform.sql(
            "SELECT kind FROM sessionreminder"))
        assert kinds == ["booked"]  # a day and an hour before are past already
    with open_platform(tmp_path, template_db) as platform:
        remind(platform)
        remind(platform)
        mails = platform.sql("SELECT count(*) FROM outboxmail WHERE calendar != ''")
        assert mails[0][0] == len(people_of(platform, case_id))
