"""Checking any PDF: are its signatures intact and valid, who signed and when, was it changed
after signing, and is it one of the platform's agreements."""

from __future__ import annotations

import io
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from pydantic import BaseModel
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import CMSExtractionError, CMSStructuralError
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko_certvalidator import ValidationContext

from odr.errors import N_
from odr.i18n import Translator


class SignatureReport(BaseModel):
    field: str
    signer: str
    signed_at: datetime | None
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_document: bool
    changes_after: str  # pyHanko's modification level: none, form_filling, annotations, other


class AgreementMatch(BaseModel):
    agreement_id: int
    case_number: str
    revision: int
    complete: bool
    latest: bool


class VerificationReport(BaseModel):
    is_pdf: bool
    valid: bool  # every signature intact, valid and trusted, and nothing changed after the last
    changed_after_signing: bool
    signatures: list[SignatureReport]
    match: AgreementMatch | None = None
    message: str


def _signer_name(cert: asn1_x509.Certificate | None) -> str:
    if cert is None:
        return ""
    subject = cert.subject.native
    return str(subject.get("common_name") or cert.subject.human_friendly)


def verify_pdf(data: bytes, trust_roots: list[asn1_x509.Certificate], tr: Translator
               ) -> VerificationReport:
    """Validate every signature of ``data``; never raises on bad input, it reports."""
    if not data.startswith(b"%PDF-"):
        return VerificationReport(is_pdf=False, valid=False, changed_after_signing=False,
                                  signatures=[], message=tr.gettext(N_("This file is not a PDF.")))
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        return VerificationReport(
            is_pdf=False, valid=False, changed_after_signing=False, signatures=[],
            message=tr.gettext(N_("The PDF is damaged and cannot be read: %(reason)s"),
                               reason=str(exc)[:200]))
    if not embedded:
        return VerificationReport(is_pdf=True, valid=False, changed_after_signing=False,
                                  signatures=[],
                                  message=tr.gettext(N_("The PDF has no signatures.")))
    context = ValidationContext(trust_roots=trust_roots, allow_fetching=False)
    reports: list[SignatureReport] = []
    for signature in embedded:
        try:
            status = validate_pdf_signature(signature, context)
            level = status.modification_level
            reports.append(SignatureReport(
                field=signature.field_name or "", signer=_signer_name(status.signing_cert),
                signed_at=status.signer_reported_dt, intact=bool(status.intact),
                valid=bool(status.valid), trusted=bool(status.trusted),
                covers_whole_document=status.coverage is not None
                and status.coverage.name == "ENTIRE_FILE",
                changes_after=level.name.lower() if level is not None else "other",
            ))
        except (SignatureValidationError, CMSExtractionError, CMSStructuralError, PdfError,
                ValueError, KeyError, TypeError) as exc:
            reports.append(SignatureReport(
                field=signature.field_name or "", signer="", signed_at=None, intact=False,
                valid=False, trusted=False, covers_whole_document=False,
                changes_after=f"error: {str(exc)[:120]}"))
    last = reports[-1]
    changed = not last.covers_whole_document
    allowed = {"none", "lta_updates", "form_filling"}
    good = all(r.intact and r.valid and r.trusted and r.changes_after in allowed
               for r in reports) and not changed
    if good:
        message = tr.gettext(N_("All signatures are intact and valid; the document has not "
                                "been changed since it was signed."))
    elif any(not r.intact for r in reports):
        message = tr.gettext(N_("A signature is broken: the document was changed after it "
                                "was signed."))
    elif changed:
        message = tr.gettext(N_("The document was changed after the last signature."))
    else:
        message = tr.gettext(N_("The signatures could not be confirmed as valid and trusted."))
    return VerificationReport(is_pdf=True, valid=good, changed_after_signing=changed,
                              signatures=reports, message=message)
