"""Signing with a code by e-mail from the page (for a signatory without a password), and the
limit on wrong passwords and codes: five in a while lock signing for the rest of the while and
spend the codes still open; codes themselves are limited too."""

from __future__ import annotations

import re
from html import unescape

from documents import attempts
from tests.drafts.test_signing import frozen_case, sign
from tests.harness import PASSWORD, Cast, Person, Platform, expect, form_token

LOCKED = "Too many wrong passwords or codes. Signing is locked for 15 min."


def csrf(person: Person, path: str) -> str:
    return form_token(person.client, path)


def last_code(platform: Platform, person: Person) -> str:
    body: str = platform.scalar(
        'select body from outboxmail where "to" = ? order by id desc limit 1', person.email)
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found[1]


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def window_passes(platform: Platform) -> None:
    """As if the lock's quarter of an hour had gone by."""
    platform.sql("update signingfailure set at = '2000-01-01 00:00:00.000000'")


def test_a_signatory_without_a_password_asks_for_a_code_and_signs_on_the_page(
    platform: Platform, cast: Cast
) -> None:
    _case, draft_id = frozen_case(platform, cast)
    platform.sql("update \"user\" set password_hash = null where id = ?", cast.party_b.id)
    page = f"/drafts/{draft_id}/sign"
    html = cast.party_b.client.get(page).text
    assert f'action="/drafts/{draft_id}/sign/code"' in html and "Send me a code" in html
    assert 'name="code"' in html and 'name="password"' not in html
    # Someone with a password is not offered codes.
    assert "Send me a code" not in cast.requester.client.get(page).text

    sent = cast.party_b.client.post(f"{page}/code", data={"csrf": csrf(cast.party_b, page)},
                                    follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == f"{page}?done=code_sent"
    shown = cast.party_b.client.get(sent.headers["location"]).text
    assert "We have sent you a code by e-mail. It is valid for 15 minutes." in shown
    code = last_code(platform, cast.party_b)

    signed = cast.party_b.client.post(page, data={
        "csrf": csrf(cast.party_b, page), "full_name": cast.party_b.name, "code": code},
        follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"].endswith("done=signed")
    agreement = expect(cast.party_b.client.get(f"/api/v1/drafts/{draft_id}/agreement"), 200)
    assert [s["name"] for s in agreement["signatories"] if s["signed_at"]] == [cast.party_b.name]


def test_five_wrong_passwords_lock_signing_for_a_while(platform: Platform, cast: Cast) -> None:
    _case, draft_id = frozen_case(platform, cast)
    for _ in range(attempts.MAX_FAILURES):
        assert sign(cast.requester, draft_id, password="not my password").status_code == 403
    locked = sign(cast.requester, draft_id)  # even the right password now
    assert locked.status_code == 429 and locked.json()["detail"] == LOCKED

    page = f"/drafts/{draft_id}/sign"
    on_page = cast.requester.client.post(page, data={
        "csrf": csrf(cast.requester, page), "full_name": cast.requester.name,
        "password": PASSWORD})
    assert on_page.status_code == 429 and LOCKED in unescape(on_page.text)
    # Another signatory of the same agreement is not affected.
    expect(sign(cast.party_b, draft_id), 200)

    window_passes(platform)
    expect(sign(cast.requester, draft_id), 200)


def test_five_wrong_codes_spend_the_code_and_lock_signing(platform: Platform,
                                                          cast: Cast) -> None:
    _case, draft_id = frozen_case(platform, cast)
    platform.sql("update \"user\" set password_hash = null where id = ?", cast.party_b.id)
    expect(cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign/code", json={}), 204)
    code = last_code(platform, cast.party_b)
    for _ in range(attempts.MAX_FAILURES):
        assert sign(cast.party_b, draft_id, password="", code=wrong(code)).status_code == 403
    locked = sign(cast.party_b, draft_id, password="", code=code)
    assert locked.status_code == 429 and locked.json()["detail"] == LOCKED
    refused = cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign/code", json={})
    assert refused.status_code == 429  # no new codes while locked either

    window_passes(platform)
    spent = sign(cast.party_b, draft_id, password="", code=code)
    assert spent.status_code == 403  # the code that met five wrong guesses is spent
    expect(cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign/code", json={}), 204)
    expect(sign(cast.party_b, draft_id, password="", code=last_code(platform, cast.party_b)),
           200)


def test_only_a_few_codes_are_open_at_once(platform: Platform, cast: Cast) -> None:
    _case, draft_id = frozen_case(platform, cast)
    platform.sql("update \"user\" set password_hash = null where id = ?", cast.party_b.id)
    for _ in range(attempts.MAX_OPEN_CODES):
        expect(cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign/code", json={}), 204)
    more = cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign/code", json={})
    assert more.status_code == 429 and "Codes have already been sent" in more.json()["detail"]
    page = f"/drafts/{draft_id}/sign"
    on_page = cast.party_b.client.post(f"{page}/code", data={"csrf": csrf(cast.party_b, page)})
    assert on_page.status_code == 429 and "Codes have already been sent" in on_page.text
    platform.sql("update signingcode set expires_at = '2000-01-01 00:00:00.000000'")
    expect(cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign/code", json={}), 204)
