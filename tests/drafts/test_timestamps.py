"""Timestamps from a real RFC 3161 server over HTTP: every signature timestamped (PAdES B-T),
the seal followed by validation data and a document timestamp (B-LT, B-LTA) that pyHanko and
pdfsig accept; a server that is down refuses a signature without changing anything, and a seal
it made fail is made when the agreement is next read."""

from __future__ import annotations

import asyncio
import datetime
import io
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    SignatureCoverageLevel,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleCertificateStore, SimpleTrustManager

from documents.pki import TrustRoots
from documents.verify import verify_pdf
from odr.i18n import Catalogues
from odr.models import CaseStatus
from tests.drafts.test_signing import (
    ca_cert,
    frozen_case,
    pdf_of,
    pdfsig,
    sign,
    signed_agreement,
)
from tests.harness import Cast, Platform, expect, open_platform


def policy(roots: list[asn1_x509.Certificate], rule: RevocationCheckingRule
           ) -> CertValidationPolicySpec:
    return CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=roots),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(
            ee_certificate_rule=rule, intermediate_ca_cert_rule=rule)))


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def der(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def der_key(key: PrivateKey) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def issue(name: str, issuer: tuple[PrivateKey, x509.Certificate] | None, *, ca: bool,
          eku: list[x509.ObjectIdentifier] | None = None, key: PrivateKey | None = None
          ) -> tuple[PrivateKey, x509.Certificate]:
    """A test certificate (self-signed when ``issuer`` is None), for a new RSA key unless
    ``key`` is given."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_key, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, subject)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
            encipher_only=False, decipher_only=False), critical=True)
    )
    if issuer:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    return key, builder.sign(issuer_key, hashes.SHA256())


class TimestampServer:
    """A real RFC 3161 server over HTTP, its certificate issued by its own test root.

    ``up`` switches it off (it answers 503); ``answers_left`` lets that many more requests
    succeed and fails the rest.
    """

    def __init__(self) -> None:
        root = issue("Test TSA Root", None, ca=True)
        tsa_key, tsa_cert = issue("Test Time Stamping Authority", root, ca=False,
                                  eku=[ExtendedKeyUsageOID.TIME_STAMPING])
        self.root = root[1]
        self.up = True
        self.answers_left: int | None = None
        self.requests = 0
        stamper = DummyTimeStamper(
            tsa_cert=der(tsa_cert),
            tsa_key=der_key(tsa_key),
            certs_to_embed=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [der(tsa_cert)]))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                server.requests += 1
                if server.answers_left is not None:
                    server.up = server.answers_left > 0
                    server.answers_left -= 1
                if (not server.up
                        or self.headers["content-type"] != "application/timestamp-query"):
                    self.send_response(503)
                    self.end_headers()
                    return
                reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
                self.send_response(200)
                self.send_header("content-type", "application/timestamp-reply")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                pass

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/tsa"

    def root_file(self, folder: Path) -> Path:
        path = folder / "tsa-root.pem"
        path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return path

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def tsa() -> Iterator[TimestampServer]:
    server = TimestampServer()
    yield server
    server.close()


@pytest.fixture
def timestamped(tmp_path: Path, template_db: Path, tsa: TimestampServer) -> Iterator[Platform]:
    """A platform whose timestamp server is ``tsa``, with its root configured."""
    with open_platform(tmp_path, template_db, tsa_url=tsa.url,
                       tsa_trust_roots_file=tsa.root_file(tmp_path)) as p:
        yield p


def test_every_signature_is_timestamped_and_the_seal_adds_dss_and_a_document_timestamp(
    timestamped: Platform, tsa: TimestampServer
) -> None:
    platform = timestamped
    cast = platform.cast()
    _case, _draft, agreement = signed_agreement(platform, cast)
    assert agreement["complete"] is True and agreement["revision"] == 4
    pdf = pdf_of(cast.requester, agreement)
    reader = PdfFileReader(io.BytesIO(pdf))
    assert [s.field_name for s in reader.embedded_signatures] == [
        "Signatory1", "Signatory2", "Signatory3", "CertificateOfCompletion",
        "DocumentTimestamp"]

    signers_context = ValidationContext(trust_roots=[ca_cert(platform)], allow_fetching=False)
    tsa_context = ValidationContext(trust_roots=[der(tsa.root)], allow_fetching=False)
    for embedded in reader.embedded_regular_signatures:
        status = validate_pdf_signature(embedded, signers_context,
                                        ts_validation_context=tsa_context)
        assert status.bottom_line, embedded.field_name
        stamp = status.timestamp_validity  # the signature's own timestamp token (B-T)
        assert stamp is not None and stamp.intact and stamp.valid and stamp.trusted
        # After each signature: later signatures, the seal, then only DSS and a timestamp.
        assert status.modification_level in (ModificationLevel.LTA_UPDATES,
                                             ModificationLevel.FORM_FILLING)
    [document_stamp] = reader.embedded_timestamp_signatures
    stamp_status = validate_pdf_timestamp(document_stamp, tsa_context)
    assert stamp_status.intact and stamp_status.valid and stamp_status.trusted
    assert stamp_status.coverage == SignatureCoverageLevel.ENTIRE_FILE

    # B-LT: the DSS holds the certificates of every signer, the authority and the timestamp
    # server, and the local authority's revocation list (it has no URL to fetch one from).
    dss = DocumentSecurityStore.read_dss(reader)
    names = {c.subject.native["common_name"] for c in dss.load_certs()}
    assert {"Olga PartyB", "Erlan Requester", "Aigul Mediator", "ODR platform seal",
            "ODR Local Signing Authority", "Test Time Stamping Authority",
            "Test TSA Root"} <= names
    assert list(dss.crls), "no revocation list in the DSS"

    # PAdES B-LTA as pyHanko's AdES validation sees it: the document timestamp is the evidence
    # record, and the signers' revocation check *requires* a CRL (found in the DSS).
    spec = PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=policy([ca_cert(platform)], RevocationCheckingRule.CRL_REQUIRED),
        ts_cert_validation_policy=policy([der(tsa.root)],
                                         RevocationCheckingRule.CHECK_IF_DECLARED)))
    for embedded in reader.embedded_regular_signatures:
        result = asyncio.run(ades_lta_validation(embedded, spec))
        assert result.ades_subindic == AdESPassed.OK, (embedded.field_name, result)
        assert result.oldest_evidence_record_timestamp is not None

    # The platform's own check trusts the server's root and says so for each timestamp.
    report = expect(platform.anonymous.post("/api/v1/verify", files={"file": ("a.pdf", pdf)}),
                    200)
    assert report["valid"] is True, report
    kinds = [s["kind"] for s in report["signatures"]]
    assert kinds == ["signature"] * 4 + ["document_timestamp"]
    assert all(s["timestamp_trusted"] is True and s["timestamp_at"]
               for s in report["signatures"])


@pytest.mark.skipif(shutil.which("pdfsig") is None or shutil.which("certutil") is None,
                    reason="poppler-utils / libnss3-tools not installed")
def test_pdfsig_still_validates_the_long_term_file(timestamped: Platform,
                                                   tsa: TimestampServer,
                                                   tmp_path: Path) -> None:
    platform = timestamped
    cast = platform.cast()
    _case, _draft, agreement = signed_agreement(platform, cast)
    out = pdfsig(pdf_of(cast.requester, agreement), tmp_path,
                 [platform.settings.data_dir / "pki" / "ca.pem", tsa.root_file(tmp_path)])
    # Four signatures valid and trusted; pdfsig cannot check the document timestamp itself.
    assert out.count("Signature Validation: Signature is Valid.") == 4, out
    assert out.count("Certificate Validation: Certificate is Trusted.") == 4, out
    assert "Signer Certificate Common Name: Aigul Mediator" in out


def test_a_timestamp_server_that_is_down_refuses_the_signature_and_the_seal_comes_later(
    timestamped: Platform, tsa: TimestampServer
) -> None:
    platform = timestamped
    platform.app.state.documents.signing.seal_retry_seconds = 0
    cast = platform.cast()
    case_id, draft_id = frozen_case(platform, cast)

    tsa.up = False
    refused = sign(cast.requester, draft_id)
    assert refused.status_code == 503, refused.text
    assert "timestamp server" in refused.json()["detail"]
    agreement = expect(cast.requester.client.get(f"/api/v1/drafts/{draft_id}/agreement"), 200)
    assert agreement["revision"] == 0 and not any(s["signed_at"]
                                                  for s in agreement["signatories"])
    assert platform.scalar("select count(*) from agreementsignature join agreement on "
                           "agreement.id = agreement_id where draft_id = ?", draft_id) == 0

    tsa.up = True
    for person in (cast.requester, cast.party_b):
        expect(sign(person, draft_id), 200)
    # The last signature is timestamped (one request: the timestamper is kept, so its sample
    # token is not fetched again), then the server goes down before the seal.
    tsa.answers_left = 1
    last = expect(sign(cast.mediator, draft_id), 200)
    assert last["complete"] is False and last["revision"] == 3
    assert all(s["signed_at"] for s in last["signatories"])
    case = expect(cast.requester.client.get(f"/api/v1/cases/{case_id}"), 200)
    assert case["status"] != CaseStatus.signed.value
    # Still down: reading the agreement tries the seal again, and it stays unsealed.
    again = expect(cast.party_b.client.get(f"/api/v1/drafts/{draft_id}/agreement"), 200)
    assert again["complete"] is False

    tsa.answers_left, tsa.up = None, True
    sealed = expect(cast.party_b.client.get(f"/api/v1/drafts/{draft_id}/agreement"), 200)
    assert sealed["complete"] is True and sealed["revision"] == 4
    case = expect(cast.requester.client.get(f"/api/v1/cases/{case_id}"), 200)
    assert case["status"] == CaseStatus.signed.value
    report = expect(platform.anonymous.post(
        "/api/v1/verify", files={"file": ("a.pdf", pdf_of(cast.requester, sealed))}), 200)
    assert report["valid"] is True and report["match"]["complete"] is True


def test_a_restarted_service_seals_what_was_left_unsealed(
    tmp_path: Path, template_db: Path, tsa: TimestampServer
) -> None:
    settings = {"tsa_url": tsa.url, "tsa_trust_roots_file": tsa.root_file(tmp_path)}
    with open_platform(tmp_path, template_db, **settings) as platform:
        cast = platform.cast()
        _case, draft_id = frozen_case(platform, cast)
        for person in (cast.requester, cast.party_b):
            expect(sign(person, draft_id), 200)
        tsa.answers_left = 1  # the last signature's timestamp, then the server is down
        assert expect(sign(cast.mediator, draft_id), 200)["complete"] is False
    tsa.answers_left, tsa.up = None, True

    def sealed() -> int:
        return int(platform.scalar(  # the case's contract was sealed before all this
            "select count(*) from agreement where completed_at is not null and draft_id = ?",
            draft_id))

    assert sealed() == 0
    with open_platform(tmp_path, template_db, **settings) as platform:
        # Start-up does not wait for the seal: it comes in the background.
        sealing = platform.app.state.documents.startup_sealing
        platform.run(lambda _svc: asyncio.wait_for(sealing, 30))
        assert sealed() == 1


def test_a_timestamp_under_an_unknown_root_is_not_called_trusted(
    tmp_path: Path, template_db: Path, tsa: TimestampServer
) -> None:
    # The server is configured but its root is not: signatures are timestamped (B-T), no
    # long-term data is added, and verification does not trust those timestamps.
    with open_platform(tmp_path, template_db, tsa_url=tsa.url) as platform:
        cast: Cast = platform.cast()
        _case, _draft, agreement = signed_agreement(platform, cast)
        pdf = pdf_of(cast.requester, agreement)
        reader = PdfFileReader(io.BytesIO(pdf))
        assert not reader.embedded_timestamp_signatures and "/DSS" not in reader.root
        report = expect(platform.anonymous.post("/api/v1/verify",
                                                files={"file": ("a.pdf", pdf)}), 200)
        assert report["valid"] is False
        assert all(s["trusted"] and s["timestamp_trusted"] is False and s["timestamp_at"]
                   for s in report["signatures"])
        tr = Catalogues("en").get("en")
        roots = platform.app.state.documents.signing.trust_roots()
        # Given the server's root as a timestamp root, the same file is fully trusted.
        trusting = verify_pdf(pdf, TrustRoots(roots.signers, [der(tsa.root)]), tr)
        assert trusting.valid is True
        # And a timestamp root never vouches for a signer.
        swapped = verify_pdf(pdf, TrustRoots([der(tsa.root)], roots.signers), tr)
        assert swapped.valid is False and not any(s.trusted for s in swapped.signatures)
