"""Checking any PDF: are its signatures intact and valid, who signed and when, was it changed
after signing, and is it one of the platform's agreements.

Anything may be uploaded, so nothing here raises on bad input: a file that is not a PDF, a PDF
that cannot be read, and a signature that cannot be read or checked each get a plain report.
Each signature is read on its own, so one damaged signature is reported as that signature being
broken while the others are still checked.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from datetime import datetime

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from pydantic import BaseModel
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    PdfSignatureStatus,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko_certvalidator import ValidationContext

from documents import pyhanko_hooks
from documents.pki import TrustRoots
from odr.errors import N_
from odr.i18n import Translator

log = logging.getLogger("odr.verify")
pyhanko_hooks.install()

# Form fields nest; deeper than this is not a real form.
MAX_FIELD_DEPTH = 16


class SignatureReport(BaseModel):
    field: str
    signer: str
    signed_at: datetime | None
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_document: bool
    # pyHanko's modification level: none, lta_updates, form_filling, annotations, other;
    # "unknown" when the signature could not be checked.
    changes_after: str
    # Why the signature could not be checked, in the reader's language (empty when it was).
    problem: str = ""
    # "signature", or "document_timestamp" (PAdES B-LTA: made by a timestamp server).
    kind: str = "signature"
    # Whose certificate made it; ``signer`` is who the signature names (/Name), which differs
    # when one configured platform certificate makes every signature.
    certificate: str = ""
    # Its RFC 3161 timestamp, and whether that is intact, valid and under a trusted timestamp
    # root (None: no timestamp). A timestamp under an unknown root is never called trusted.
    timestamp_at: datetime | None = None
    timestamp_trusted: bool | None = None


class AgreementMatch(BaseModel):
    agreement_id: int
    case_number: str
    revision: int
    complete: bool
    latest: bool


class VerificationReport(BaseModel):
    is_pdf: bool  # the file says it is a PDF
    readable: bool = True  # ... and it could be read
    valid: bool  # every signature intact, valid and trusted, and nothing changed after the last
    changed_after_signing: bool
    signatures: list[SignatureReport]
    match: AgreementMatch | None = None
    message: str


def _signer_name(cert: asn1_x509.Certificate | None,
                 embedded: EmbeddedPdfSignature | None = None) -> str:
    """Who signed: the name the signature dictionary gives (/Name, inside the signed bytes),
    else the certificate's common name."""
    try:
        named = str(embedded.sig_object.get("/Name") or "") if embedded is not None else ""
    except Exception:  # damaged input raises anything; the name is optional
        named = ""
    if named or cert is None:
        return named
    subject = cert.subject.native
    return str(subject.get("common_name") or cert.subject.human_friendly)


def _timestamp_trusted(status: PdfSignatureStatus) -> bool | None:
    stamp = status.timestamp_validity
    return None if stamp is None else bool(stamp.intact and stamp.valid and stamp.trusted)


async def _document_timestamp(embedded: EmbeddedPdfSignature, name: str, revision: int,
                              context: ValidationContext, extra_data: bool
                              ) -> tuple[int, SignatureReport]:
    """A document timestamp (PAdES B-LTA), checked against the timestamp roots."""
    stamp = await async_validate_pdf_timestamp(embedded, context)
    whole = stamp.coverage is not None and stamp.coverage.name == "ENTIRE_FILE"
    level = stamp.modification_level
    return revision, SignatureReport(
        field=name, kind="document_timestamp", signer=_signer_name(stamp.signing_cert),
        certificate=_signer_name(stamp.signing_cert), signed_at=stamp.timestamp,
        intact=bool(stamp.intact) and not extra_data, valid=bool(stamp.valid),
        trusted=bool(stamp.trusted), covers_whole_document=whole,
        changes_after=level.name.lower() if level is not None else "none",
        timestamp_at=stamp.timestamp,
        timestamp_trusted=bool(stamp.intact and stamp.valid and stamp.trusted))


def _broken(field: str, problem: str) -> SignatureReport:
    return SignatureReport(field=field, signer="", signed_at=None, intact=False, valid=False,
                           trusted=False, covers_whole_document=False, changes_after="unknown",
                           problem=problem)


