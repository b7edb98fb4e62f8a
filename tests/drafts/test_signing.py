"""Signing, verification and filing through the API: three signatures and a seal that pyHanko
and poppler's pdfsig both validate, tampering found, and a court's clerks deciding filings that
their court's system hears of by signed webhook, retried when it fails."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from odr.models import CaseStatus
from tests.harness import PASSWORD, Cast, Person, Platform, expect


def frozen_case(platform: Platform, cast: Cast) -> tuple[int, int]:
    case_id = platform.build_case(cast, CaseStatus.consented)
    draft_id = expect(cast.mediator.client.post(
        f"/api/v1/cases/{case_id}/drafts", json={"language": "kk"}), 201)["id"]
    for party in (cast.requester, cast.party_b):
        expect(party.client.post(f"/api/v1/drafts/{draft_id}/approve", json={}), 200)
    expect(cast.mediator.client.post(f"/api/v1/drafts/{draft_id}/freeze", json={}), 200)
    return case_id, draft_id


def sign(person: Person, draft_id: int, **override: str) -> Any:
    body = {"full_name": person.name, "password": PASSWORD} | override
    return person.client.post(f"/api/v1/drafts/{draft_id}/sign", json=body)


def signed_agreement(platform: Platform, cast: Cast) -> tuple[int, int, dict[str, Any]]:
    case_id, draft_id = frozen_case(platform, cast)
    for person in (cast.party_b, cast.requester, cast.mediator):
        expect(sign(person, draft_id), 200)
    agreement = expect(cast.observer.client.get(f"/api/v1/drafts/{draft_id}/agreement"), 200)
    return case_id, draft_id, agreement


def pdf_of(person: Person, agreement: dict[str, Any]) -> bytes:
    response = person.client.get(agreement["pdf_url"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    return response.content


def pdfsig(pdf: bytes, tmp_path: Path, roots: list[Path]) -> str:
    """poppler's report on ``pdf``, trusting only ``roots`` (PEM files) in an NSS database of
    its own: an independent validator beside pyHanko."""
    path = tmp_path / "agreement.pdf"
    path.write_bytes(pdf)
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True)
    for n, root in enumerate(roots):
        subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", f"root-{n}", "-t",
                        "CT,C,C", "-i", str(root)], check=True)
    return subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(path)], capture_output=True,
                          text=True, check=False).stdout


def ca_cert(platform: Platform) -> asn1_x509.Certificate:
    _type, _headers, der = pem.unarmor((platform.settings.data_dir / "pki" / "ca.pem").read_bytes())
    return asn1_x509.Certificate.load(der)


def test_three_signatures_and_the_seal_validate_with_pyhanko(platform: Platform,
                                                             cast: Cast) -> None:
    case_id, _draft_id, agreement = signed_agreement(platform, cast)
    assert agreement["complete"] is True and agreement["revision"] == 4
    assert all(s["signed_at"] for s in agreement["signatories"])
    assert expect(cast.requester.client.get(f"/api/v1/cases/{case_id}"), 200)["status"] == "signed"
    pdf = pdf_of(cast.party_b, agreement)
    reader = PdfFileReader(io.BytesIO(pdf))
    names = [s.field_name for s in reader.embedded_signatures]
    assert names == ["Signatory1", "Signatory2", "Signatory3", "CertificateOfCompletion"]
    context = ValidationContext(trust_roots=[ca_cert(platform)], allow_fetching=False)
    signers = []
    for embedded in reader.embedded_signatures:
        status = validate_pdf_signature(embedded, context)
        assert status.bottom_line, embedded.field_name
        signers.append(status.signing_cert.subject.native["common_name"])
    # In the order they signed; each earlier signature stays valid after the later ones.
    assert signers == ["Olga PartyB", "Erlan Requester", "Aigul Mediator", "ODR platform seal"]


@pytest.mark.skipif(shutil.which("pdfsig") is None or shutil.which("certutil") is None,
                    reason="poppler-utils / libnss3-tools not installed")
def test_pdfsig_validates_every_signature_against_the_local_authority(
    platform: Platform, cast: Cast, tmp_path: Path
) -> None:
    _case, _draft, agreement = signed_agreement(platform, cast)
    out = pdfsig(pdf_of(cast.requester, agreement), tmp_path,
                 [platform.settings.data_dir / "pki" / "ca.pem"])
    assert out.count("Signature Validation: Signature is Valid.") == 4, out
    assert out.count("Certificate Validation: Certificate is Trusted.") == 4, out
    assert "Signer Certificate Common Name: Erlan Requester" in out


def test_verify_reports_a_genuine_agreement_and_finds_a_changed_byte(
    platform: Platform, cast: Cast
) -> None:
    _case, _draft, agreement = signed_agreement(platform, cast)
    pdf = pdf_of(cast.requester, agreement)
    anyone = platform.anonymous
    good = expect(anyone.post("/api/v1/verify", files={"file": ("a.pdf", pdf)}), 200)
    assert good["valid"] is True and good["changed_after_signing"] is False
    assert [s["signer"] for s in good["signatures"]][:3] == [
        "Olga PartyB", "Erlan Requester", "Aigul Mediator"]
    assert good["match"]["complete"] is True and good["match"]["latest"] is True

    # One byte changed inside the signed text of the first revision.
    index = pdf.index(b"stream", 2000) + 200
    tampered = pdf[:index] + bytes([pdf[index] ^ 0x01]) + pdf[index + 1:]
    bad = expect(anyone.post("/api/v1/verify", files={"file": ("a.pdf", tampered)}), 200)
    assert bad["valid"] is False and bad["match"] is None
    assert not all(s["intact"] for s in bad["signatures"])

    appended = pdf + b"\n% a comment added after signing\n"
    changed = expect(anyone.post("/api/v1/verify", files={"file": ("a.pdf", appended)}), 200)
    assert changed["valid"] is False

    not_pdf = expect(anyone.post("/api/v1/verify", files={"file": ("a.pdf", b"hello")}), 200)
    assert not_pdf["is_pdf"] is False and not_pdf["message"] == "This file is not a PDF."
    broken = expect(anyone.post("/api/v1/verify", files={"file": ("a.pdf", pdf[:3000])}), 200)
    assert broken["valid"] is False


def test_signing_refusals_change_nothing(platform: Platform, cast: Cast) -> None:
    case_id, draft_id = frozen_case(platform, cast)
    assert sign(cast.requester, draft_id, password="wrong password").status_code == 403
    wrong_name = sign(cast.requester, draft_id, full_name="Somebody Else")
    assert wrong_name.status_code == 400
    assert "Erlan Requester" in wrong_name.json()["detail"]
    assert sign(cast.observer, draft_id).status_code == 403  # not a signatory
    assert sign(cast.co_mediator, draft_id).status_code == 403
    stranger = platform.register("Sergey Stranger")
    assert sign(stranger, draft_id).status_code == 404
    expect(sign(cast.requester, draft_id), 200)
    assert sign(cast.requester, draft_id).status_code == 409  # twice
    agreement = expect(cast.requester.client.get(f"/api/v1/drafts/{draft_id}/agreement"), 200)
    assert agreement["revision"] == 1
    assert [s["name"] for s in agreement["signatories"] if s["signed_at"]] == ["Erlan Requester"]
    # Nothing but a frozen draft can be signed.
    other = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/drafts",
                                             json={"language": "ru"}), 201)["id"]
    assert sign(cast.party_b, other).status_code == 409


class Receiver:
    """A court's system: a real HTTP server that fails the first ``failures`` deliveries."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.attempts = 0
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.attempts += 1
                if receiver.attempts <= receiver.failures:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.event.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/odr-hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


