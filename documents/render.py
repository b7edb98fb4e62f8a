"""The frozen agreement as a PDF/A-3b, with DejaVu fonts (all Kazakh letters), made the same
way every time for the same frozen text (fixed dates and identifier, no clock in the file)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from weasyprint import HTML

from odr.i18n import Translator
from odr.templating import make_environment

# The completion page's free area (PDF points, from the bottom-left of an A4 page): the seal's
# visible signature draws the audit trail there.
COMPLETION_BOX = (60, 90, 535, 640)


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
