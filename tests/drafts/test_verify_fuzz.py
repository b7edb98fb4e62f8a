"""Damaged and altered PDFs through POST /api/v1/verify: one byte changed at random offsets of a
signed, sealed agreement (seeded, so a failure can be replayed), each answered 200 with a plain
report; every change inside a signed byte range or a signature shows as broken."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from tests.drafts.test_signing import pdf_of, signed_agreement
from tests.harness import Cast, Platform, expect

SEED = 20261123
SPREAD, IN_SIGNATURES = 40, 20  # changes anywhere in the file, and inside signatures' /Contents

# Everything a report may say, message and per signature: never a raw exception's text.
MESSAGES = {
    "All signatures are intact and valid; the document has not been changed since it was "
    "signed.",
    "A signature is broken: the document was changed after it was signed.",
    "The document was changed after the last signature.",
    "The signatures could not be confirmed as valid and trusted.",
    "The PDF is damaged and cannot be read.",
    "The PDF has no signatures.",
}
PROBLEMS = {
    "",
    "This part of the form is damaged and cannot be read.",
    "The signature is damaged and cannot be read.",
    "The signature could not be checked: the document is damaged.",
    "What was changed after this signature could not be checked: the document is damaged.",
    "The signature was changed after it was made.",
}


@dataclass
class Signature:
    field: str
    covered: list[range]  # the bytes it signs
    gap: range  # its /Contents, which it does not sign


def signatures_of(pdf: bytes, fields: list[str]) -> list[Signature]:
    """Each signature's byte ranges, in the file's order, which is the order of signing."""
    ranges = [[int(n) for n in m.groups()]
              for m in re.finditer(rb"/ByteRange \[(\d+) (\d+) (\d+) (\d+)\]", pdf)]
    assert len(ranges) == len(fields)
    return [Signature(field, [range(a, a + la), range(b, b + lb)], range(a + la, b))
            for field, (a, la, b, lb) in zip(fields, ranges, strict=True)]


def test_single_byte_changes_are_reported_plainly_and_as_broken(
    platform: Platform, cast: Cast, tmp_path: Path
) -> None:
    _case, _draft, agreement = signed_agreement(platform, cast)
    pdf = pdf_of(cast.requester, agreement)
    anyone = platform.anonymous
    genuine = expect(anyone.post("/api/v1/verify", files={"file": ("a.pdf", pdf)}), 200)
    assert genuine["valid"] is True
    signatures = signatures_of(pdf, [s["field"] for s in genuine["signatures"]])
    rnd = random.Random(SEED)
    offsets = [rnd.randrange(len(pdf)) for _ in range(SPREAD)]
    for _ in range(IN_SIGNATURES):
        gap = rnd.choice(signatures).gap
        offsets.append(rnd.randrange(gap.start + 1, gap.stop - 1))  # a hex digit
    for offset in offsets:
        changed = bytearray(pdf)
        changed[offset] ^= rnd.randrange(1, 256)
        response = anyone.post("/api/v1/verify", files={"file": ("a.pdf", bytes(changed))})
        where = f"byte {offset}: {pdf[offset:offset + 1]!r} -> {changed[offset:offset + 1]!r}"
        if response.status_code != 200:
            (tmp_path / "failed.pdf").write_bytes(changed)
        assert response.status_code == 200, (where, response.text[:300])
        report = response.json()
        assert report["message"] in MESSAGES, (where, report["message"])
        assert {s["problem"] for s in report["signatures"]} <= PROBLEMS, (where, report)
        # Every byte of the file is signed by the seal or lies inside some signature.
        assert report["valid"] is False, (where, report)
        broken = {s["field"] for s in report["signatures"] if not (s["intact"] and s["valid"])}
        assert not report["readable"] or broken, (where, report)
        for signature in signatures:
            if offset in signature.gap:
                # That signature is the one reported broken, not the whole file unreadable.
                assert signature.field in broken, (where, report)
            elif any(offset in r for r in signature.covered) and report["readable"]:
                assert broken, (where, report)