def test_filing_receipt_inbox_decisions_and_webhooks(platform: Platform, cast: Cast,
                                                     receiver: Receiver) -> None:
    case_id, _draft, agreement = signed_agreement(platform, cast)
    platform.app.state.documents.filings.backoff = (0.05, 0.1, 0.2, 0.4)
    clerk = platform.clerk("Dinara Clerk")
    court_id = expect(clerk.client.get("/api/v1/me"), 200)["court_id"]
    other_clerk = platform.clerk("Other Court Clerk")
    hook = expect(platform.admin.client.put(f"/api/v1/admin/courts/{court_id}/webhook",
                                            json={"url": receiver.url}), 200)

    assert cast.requester.client.post(f"/api/v1/cases/{case_id}/filings",
                                      json={"court_id": court_id}).status_code == 403
    receipt = cast.mediator.client.post(f"/api/v1/cases/{case_id}/filings",
                                        json={"court_id": court_id})
    assert receipt.status_code == 201, receipt.text
    filing = receipt.json()
    assert filing["number"].startswith("F-") and filing["status"] == "received"
    again = cast.mediator.client.post(f"/api/v1/cases/{case_id}/filings",
                                      json={"court_id": court_id})
    assert again.status_code == 200 and again.json()["id"] == filing["id"]  # idempotent

    # The court's inbox, over a clerk's API token as a court system would read it.
    token = expect(clerk.client.post("/api/v1/tokens", json={"name": "court system"}), 201)
    system = platform.client(authorization=f"Bearer {token['token']}")
    inbox = expect(system.get(f"/api/v1/courts/{court_id}/filings"), 200)
    assert [f["id"] for f in inbox] == [filing["id"]]
    assert inbox[0]["verification"]["valid"] is True
    assert system.get(inbox[0]["pdf_url"]).status_code == 200
    # Another court's clerk sees nothing and can decide nothing.
    assert other_clerk.client.get(f"/api/v1/courts/{court_id}/filings").status_code == 404
    assert other_clerk.client.post(f"/api/v1/filings/{filing['id']}/accept",
                                   json={}).status_code == 404
    assert other_clerk.client.get(inbox[0]["pdf_url"]).status_code == 404

    assert clerk.client.post(f"/api/v1/filings/{filing['id']}/reject",
                             json={"reason": ""}).status_code == 400
    accepted = expect(clerk.client.post(f"/api/v1/filings/{filing['id']}/accept", json={}), 200)
    assert accepted["status"] == "accepted"
    assert clerk.client.post(f"/api/v1/filings/{filing['id']}/accept",
                             json={}).status_code == 409
    case = expect(cast.party_b.client.get(f"/api/v1/cases/{case_id}"), 200)
    assert case["status"] == "court_accepted"
    kinds = [e["kind"] for e in expect(cast.party_b.client.get(
        f"/api/v1/cases/{case_id}/events"), 200)]
    assert "filed" in kinds and "filing_accepted" in kinds
    assert "court_accepted" in cast.party_b.client.get(f"/cases/{case_id}").text

    # Both notices arrive, each after failed attempts, signed with the court's secret.
    def delivered() -> bool:
        rows = platform.sql("select event, attempts, delivered_at from webhookdelivery")
        return len(rows) == 2 and all(r[2] for r in rows)

    wait_until(delivered)
    events = []
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-odr-signature"] == expected
        events.append(json.loads(body)["event"])
    assert sorted(events) == ["filing.accepted", "filing.received"]
    attempts = platform.sql("select sum(attempts) from webhookdelivery")[0][0]
    assert attempts == 4  # two failures, then one success each


