"""The mediation contract and the term of mediation, through the API and the pages.

The contract is prepared once the mediator and both parties are in the case, in the case's
language; each party and the mediator sign it (PAdES, validated by pyHanko and pdfsig); the last
signature concludes it, which is the parties' consent, opens the sessions and starts the term.
An expired term shuts the sessions until the mediator extends it with the parties' agreement.
"""

from __future__ import annotations

import html
import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from documents.contract_templates import WORDS
from odr.models import Case, CaseRole, CaseStatus, Side
from odr.services import Services
from tests.drafts.test_signing import ca_cert, pdfsig
from tests.harness import (
    Cast,
    Person,
    Platform,
    case_request,
    expect,
    open_platform,
    sign_contract,
    signer,
)

NOT_YET = "The session opens once everyone has signed the mediation contract."
EXPIRED = ("The term of mediation has expired. The mediator can extend it with the parties' "
           "agreement, or close the case.")


def contract_of(person: Person, case_id: int) -> dict[str, Any]:
    return expect(person.client.get(f"/api/v1/cases/{case_id}/contract"), 200)  # type: ignore[no-any-return]


def text_of(person: Person, contract: dict[str, Any]) -> str:
    text: str = expect(person.client.get(f"/api/v1/drafts/{contract['draft_id']}"), 200)["text"]
    return text


def status_of(person: Person, case_id: int) -> str:
    status: str = expect(person.client.get(f"/api/v1/cases/{case_id}"), 200)["status"]
    return status


def kinds(person: Person, case_id: int) -> list[str]:
    return [e["kind"] for e in expect(person.client.get(f"/api/v1/cases/{case_id}/events"), 200)]


def everyone_signs(cast: Cast, case_id: int) -> dict[str, Any]:
    return sign_contract(case_id, [signer(p) for p in (cast.requester, cast.party_b,
                                                        cast.mediator)])


@pytest.mark.parametrize("language", ["kk", "ru", "en"])
def test_the_contract_is_written_in_the_cases_language_with_its_people_and_terms(
    platform: Platform, cast: Cast, language: str
) -> None:
    case_id = expect(cast.requester.client.post("/api/v1/cases", json=case_request(
        mediator_id=cast.mediator.id, language=language)), 201)["id"]
    expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/accept", json={}), 200)
    # One party alone: nothing to sign yet.
    expect(cast.requester.client.get(f"/api/v1/cases/{case_id}/contract"), 404)
    platform.invite_and_accept(case_id, cast.mediator, cast.party_b, CaseRole.party, Side.b)

    contract = contract_of(cast.party_b, case_id)
    assert contract["language"] == language and contract["term_days"] == 30
    assert [(s["name"], s["role"], s["signed_at"]) for s in contract["signatories"]] == [
        (cast.requester.name, "party", None), (cast.mediator.name, "mediator", None),
        (cast.party_b.name, "party", None)]
    text = text_of(cast.party_b, contract)
    words = WORDS[language]
    for expected in (words["title"], words["confidentiality"], words["fee_free"],
                     words["ending"], cast.requester.name, cast.party_b.name,
                     cast.mediator.name, case_request()["summary"]):
        assert expected in text, expected
    assert words["term_text"].format(days=30, extension=30) in text
    # Interpreters, observers and the like read it too; only signatories sign.
    platform.invite_and_accept(case_id, cast.mediator, cast.observer, CaseRole.observer, None)
    assert text_of(cast.observer, contract_of(cast.observer, case_id)) == text
    refused = cast.observer.client.post(f"/api/v1/drafts/{contract['draft_id']}/sign", json={
        "password": cast.observer.password, "full_name": cast.observer.name})
    assert refused.status_code == 403, refused.text


