"""Time to render, sign three times, seal and verify a 3-page agreement (median of runs).

Run: .venv/bin/python bench/signing_bench.py [runs]
It uses the platform's own rendering, local authority, signing and verification code on a
temporary data folder; no server is needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers

from documents.pki import TrustRoots
from documents.render import (
    AgreementContent,
    CompletionContent,
    CompletionSignature,
    render_pdf,
)
from documents.signing import AgreementSigning
from documents.verify import verify_pdf
from odr.i18n import Catalogues
from odr.services import Services
from odr.settings import Settings

CLAUSE = ("<li><p>Сторона А возвращает стороне Б сумму 1 200 000 тенге равными частями до "
          "25 числа каждого месяца; Тарап А Тарап Б-ға 1 200 000 теңгені ай сайын "
          "25-күніне дейін тең бөліктермен қайтарады.</p></li>")


def content() -> AgreementContent:
    body = "<h1>Медиативное соглашение</h1><ol>" + CLAUSE * 24 + "</ol>"
    return AgreementContent("2026-00001", "Медиативное соглашение", "ru", body, "ab" * 32,
                            "2026-11-23T10:00:00Z", ["Ерлан Қасымов", "Ольга Петрова"],
                            ["Айгүл Нұрланова"])


SIGNATORIES = [("Ерлан Қасымов", "erlan@example.kz"), ("Ольга Петрова", "olga@example.kz"),
               ("Айгүл Нұрланова", "aigul@example.kz")]


def run_once(signing: AgreementSigning, trust: TrustRoots, tr: Any) -> dict[str, float]:
    """The platform's own steps: render, each signatory's signature (as ``sign`` applies it),
    the seal with the completion page (as ``_seal`` makes it), then verification."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    pdf = render_pdf(content(), tr)
    times["render"] = time.perf_counter() - t
    pages = int(PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"])
    trail = []
    for n, (name, email) in enumerate(SIGNATORIES, start=1):
        t = time.perf_counter()
        meta = signers.PdfSignatureMetadata(field_name=f"Signatory{n}", name=name,
                                            subfilter=fields.SigSeedSubFilter.PADES)
        before = hashlib.sha256(pdf).hexdigest()
        pdf = signing._apply(pdf, meta, signing._signer(name, email), None, None)
        times[f"sign {n}"] = time.perf_counter() - t
        trail.append(CompletionSignature(name, email, "2026-11-23 10:00:00", "10.0.0.7",
                                         "password", name, before,
                                         hashlib.sha256(pdf).hexdigest()))
    t = time.perf_counter()
    pdf = signing._sealed(pdf, CompletionContent("2026-00001", "ru", "ab" * 32, trail,
                                                 "2026-11-23 10:05:00"), tr)
    times["seal"] = time.perf_counter() - t
    t = time.perf_counter()
    report = verify_pdf(pdf, trust, tr)
    times["verify"] = time.perf_counter() - t
    assert report.valid, report.message
    times["pages"] = pages
    return times


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    folder = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=folder, secret_key="bench")
    services = Services.create(settings)
    signing = AgreementSigning(services)
    trust = signing.trust_roots()
    tr = Catalogues("ru").get("ru")
    run_once(signing, trust, tr)  # warm-up: fonts, imports, the process's signing key
    results = [run_once(signing, trust, tr) for _ in range(runs)]
    asyncio.run(services.close())
    keys = ["render", "sign 1", "sign 2", "sign 3", "seal", "verify"]
    medians = {k: statistics.median(r[k] for r in results) for k in keys}
    total = sum(medians[k] for k in keys[:-1])
    print(f"agreement of {int(results[0]['pages'])} pages, median of {runs} runs (ms):")
    for k in keys:
        print(f"  {k:<8} {medians[k] * 1000:8.1f}")
    print(f"  render + 3 signatures + seal: {total * 1000:.1f} ms (target < 1000)")
    print(f"  verify: {medians['verify'] * 1000:.1f} ms (target < 150)")


if __name__ == "__main__":
    main()