def test_a_rejected_filing_returns_to_the_mediator(platform: Platform, cast: Cast) -> None:
    case_id, _draft, _agreement = signed_agreement(platform, cast)
    clerk = platform.clerk()
    court_id = expect(clerk.client.get("/api/v1/me"), 200)["court_id"]
    filing = expect(cast.mediator.client.post(f"/api/v1/cases/{case_id}/filings",
                                              json={"court_id": court_id}), 201)
    rejected = expect(clerk.client.post(f"/api/v1/filings/{filing['id']}/reject",
                                        json={"reason": "The court fee receipt is missing."}),
                      200)
    assert rejected["status"] == "rejected"
    case = expect(cast.requester.client.get(f"/api/v1/cases/{case_id}"), 200)
    assert case["status"] == "court_rejected"
    events = expect(cast.requester.client.get(f"/api/v1/cases/{case_id}/events"), 200)
    assert any(e["detail"] == "The court fee receipt is missing." for e in events)


def wait_until(condition: Any, seconds: float = 20) -> None:
    done = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError("condition not met in time")


def test_a_signatory_without_a_password_confirms_with_a_code_by_email(
    platform: Platform, cast: Cast
) -> None:
    _case, draft_id = frozen_case(platform, cast)
    platform.sql("update \"user\" set password_hash = null where id = ?", cast.party_b.id)
    no_code = cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign",
                                       json={"full_name": cast.party_b.name})
    assert no_code.status_code == 400
    assert cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign/code",
                                    json={}).status_code == 204
    body = platform.scalar("select body from outboxmail where \"to\" = ? order by id desc limit 1",
                           cast.party_b.email)
    code = next(word.rstrip(".") for word in body.split() if word.rstrip(".").isdigit()
                and len(word.rstrip(".")) == 6)
    wrong = cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign",
                                     json={"full_name": cast.party_b.name, "code": "000000"
                                           if code != "000000" else "111111"})
    assert wrong.status_code == 403
    signed = expect(cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign",
                                             json={"full_name": cast.party_b.name,
                                                   "code": code}), 200)
    assert [s["name"] for s in signed["signatories"] if s["signed_at"]] == ["Olga PartyB"]
    reused = cast.party_b.client.post(f"/api/v1/drafts/{draft_id}/sign",
                                      json={"full_name": cast.party_b.name, "code": code})
    assert reused.status_code == 409  # already signed; the code is spent too
