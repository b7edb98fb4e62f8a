"""The certificate of completion reads back whole: every signatory's name and address and every
SHA-256 unbroken, inside the box on the last page (what a viewer shows, not clipped)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from documents.render import (
    COMPLETION_BOX,
    CompletionContent,
    CompletionSignature,
    render_completion,
)
from odr.i18n import Catalogues
from odr.models import NeutralityRecord
from odr.services import Services
from tests.drafts.test_signing import frozen_case, pdf_of, sign
from tests.harness import Cast, Platform, expect

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                reason="poppler-utils not installed")

A4_HEIGHT = 842


def text_in_box(pdf: bytes, page: int) -> str:
    """pdftotext of the completion box only (72 dpi: one pixel is one point, from the top)."""
    x1, y1, x2, y2 = COMPLETION_BOX
    return subprocess.run(
        ["pdftotext", "-f", str(page), "-l", str(page), "-r", "72", "-x", str(x1),
         "-y", str(A4_HEIGHT - y2), "-W", str(x2 - x1), "-H", str(y2 - y1), "-", "-"],
        input=pdf, capture_output=True, check=True).stdout.decode()


def test_the_sealed_certificate_of_completion_reads_back_whole(platform: Platform,
                                                               cast: Cast) -> None:
    _case, draft_id = frozen_case(platform, cast)
    addresses = [(cast.party_b, "203.0.113.21"), (cast.requester, "2001:db8::7"),
                 (cast.mediator, "198.51.100.9")]
    for person, address in addresses:
        from_there = platform.login(person.email, address=address)
        expect(sign(from_there, draft_id), 200)
    agreement = expect(cast.requester.client.get(f"/api/v1/drafts/{draft_id}/agreement"), 200)
    assert agreement["complete"] is True
    pdf = pdf_of(cast.requester, agreement)
    pages = int(PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"])
    text = text_in_box(pdf, pages)
    words = " ".join(text.split())
    for person, address in addresses:
        assert person.name in words and person.email in words
        assert address in words
    hashes = {h for row in platform.sql("select sha256_before, sha256_after from "
                                        "agreementsignature where agreement_id = ?",
                                        agreement["id"]) for h in row}
    hashes.add(agreement["text_sha256"])
    assert len(hashes) == 5  # the frozen text, and the file before and after each signature
    lines = {line.strip() for line in text.splitlines()}
    for digest in hashes:
        assert digest in lines, digest  # whole, on a line of its own


def test_many_signatories_still_fit_on_the_one_page() -> None:
    people = [CompletionSignature(
        name=f"Signatory Number{n} Қасымұлы", email=f"person{n}@example.kz",
        signed_at="2026-11-23 10:00:00", ip=f"2001:db8:ffff:ffff:ffff:ffff:ffff:{n:04x}",
        method="password", typed_name=f"Signatory Number{n} Қасымұлы",
        sha256_before=hashlib.sha256(f"b{n}".encode()).hexdigest(),
        sha256_after=hashlib.sha256(f"a{n}".encode()).hexdigest()) for n in range(12)]
    pdf = render_completion(CompletionContent(
        case_number="2026-00001", language="kk", text_sha256="ab" * 32, signatures=people,
        sealed_at="2026-11-23 10:05:00"), Catalogues("kk").get("kk"))
    assert int(PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"]) == 1
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    lines = {line.strip() for line in text.splitlines()}
    words = " ".join(text.split())
    for person in people:
        assert person.name in words and person.ip in words
        assert person.sha256_before in lines and person.sha256_after in lines


def test_the_certificate_prints_the_mediators_time_with_each_side(platform: Platform,
                                                                  cast: Cast) -> None:
    case_id, draft_id = frozen_case(platform, cast)
    moment = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    async def two_sessions(svc: Services) -> None:
        async with svc.maker() as session:
            for joint, side_a, side_b in ((2700, 600, 480), (1200, 600, 600)):
                session.add(NeutralityRecord(case_id=case_id, started_at=moment,
                                             ended_at=moment, joint_seconds=joint,
                                             side_a_seconds=side_a, side_b_seconds=side_b))
            await session.commit()

    platform.run(two_sessions)
    for person in (cast.party_b, cast.requester, cast.mediator):
        expect(sign(person, draft_id), 200)
    agreement = expect(cast.requester.client.get(f"/api/v1/drafts/{draft_id}/agreement"), 200)
    pdf = pdf_of(cast.requester, agreement)
    pages = int(PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"])
    words = " ".join(text_in_box(pdf, pages).split())
    # The draft is in Kazakh: 65 minutes joint, 20 with side A, 18 with side B.
    assert ("Медиатордың сессиялардағы уақыты: бірлескен сессия: 1 сағ 05 мин · А тарапымен: "
            "20 мин · Б тарапымен: 18 мин") in words, words
    # The case page shows each session and the sum to everyone in the case.
    page = cast.party_b.client.get(f"/cases/{case_id}").text
    assert "joint session: 45 min · with side A: 10 min · with side B: 8 min" in page
    assert "joint session: 1 h 05 min · with side A: 20 min · with side B: 18 min" in page
