"""Signing keys: a configured platform certificate (issued by a test CA) names each signatory
and is trusted through its CA only; the local authority is RSA, so the signed file stays a
PDF 1.7 with one producer name (PDF/A-3); an older elliptic-curve authority is retired and
what it signed still verifies."""

from __future__ import annotations

import io
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from weasyprint import HTML

from documents.pki import LocalAuthority, TrustRoots
from documents.verify import verify_pdf
from odr.i18n import Catalogues
from tests.drafts.test_signing import pdf_of, signed_agreement
from tests.drafts.test_timestamps import der, der_key, issue
from tests.harness import Platform, expect, make_settings, open_platform

PASSPHRASE = "key passphrase"


def configured_files(folder: Path) -> tuple[Path, Path, Path, x509.Certificate]:
    """A CA, and a platform signing certificate it issued: (cert, key, chain, CA cert)."""
    ca = issue("Test Organisation CA", None, ca=True)
    key, cert = issue("ODR Platform Signing", ca, ca=False)
    cert_file, key_file, chain_file = (folder / "signing.pem", folder / "signing.key",
                                       folder / "chain.pem")
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    chain_file.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file, chain_file, ca[1]


def test_a_configured_certificate_names_each_signatory_and_is_trusted_through_its_ca(
    tmp_path: Path, template_db: Path
) -> None:
    cert_file, key_file, chain_file, ca = configured_files(tmp_path)
    data = tmp_path / "data"
    with open_platform(data, template_db, signing_cert_file=cert_file,
                       signing_key_file=key_file, signing_key_password=PASSPHRASE,
                       signing_chain_file=chain_file) as platform:
        cast = platform.cast()
        _case, _draft, agreement = signed_agreement(platform, cast)
        pdf = pdf_of(cast.requester, agreement)

        # pyHanko, trusting the test CA only: every signature valid, made with the platform
        # certificate, and naming its signatory in the signature dictionary.
        context = ValidationContext(trust_roots=[der(ca)], allow_fetching=False)
        reader = PdfFileReader(io.BytesIO(pdf))
        named = []
        for embedded in reader.embedded_signatures:
            status = validate_pdf_signature(embedded, context)
            assert status.bottom_line, embedded.field_name
            assert status.signing_cert.subject.native["common_name"] == "ODR Platform Signing"
            named.append(str(embedded.sig_object["/Name"]))
        people = ["Olga PartyB", "Erlan Requester", "Aigul Mediator"]
        assert named == [*people, "ODR platform"]
        assert "Erlan Requester" in str(reader.embedded_signatures[1].sig_object["/Reason"])

        # The platform's check reports who signed, and with which certificate.
        report = expect(platform.anonymous.post("/api/v1/verify",
                                                files={"file": ("a.pdf", pdf)}), 200)
        assert report["valid"] is True, report
        assert [s["signer"] for s in report["signatures"]][:3] == people
        assert {s["certificate"] for s in report["signatures"]} == {"ODR Platform Signing"}

        # Trusted: the CA, not the end-entity certificate; no local authority was made.
        roots = platform.app.state.documents.signing.trust_roots()
        assert [r.subject.native["common_name"] for r in roots.signers] == [
            "Test Organisation CA"]
        assert not (data / "pki" / "ca.pem").exists()


def test_without_a_chain_the_end_entity_certificate_is_not_a_trust_anchor(
    tmp_path: Path, template_db: Path
) -> None:
    cert_file, key_file, _chain, _ca = configured_files(tmp_path)
    with open_platform(tmp_path / "data", template_db, signing_cert_file=cert_file,
                       signing_key_file=key_file, signing_key_password=PASSPHRASE) as platform:
        cast = platform.cast()
        _case, _draft, agreement = signed_agreement(platform, cast)
        report = expect(platform.anonymous.post(
            "/api/v1/verify", files={"file": ("a.pdf", pdf_of(cast.requester, agreement))}),
            200)
        assert report["valid"] is False
        assert not any(s["trusted"] for s in report["signatures"])


def test_the_signed_file_keeps_one_producer_and_pdf_1_7(platform: Platform) -> None:
    cast = platform.cast()
    _case, _draft, agreement = signed_agreement(platform, cast)
    pdf = pdf_of(cast.requester, agreement)
    reader = PdfFileReader(io.BytesIO(pdf))
    xmp = reader.root["/Metadata"].get_object().data.decode()
    xmp_producer = re.search(r'pdf:Producer="([^"]*)"|<pdf:Producer>([^<]*)<', xmp)
    assert xmp_producer is not None, xmp
    info = reader.trailer["/Info"]
    assert str(info["/Producer"]) == (xmp_producer.group(1) or xmp_producer.group(2))
    assert 'pdfaid:part="3"' in xmp or "<pdfaid:part>3<" in xmp
    # No PDF 2.0 (pyHanko's answer to ECDSA keys) and no ISO 32002 extension.
    assert str(reader.root.get("/Version", "/1.7")) != "/2.0"
    assert "/ISO_" not in reader.root.get("/Extensions", {})
    assert pdf.startswith(b"%PDF-1.7")
    authority = platform.app.state.documents.signing.authority
    assert isinstance(authority.key, rsa.RSAPrivateKey)


def test_an_elliptic_curve_authority_is_retired_and_what_it_signed_still_verifies(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    folder, passphrase = tmp_path / "pki", settings.effective_secret_key.encode()
    # The authority as earlier versions made it: ECDSA P-256, in pki/ca.key and pki/ca.pem.
    folder.mkdir()
    old_key, old_cert = issue("Old EC Authority", None, ca=True,
                              key=ec.generate_private_key(ec.SECP256R1()))
    (folder / "ca.key").write_bytes(old_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase)))
    (folder / "ca.pem").write_bytes(old_cert.public_bytes(serialization.Encoding.PEM))
    # A document it signed back then.
    signer_key, signer_cert = issue("Old Signer", (old_key, old_cert), ca=False,
                                    key=ec.generate_private_key(ec.SECP256R1()))
    signer = signers.SimpleSigner(
        signing_cert=der(signer_cert),
        signing_key=der_key(signer_key),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [der(old_cert)]))
    blank = HTML(string="<p>An agreement</p>").write_pdf()
    old_pdf = bytes(signers.PdfSigner(
        signers.PdfSignatureMetadata(field_name="Old", subfilter=fields.SigSeedSubFilter.PADES),
        signer=signer).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(blank))).getbuffer())

    authority = LocalAuthority.open(folder, passphrase)
    assert isinstance(authority.key, rsa.RSAPrivateKey)
    assert x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes()) == authority.cert
    assert [p.name for p in (folder / "retired").iterdir()] != []
    assert authority.retired == [old_cert]
    # Opening again keeps the new one and still knows the retired one.
    assert LocalAuthority.open(folder, passphrase).cert == authority.cert

    report = verify_pdf(old_pdf, TrustRoots(authority.trust_roots), Catalogues("en").get("en"))
    assert report.valid is True and report.signatures[0].trusted is True