def _signature_fields(reader: PdfFileReader
                      ) -> list[tuple[str, generic.DictionaryObject | None]]:
    """The filled signature fields as (name, field), without reading any signature yet;
    (position, None) for a form field that cannot be read at all."""
    try:
        top = reader.root["/AcroForm"]["/Fields"]
    except KeyError:
        return []
    found: list[tuple[str, generic.DictionaryObject | None]] = []

    def walk(fields: object, parent: str, inherited_type: object, depth: int) -> None:
        if depth > MAX_FIELD_DEPTH or not isinstance(fields, generic.ArrayObject):
            return
        for ref in fields:
            try:
                field = ref.get_object()
                if not isinstance(field, generic.DictionaryObject) or "/T" not in field:
                    continue  # a bare widget, not a field
                name = f"{parent}.{field['/T']}" if parent else str(field["/T"])
                field_type = field.get("/FT", inherited_type)
                kids = field.get("/Kids")
            except Exception:  # damaged input raises anything; reported below
                log.info("unreadable form field", exc_info=True)
                found.append((f"#{len(found) + 1}", None))
                continue
            # "/V" in field looks at the key only: the signature itself is read later, alone.
            if field_type == "/Sig" and "/V" in field:
                found.append((name, field))
            if kids is not None:
                walk(kids, name, field_type, depth + 1)

    walk(top, "", None, 0)
    return found


# The gap left out of a signature's byte range: its /Contents, the signature in hex digits of
# one case (as every signer writes it), then zeros up to the space reserved.
_CONTENTS = re.compile(rb"<(?:[0-9A-F]*|[0-9a-f]*)>")


def _contents_changed(embedded: EmbeddedPdfSignature) -> bool:
    """Whether the signature's /Contents was changed where no signature covers it: whitespace
    or a letter's case in its hex digits, or anything but zeros after the signature. Each
    decodes to the same signature (or one pyHanko reads past), so would otherwise go unnoticed."""
    _start, gap_start, gap_end, _length = (int(n) for n in embedded.byte_range)
    stream = embedded.reader.stream
    stream.seek(gap_start)
    if not _CONTENTS.fullmatch(stream.read(gap_end - gap_start)):
        return True
    raw: bytes = embedded.pkcs7_content
    used = len(cms.ContentInfo.load(raw).dump())
    return bool(raw[used:].strip(b"\x00"))


def _unsigned_parts_changed(embedded: EmbeddedPdfSignature, status: PdfSignatureStatus
                            ) -> bool:
    """Whether parts of the signature container that its own signature does not cover were
    changed: its version numbers must be the ones RFC 5652 sets, the certificates it carries
    the ones that validated it (its path to a trusted root), and its list of digest algorithms
    must name the one used. Only a later signature covers these parts; nothing covers the last
    signature's."""
    signed_data = embedded.signed_data
    try:
        # Their versions, as RFC 5652 sets them for what the container holds.
        signer_info = embedded.signer_info
        by_key_id = signer_info["sid"].name == "subject_key_identifier"
        if signer_info["version"].native != ("v3" if by_key_id else "v1"):
            return True
        plain = (signed_data["encap_content_info"]["content_type"].native == "data"
                 and all(c.name == "certificate" for c in signed_data["certificates"] or [])
                 and all(s["version"].native == "v1" for s in signed_data["signer_infos"]))
        if plain and signed_data["version"].native != "v1":
            return True
        if status.validation_path is not None:
            path = {c.dump() for c in status.validation_path.iter_certs(include_root=True)}
            for carried in signed_data["certificates"] or []:
                if carried.name == "certificate" and carried.chosen.dump() not in path:
                    return True
        used = signer_info["digest_algorithm"]["algorithm"].native
        return used not in {a["algorithm"].native for a in signed_data["digest_algorithms"]}
    except Exception:  # a part that no longer even parses was changed all the more
        log.info("unreadable part of signature %s", embedded.fq_name, exc_info=True)
        return True


async def _check(reader: PdfFileReader, name: str, field: generic.DictionaryObject | None,
                 context: ValidationContext, tr: Translator,
                 ts_context: ValidationContext | None = None) -> tuple[int, SignatureReport]:
    """One signature's report, with the revision it signed (-1 when unknown)."""
    if field is None:
        return -1, _broken(name, tr.gettext(N_("This part of the form is damaged and cannot "
                                               "be read.")))
    try:
        embedded = EmbeddedPdfSignature(reader, field, name)
        revision = int(embedded.signed_revision)
        extra_data = _contents_changed(embedded)
    except Exception:  # damaged input raises anything (zlib, asn1, PDF syntax)
        log.info("unreadable signature %s", name, exc_info=True)
        return -1, _broken(name, tr.gettext(N_("The signature is damaged and cannot be read.")))
    if embedded.sig_object_type == "/DocTimeStamp":
        try:
            return await _document_timestamp(embedded, name, revision, ts_context or context,
                                             extra_data)
        except Exception:  # as below: damaged input raises anything
            log.info("document timestamp %s could not be checked", name, exc_info=True)
            return revision, _broken(name, tr.gettext(N_(
                "The signature could not be checked: the document is damaged.")))
    problem = ""
    try:
        status = await async_validate_pdf_signature(embedded, context,
                                                    ts_validation_context=ts_context)
    except Exception:  # as above, while comparing it with later revisions
        log.info("signature %s could not be checked", name, exc_info=True)
        try:
            # The signature may be sound while a later revision is damaged: check it alone.
            status = await async_validate_pdf_signature(
                embedded, context, ts_validation_context=ts_context, skip_diff=True)
        except Exception:
            return revision, _broken(name, tr.gettext(N_(
                "The signature could not be checked: the document is damaged.")))
        problem = tr.gettext(N_("What was changed after this signature could not be checked: "
                                "the document is damaged."))
    if extra_data or _unsigned_parts_changed(embedded, status):
        extra_data = True
        problem = tr.gettext(N_("The signature was changed after it was made."))
    level = status.modification_level
    return revision, SignatureReport(
        field=name, signer=_signer_name(status.signing_cert, embedded),
        certificate=_signer_name(status.signing_cert),
        timestamp_at=status.timestamp_validity.timestamp if status.timestamp_validity else None,
        timestamp_trusted=_timestamp_trusted(status),
        signed_at=status.signer_reported_dt, intact=bool(status.intact) and not extra_data,
        valid=bool(status.valid), trusted=bool(status.trusted),
        covers_whole_document=status.coverage is not None
        and status.coverage.name == "ENTIRE_FILE",
        changes_after=level.name.lower() if level is not None else "unknown",
        problem=problem,
    )