def test_signed_by_everyone_the_contract_opens_the_sessions_and_verifies(
    platform: Platform, cast: Cast, tmp_path: Path
) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    room = f"/cases/{case_id}/room"
    sign_contract(case_id, [signer(cast.requester), signer(cast.party_b)])
    assert status_of(cast.mediator, case_id) == "accepted"
    refused = cast.party_b.client.get(room)
    assert refused.status_code == 409 and NOT_YET in refused.text
    page = cast.party_b.client.get(f"/cases/{case_id}").text
    assert "Read the contract" in page and NOT_YET in page

    before = datetime.now(UTC)
    sign_contract(case_id, [signer(cast.mediator)])
    assert status_of(cast.mediator, case_id) == "consented"
    assert cast.party_b.client.get(room).status_code == 200
    case = expect(cast.mediator.client.get(f"/api/v1/cases/{case_id}"), 200)
    assert all(p["consented"] for p in case["participants"] if p["role"] == "party")
    assert kinds(cast.mediator, case_id)[-5:] == [
        "contract_signed", "contract_signed", "contract_signed", "contract_concluded", "status"]
    ends = term_end(platform, case_id)
    assert before + timedelta(days=30) <= ends <= datetime.now(UTC) + timedelta(days=30)
    page = cast.party_b.client.get(f"/cases/{case_id}").text
    assert "Concluded on" in page and "30 days left." in page

    # The signed contract: three signatures and the seal, each valid, found by /verify.
    contract = contract_of(cast.observer, case_id)
    assert contract["concluded_at"] is not None
    pdf = cast.observer.client.get(contract["pdf_url"]).content
    reader = PdfFileReader(io.BytesIO(pdf))
    context = ValidationContext(trust_roots=[ca_cert(platform)], allow_fetching=False)
    names = []
    for embedded in reader.embedded_signatures:
        status = validate_pdf_signature(embedded, context)
        assert status.bottom_line, embedded.field_name
        names.append(status.signing_cert.subject.native["common_name"])
    assert names == [cast.requester.name, cast.party_b.name, cast.mediator.name,
                     "ODR platform seal"]
    report = expect(platform.anonymous.post(
        "/api/v1/verify", files={"file": ("contract.pdf", pdf)}), 200)
    assert report["valid"] is True and report["match"]["complete"] is True
    if shutil.which("pdfsig") and shutil.which("certutil"):
        out = pdfsig(pdf, tmp_path, [platform.settings.data_dir / "pki" / "ca.pem"])
        assert out.count("Signature Validation: Signature is Valid.") == 4, out
    # The contract is not a settlement: nothing to file, and no draft in the drafts list.
    assert expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/filings",
                                            json={"court_id": 1}), 409)
    drafts = expect(cast.mediator.client.get(f"/api/v1/cases/{case_id}/drafts"), 200)
    assert drafts == []


def test_a_contract_is_replaced_when_the_people_change_before_everyone_signed(
    platform: Platform, cast: Cast
) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    first = sign_contract(case_id, [signer(cast.requester)])
    third = platform.register("Third Party")
    platform.invite_and_accept(case_id, cast.mediator, third, CaseRole.party, Side.b)

    second = contract_of(cast.party_b, case_id)
    assert second["id"] != first["id"]
    assert [s["name"] for s in second["signatories"]] == [
        cast.requester.name, cast.mediator.name, cast.party_b.name, third.name]
    assert not any(s["signed_at"] for s in second["signatories"])
    assert third.name in text_of(third, second)
    stale = cast.party_b.client.post(f"/api/v1/drafts/{first['draft_id']}/sign", json={
        "password": cast.party_b.password, "full_name": cast.party_b.name})
    assert stale.status_code == 409, stale.text
    assert "no longer the one to sign" in stale.json()["detail"]
    assert kinds(cast.mediator, case_id)[-3:] == ["joined", "contract_void", "contract_prepared"]

    everyone_signs(cast, case_id)
    assert status_of(cast.mediator, case_id) == "accepted"  # the third party has not signed
    sign_contract(case_id, [signer(third)])
    assert status_of(cast.mediator, case_id) == "consented"


def test_the_mediator_sets_the_fee_and_a_shorter_term_before_anyone_signs(
    platform: Platform, cast: Cast
) -> None:
    case_id = platform.build_case(cast, CaseStatus.accepted)
    terms = f"/api/v1/cases/{case_id}/contract"
    body = expect(cast.party_b.client.put(terms, json={"fee": "10 000", "term_days": 20}), 403)
    assert body["detail"] == "Only the mediator can set the contract's terms."
    too_long = expect(cast.mediator.client.put(terms, json={"fee": "", "term_days": 45}), 409)
    assert too_long["detail"] == "The term cannot be longer than the law's 30 days."
    contract = expect(cast.mediator.client.put(
        terms, json={"fee": "20 000 tenge, shared equally", "term_days": 20}), 200)
    assert (contract["fee"], contract["term_days"]) == ("20 000 tenge, shared equally", 20)
    text = text_of(cast.requester, contract)
    assert WORDS["ru"]["fee_paid"].format(fee="20 000 tenge, shared equally") in text
    assert WORDS["ru"]["term_text"].format(days=20, extension=30) in text

    sign_contract(case_id, [signer(cast.requester)])
    body = expect(cast.mediator.client.put(terms, json={"fee": "", "term_days": 10}), 409)
    assert body["detail"] == "The contract's terms cannot change once someone has signed it."
    sign_contract(case_id, [signer(cast.party_b), signer(cast.mediator)])
    case = expect(cast.mediator.client.get(f"/api/v1/cases/{case_id}"), 200)
    assert case["status"] == "consented"
    ends = term_end(platform, case_id)
    assert timedelta(days=19) < ends - datetime.now(UTC) <= timedelta(days=20)


