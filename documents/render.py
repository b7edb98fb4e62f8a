"""The frozen agreement as a PDF/A-3b, with DejaVu fonts (all Kazakh letters), made the same
way every time for the same frozen text (fixed dates and identifier, no clock in the file);
and the certificate of completion drawn on its last page when the platform seals it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from weasyprint import HTML

from odr.errors import N_
from odr.i18n import Translator
from odr.templating import make_environment

# The completion page's free area (PDF points, from the bottom-left of an A4 page): the seal's
# visible signature draws the audit trail there.
COMPLETION_BOX = (60, 90, 535, 640)
# Type sizes tried for the certificate of completion, largest first, until it fits the box.
COMPLETION_FONT_SIZES = (9.0, 8.0, 7.0, 6.0)


@dataclass(frozen=True)
class AgreementContent:
    case_number: str
    title: str
    language: str
    html: str
    sha256: str
    frozen_at: str  # ISO time, UTC
    parties: list[str]
    mediators: list[str]


def render_pdf(content: AgreementContent, tr: Translator) -> bytes:
    labels = {
        "case": tr.gettext("Case"),
        "parties": tr.gettext("Parties"),
        "mediator": tr.gettext("Mediator"),
        "frozen": tr.gettext("Text frozen (UTC)"),
        "hash": tr.gettext("SHA-256 of the frozen text"),
        "completion": tr.gettext("Certificate of completion"),
        "completion_note": tr.gettext("Who signed, when, from where and what they confirmed: "
                                      "filled in and sealed by the platform after the last "
                                      "signature."),
    }
    html = make_environment().get_template("agreement_pdf.html").render(
        lang=content.language, title=content.title, case_number=content.case_number,
        body=content.html, sha256=content.sha256, created=content.frozen_at,
        frozen_at=content.frozen_at.replace("T", " ")[:19], parties=content.parties,
        mediators=content.mediators, labels=labels,
    )
    identifier = hashlib.sha256(f"{content.case_number}:{content.sha256}".encode()).digest()[:16]
    pdf: bytes = HTML(string=html).write_pdf(pdf_variant="pdf/a-3b", pdf_identifier=identifier)
    return pdf


@dataclass(frozen=True)
class CompletionSignature:
    name: str
    email: str
    signed_at: str  # UTC, "YYYY-MM-DD HH:MM:SS"
    ip: str
    method: str  # "password" or "email_code"
    typed_name: str
    sha256_before: str
    sha256_after: str


@dataclass(frozen=True)
class CompletionContent:
    case_number: str
    language: str
    text_sha256: str
    signatures: list[CompletionSignature]
    sealed_at: str  # UTC, "YYYY-MM-DD HH:MM:SS"
    # The mediator's time in all the case's sessions (odr.neutrality), already in words.
    neutrality: str = ""


def render_completion(content: CompletionContent, tr: Translator) -> bytes:
    """The audit trail as a one-page PDF the size of ``COMPLETION_BOX`` (taller only when many
    signatories would not fit even in small type): the seal shows this page as its appearance.
    WeasyPrint lays it out (wrapping, the same DejaVu fonts as the agreement), so it reads
    right in every viewer, where pyHanko's own text stamp was clipped and spaced out; a hash
    is never broken across lines."""
    how = {"password": tr.gettext(N_("password")),
           "email_code": tr.gettext(N_("one-time code by e-mail"))}
    signatures = [{
        "name": s.name, "email": s.email, "before": s.sha256_before, "after": s.sha256_after,
        "line": tr.gettext(N_("Signed %(at)s UTC from %(ip)s; confirmed by %(how)s; typed "
                              "name: %(typed)s"), at=s.signed_at, ip=s.ip,
                           how=how.get(s.method, s.method), typed=s.typed_name),
    } for s in content.signatures]
    labels = {
        "case": tr.gettext(N_("Case %(number)s. SHA-256 of the frozen text:"),
                           number=content.case_number),
        "before": tr.gettext(N_("Document SHA-256 before signing:")),
        "after": tr.gettext(N_("Document SHA-256 after signing:")),
        "sealed": tr.gettext(N_("Sealed by the platform: %(at)s UTC"), at=content.sealed_at),
        "neutrality": tr.gettext(N_("The mediator's time in the sessions: %(line)s"),
                                 line=content.neutrality) if content.neutrality else "",
    }
    x1, y1, x2, y2 = COMPLETION_BOX
    template = make_environment().get_template("completion_pdf.html")
    # Smaller type until the trail fits on its one page; past the smallest, a taller page,
    # which the seal's appearance then shrinks into the box (nothing is ever cut off).
    attempts = [(size, 1.0) for size in COMPLETION_FONT_SIZES]
    attempts += [(COMPLETION_FONT_SIZES[-1], 1.25 ** n) for n in range(1, 13)]
    for size, stretch in attempts:
        html = template.render(lang=content.language, width=x2 - x1,
                               height=round((y2 - y1) * stretch), font_size=size,
                               text_sha256=content.text_sha256, signatures=signatures,
                               labels=labels)
        document = HTML(string=html).render()
        if len(document.pages) == 1:
            break
    pdf: bytes = document.copy(document.pages[:1]).write_pdf()
    return pdf