async def _check_all(reader: PdfFileReader,
                     fields: list[tuple[str, generic.DictionaryObject | None]],
                     context: ValidationContext, tr: Translator,
                     ts_context: ValidationContext | None = None) -> list[SignatureReport]:
    """Every signature, in signing order (one event loop for all of them)."""
    try:
        checked = [await _check(reader, name, field, context, tr, ts_context)
                   for name, field in fields]
    finally:
        await context.aclose()  # type: ignore[no-untyped-call]
        if ts_context is not None:
            await ts_context.aclose()  # type: ignore[no-untyped-call]
    # In the order they were made; one whose revision is unknown keeps its place in the form.
    keyed, last = [], 0
    for position, (revision, report) in enumerate(checked):
        last = revision if revision >= 0 else last
        keyed.append(((last, position), report))
    return [report for _key, report in sorted(keyed, key=lambda item: item[0])]


def verify_pdf(data: bytes, trust_roots: TrustRoots | list[asn1_x509.Certificate],
               tr: Translator) -> VerificationReport:
    """Validate every signature of ``data``; never raises on bad input, it reports.

    Signers are trusted under ``trust_roots.signers`` and timestamps under
    ``trust_roots.timestamps`` only (a plain list: signers' roots, no timestamp roots).
    """
    if not data.startswith(b"%PDF-"):
        return VerificationReport(is_pdf=False, readable=False, valid=False,
                                  changed_after_signing=False, signatures=[],
                                  message=tr.gettext(N_("This file is not a PDF.")))
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        fields = _signature_fields(reader)
    except Exception:  # damaged input raises anything (zlib, asn1, PDF syntax)
        log.info("unreadable PDF", exc_info=True)
        return VerificationReport(
            is_pdf=True, readable=False, valid=False, changed_after_signing=False,
            signatures=[], message=tr.gettext(N_("The PDF is damaged and cannot be read.")))
    if not fields:
        return VerificationReport(is_pdf=True, valid=False, changed_after_signing=False,
                                  signatures=[],
                                  message=tr.gettext(N_("The PDF has no signatures.")))
    roots = trust_roots if isinstance(trust_roots, TrustRoots) else TrustRoots(trust_roots)
    context = ValidationContext(trust_roots=roots.signers, allow_fetching=False)
    # Timestamps get their own context: a public timestamp authority's root must never vouch
    # for a signer, nor a signers' root for a timestamp.
    ts_context = ValidationContext(trust_roots=roots.timestamps, allow_fetching=False)
    reports = asyncio.run(_check_all(reader, fields, context, tr, ts_context))
    last = reports[-1]
    changed = not last.covers_whole_document
    allowed = {"none", "lta_updates", "form_filling"}
    stamps_ok = all(r.timestamp_trusted is not False for r in reports)
    good = all(r.intact and r.valid and r.trusted and r.changes_after in allowed
               for r in reports) and not changed and stamps_ok
    if good:
        message = tr.gettext(N_("All signatures are intact and valid; the document has not "
                                "been changed since it was signed."))
    elif any(not r.intact for r in reports):
        message = tr.gettext(N_("A signature is broken: the document was changed after it "
                                "was signed."))
    elif changed:
        message = tr.gettext(N_("The document was changed after the last signature."))
    elif not stamps_ok and all(r.valid and r.trusted for r in reports):
        message = tr.gettext(N_("The signatures are valid, but a timestamp could not be "
                                "confirmed: its timestamp authority is not trusted here."))
    else:
        message = tr.gettext(N_("The signatures could not be confirmed as valid and trusted."))
    return VerificationReport(is_pdf=True, valid=good, changed_after_signing=changed,
                              signatures=reports, message=message)