def test_a_half_signed_contract_survives_a_restart(tmp_path: Path, template_db: Path) -> None:
    with open_platform(tmp_path, template_db) as platform:
        cast = platform.cast()
        case_id = platform.build_case(cast, CaseStatus.accepted)
        sign_contract(case_id, [signer(cast.requester), signer(cast.party_b)])
    with open_platform(tmp_path, template_db) as platform:
        mediator = platform.login(cast.mediator.email)
        contract = contract_of(mediator, case_id)
        assert [bool(s["signed_at"]) for s in contract["signatories"]] == [True, False, True]
        sign_contract(case_id, [signer(mediator)])
        assert status_of(mediator, case_id) == "consented"


def set_term_end(platform: Platform, case_id: int, ends: datetime) -> None:
    """The test's clock: the term's end moved instead of time itself."""

    async def move(svc: Services) -> None:
        async with svc.maker() as session:
            case = await session.get(Case, case_id)
            assert case is not None
            case.term_ends_at = ends
            session.add(case)
            await session.commit()

    platform.run(move)


def term_end(platform: Platform, case_id: int) -> datetime:
    async def read(svc: Services) -> datetime:
        async with svc.maker() as session:
            case = await session.get(Case, case_id)
            assert case is not None and case.term_ends_at is not None
            return case.term_ends_at

    return platform.run(read)


def watch(platform: Platform) -> int:
    done: int = platform.run(lambda _svc: platform.app.state.term_watch.run_once())
    return done


def test_the_mediator_is_reminded_once_before_the_term_ends(platform: Platform, cast: Cast
                                                            ) -> None:
    case_id = platform.build_case(cast, CaseStatus.consented)
    watch(platform)  # whatever other tests left due
    assert watch(platform) == 0
    set_term_end(platform, case_id, datetime.now(UTC) + timedelta(days=2))
    assert watch(platform) == 1
    assert watch(platform) == 0  # once
    link = f"/cases/{case_id}"
    mails = [m for m in platform.mails_to(cast.mediator.email) if link in m.body]
    assert len(mails) == 1
    assert not any(link in m.body for m in platform.mails_to(cast.party_b.email))


def test_an_expired_term_shuts_the_sessions_until_the_mediator_extends_it(
    platform: Platform, cast: Cast
) -> None:
    case_id = platform.build_case(cast, CaseStatus.consented)
    room = f"/cases/{case_id}/room"
    assert cast.party_b.client.get(room).status_code == 200
    set_term_end(platform, case_id, datetime.now(UTC) - timedelta(hours=1))

    refused = cast.party_b.client.get(room)
    assert refused.status_code == 409 and EXPIRED in html.unescape(refused.text)
    starts = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/sessions",
                                            json={"starts_at": starts}), 409)
    assert body["detail"] == EXPIRED
    watch(platform)
    assert kinds(cast.party_b, case_id)[-1] == "term_expired"
    assert watch(platform) == 0
    page = html.unescape(cast.party_b.client.get(f"/cases/{case_id}").text)
    assert "The term of mediation ended on" in page

    extend = f"/api/v1/cases/{case_id}/term/extensions"
    body = expect(cast.party_b.client.post(extend, json={"days": 5, "parties_agreed": True}), 403)
    assert body["detail"] == "Only the mediator can extend the term."
    body = expect(cast.mediator.client.post(extend, json={"days": 5}), 400)
    assert "parties' agreement" in body["detail"]
    body = expect(cast.mediator.client.post(extend, json={"days": 31, "parties_agreed": True}),
                  400)
    assert body["detail"] == "The term can be extended by 30 more days at most."
    term = expect(cast.mediator.client.post(extend, json={
        "days": 10, "parties_agreed": True, "note": "Both agreed by phone."}), 200)
    assert term["expired"] is False and term["days_left"] == 10 and term["extension_left"] == 20
    assert cast.party_b.client.get(room).status_code == 200
    assert kinds(cast.party_b, case_id)[-1] == "term_extended"
    body = expect(cast.mediator.client.post(extend, json={"days": 21, "parties_agreed": True}),
                  400)
    assert body["detail"] == "The term can be extended by 20 more days at most."
