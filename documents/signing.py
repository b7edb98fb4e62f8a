"""Signing the frozen agreement: one PAdES signature per signatory, each an incremental
revision so earlier ones stay valid, then a sealed certificate of completion.

Intent is confirmed by the signatory's password (or a one-time code by e-mail) and their typed
full name. Each revision is kept as its own file, written before the database points at it, so
a crash never leaves the record naming a file that lacks an acknowledged signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers, timestamps
from pyhanko.stamp import TextStampStyle
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.models import (
    Agreement,
    AgreementRevision,
    AgreementSignature,
    Draft,
    SigningCode,
)
from documents.pki import LocalAuthority
from documents.render import COMPLETION_BOX, AgreementContent, render_pdf
from odr.errors import N_, Conflict, Forbidden, Refused
from odr.i18n import Translator
from odr.models import Case, CaseRole, CaseStatus, Participant, User, utcnow
from odr.security import token_hash
from odr.services import Services

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
# fontTools warns about a table it drops while subsetting DejaVu; nothing is lost that we use.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
SIGNATORY_ROLES = frozenset({CaseRole.party, CaseRole.mediator})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def same_name(typed: str, name: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(s.split()).casefold()

    return norm(typed) == norm(name)


@dataclass
class Signatory:
    user: User
    participant: Participant
    signature: AgreementSignature | None


class AgreementSigning:
    def __init__(self, services: Services) -> None:
        self.svc = services
        self.files = services.settings.data_dir / "files" / "agreements"
        self._authority: LocalAuthority | None = None
        self._locks: dict[int, asyncio.Lock] = {}

    # --- keys --------------------------------------------------------------------------------

    @property
    def authority(self) -> LocalAuthority:
        if self._authority is None:
            self._authority = LocalAuthority.open(
                self.svc.settings.data_dir / "pki",
                self.svc.settings.effective_secret_key.encode())
        return self._authority

    def _signer(self, name: str, email: str | None) -> signers.Signer:
        s = self.svc.settings
        if s.signing_cert_file and s.signing_key_file:
            loaded: signers.Signer | None = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]
                str(s.signing_key_file), str(s.signing_cert_file),
                key_passphrase=s.signing_key_password.encode() or None)
            assert loaded is not None, "the configured signing key could not be loaded"
            return loaded
        return self.authority.signer_for(name, email)

    def _timestamper(self) -> timestamps.TimeStamper | None:
        url = self.svc.settings.tsa_url
        return timestamps.HTTPTimeStamper(url) if url else None

    # --- the agreement file ------------------------------------------------------------------

    def path(self, agreement_id: int, revision: int) -> Path:
        return self.files / str(agreement_id) / f"revision-{revision}.pdf"

    def read(self, agreement: Agreement) -> bytes:
        return (self.files.parent.parent / agreement.file).read_bytes()

    def _write(self, agreement_id: int, revision: int, data: bytes) -> str:
        """Write a revision durably (temporary file, fsync, rename) and return its stored path."""
        target = self.path(agreement_id, revision)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        with temporary.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        temporary.replace(target)
        return str(target.relative_to(self.files.parent.parent))

    async def signatories(self, case: Case, agreement: Agreement | None, *,
                          session: AsyncSession) -> list[Signatory]:
        rows = (await session.exec(
            select(Participant, User).join(User, col(User.id) == col(Participant.user_id))
            .where(Participant.case_id == case.id).order_by(col(Participant.id))
        )).all()
        signed = {}
        if agreement is not None:
            signed = {s.user_id: s for s in (await session.exec(
                select(AgreementSignature).where(
                    AgreementSignature.agreement_id == agreement.id))).all()}
        return [Signatory(u, p, signed.get(u.id or 0)) for p, u in rows
                if p.role in SIGNATORY_ROLES]

    async def agreement_of(self, draft: Draft, case: Case, *,
                           session: AsyncSession) -> Agreement:
        """The agreement of a frozen draft, rendered on first use."""
        if draft.frozen_at is None or draft.frozen_sha256 is None:
            raise Conflict(N_("Only a frozen draft can be signed."))
        found = (await session.exec(select(Agreement).where(
            Agreement.draft_id == draft.id))).first()
        if found is not None:
            return found
        people = await self.signatories(case, None, session=session)
        content = AgreementContent(
            case_number=case.number, title=draft.title, language=draft.language,
            html=draft.frozen_html or "", sha256=draft.frozen_sha256,
            frozen_at=draft.frozen_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            parties=[s.user.name for s in people if s.participant.role == CaseRole.party],
            mediators=[s.user.name for s in people
                       if s.participant.role == CaseRole.mediator],
        )
        tr = self.svc.catalogues.get(draft.language)
        pdf = await asyncio.to_thread(render_pdf, content, tr)
        agreement = Agreement(draft_id=draft.id or 0, case_id=case.id or 0,
                              text_sha256=draft.frozen_sha256, revision=0, file="",
                              file_sha256=sha256(pdf))
        session.add(agreement)
        await session.flush()
        agreement.file = self._write(agreement.id or 0, 0, pdf)
        session.add(AgreementRevision(agreement_id=agreement.id or 0, revision=0,
                                      file_sha256=agreement.file_sha256, kind="rendered"))
        await session.commit()
        return agreement

    # --- intent ------------------------------------------------------------------------------

    async def send_code(self, agreement: Agreement, user: User, tr: Translator, *,
                        session: AsyncSession) -> None:
        """E-mail a one-time code, for a signatory who has no password."""
        code = f"{secrets.randbelow(10**6):06d}"
        session.add(SigningCode(agreement_id=agreement.id or 0, user_id=user.id or 0,
                                code_hash=token_hash(f"{agreement.id}:{code}"),
                                expires_at=utcnow() + timedelta(minutes=15)))
        self.svc.mailer.queue(
            session, user.email, tr.gettext("Your code to sign the agreement"),
            tr.gettext("Your one-time code to sign the agreement is %(code)s. It is valid for "
                       "15 minutes. If you did not ask for it, ignore this message.", code=code))
        await session.commit()

    async def _confirm(self, agreement: Agreement, user: User, password: str | None,
                       code: str | None, *, session: AsyncSession) -> str:
        if password:
            if not self.svc.hashing.verify(user.password_hash, password):
                raise Forbidden(N_("The password is not right."), field="password")
            return "password"
        if code:
            row = (await session.exec(select(SigningCode).where(
                SigningCode.agreement_id == agreement.id, SigningCode.user_id == user.id,
                SigningCode.code_hash == token_hash(f"{agreement.id}:{code.strip()}"),
                col(SigningCode.used_at).is_(None)))).first()
            if row is None or row.expires_at <= utcnow():
                raise Forbidden(N_("The code is not right or has expired."), field="code")
            row.used_at = utcnow()
            session.add(row)
            return "email_code"
        raise Refused(N_("Confirm with your password or a code sent by e-mail."),
                      field="password")

    # --- signing -----------------------------------------------------------------------------

    async def sign(self, draft: Draft, case: Case, user: User, *, password: str | None,
                   code: str | None, typed_name: str, ip: str,
                   session: AsyncSession) -> Agreement:
        """Add this signatory's signature; the last one also seals the certificate of completion."""
        agreement = await self.agreement_of(draft, case, session=session)
        lock = self._locks.setdefault(agreement.id or 0, asyncio.Lock())
        async with lock:
            await session.refresh(agreement)
            people = await self.signatories(case, agreement, session=session)
            me = next((s for s in people if s.user.id == user.id), None)
            if me is None:
                raise Forbidden(N_("You are not a signatory of this agreement."))
            if me.signature is not None:
                raise Conflict(N_("You have already signed this agreement."))
            if not same_name(typed_name, user.name):
                raise Refused(N_("Type your full name exactly as it is in your account: "
                                 "%(name)s."), field="full_name", name=user.name)
            method = await self._confirm(agreement, user, password, code, session=session)
            before = self.read(agreement)
            order = sum(1 for s in people if s.signature is not None) + 1
            meta = signers.PdfSignatureMetadata(
                field_name=f"Signatory{order}", name=user.name, location=ip,
                reason=f"Signed the mediation agreement of case {case.number}",
                subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256")
            signer = self._signer(user.name, user.email)
            after = await asyncio.to_thread(self._apply, before, meta, signer, None, None)
            revision = agreement.revision + 1
            agreement.file = self._write(agreement.id or 0, revision, after)
            agreement.revision, agreement.file_sha256 = revision, sha256(after)
            signature = AgreementSignature(
                agreement_id=agreement.id or 0, user_id=user.id or 0, typed_name=typed_name,
                method=method, ip=ip, sha256_before=sha256(before), sha256_after=sha256(after))
            session.add_all([agreement, signature, AgreementRevision(
                agreement_id=agreement.id or 0, revision=revision,
                file_sha256=agreement.file_sha256, kind="signature")])
            await self.svc.cases.record(session, case, "signed", actor=user,
                                        detail=str(agreement.id),
                                        audit_detail={"agreement_id": agreement.id,
                                                      "sha256": agreement.file_sha256,
                                                      "method": method, "ip": ip})
            await session.commit()
            if order == len(people):
                await self._seal(agreement, case, session=session)
        return agreement

    def _apply(self, pdf: bytes, meta: signers.PdfSignatureMetadata, signer: signers.Signer,
               stamp: TextStampStyle | None, field_spec: fields.SigFieldSpec | None) -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=self._timestamper(),
                                       stamp_style=stamp, new_field_spec=field_spec)
        out = pdf_signer.sign_pdf(writer)
        return bytes(out.getbuffer())

    async def _seal(self, agreement: Agreement, case: Case, *, session: AsyncSession) -> None:
        """Draw the audit trail on the completion page as the seal's own signature appearance.

        A visible signature is an allowed change after earlier signatures (a new page would not
        be), so every earlier signature stays valid and covered.
        """
        rows = (await session.exec(
            select(AgreementSignature, User).join(User, col(User.id) == col(
                AgreementSignature.user_id))
            .where(AgreementSignature.agreement_id == agreement.id)
            .order_by(col(AgreementSignature.id)))).all()
        draft = await session.get(Draft, agreement.draft_id)
        assert draft is not None
        tr = self.svc.catalogues.get(draft.language)
        lines = [tr.gettext("Case %(number)s. SHA-256 of the frozen text:", number=case.number),
                 agreement.text_sha256, ""]
        for n, (sig, user) in enumerate(rows, start=1):
            how = (tr.gettext("password") if sig.method == "password"
                   else tr.gettext("one-time code by e-mail"))
            lines += [
                f"{n}. {user.name} <{user.email}>",
                tr.gettext("Signed %(at)s UTC from %(ip)s; confirmed by %(how)s; typed name: "
                           "%(typed)s", at=sig.signed_at.strftime("%Y-%m-%d %H:%M:%S"),
                           ip=sig.ip, how=how, typed=sig.typed_name),
                tr.gettext("Document SHA-256 before: %(before)s", before=sig.sha256_before),
                tr.gettext("Document SHA-256 after: %(after)s", after=sig.sha256_after),
                "",
            ]
        lines.append(tr.gettext("Sealed by the platform: %(at)s UTC",
                                at=utcnow().strftime("%Y-%m-%d %H:%M:%S")))
        text = "\n".join(_wrap(line, 95) for line in lines).replace("%", "%%")
        stamp = TextStampStyle(
            stamp_text=text, border_width=0, background=None,
            text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(FONT), font_size=7,
                                        leading=9))
        before = self.read(agreement)
        pages = _page_count(before)
        field = fields.SigFieldSpec(sig_field_name="CertificateOfCompletion",
                                    on_page=pages - 1, box=COMPLETION_BOX)
        meta = signers.PdfSignatureMetadata(
            field_name="CertificateOfCompletion", name="ODR platform",
            reason="Certificate of completion", subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256")
        signer = self._signer("ODR platform seal", None)
        after = await asyncio.to_thread(self._apply, before, meta, signer, stamp, field)
        revision = agreement.revision + 1
        agreement.file = self._write(agreement.id or 0, revision, after)
        agreement.revision, agreement.file_sha256 = revision, sha256(after)
        agreement.completed_at = utcnow()
        session.add_all([agreement, AgreementRevision(
            agreement_id=agreement.id or 0, revision=revision,
            file_sha256=agreement.file_sha256, kind="seal")])
        await self.svc.cases.record(session, case, "sealed", detail=str(agreement.id),
                                    actor=None, audit_detail={"sha256": agreement.file_sha256})
        if case.status == CaseStatus.agreement_drafted:
            await self.svc.cases.transition(case, CaseStatus.signed, actor=None,
                                            session=session)
        await session.commit()


def _wrap(line: str, width: int) -> str:
    out: list[str] = []
    while len(line) > width:
        cut = line.rfind(" ", 0, width)
        cut = cut if cut > width // 2 else width
        out.append(line[:cut])
        line = line[cut:].lstrip()
    out.append(line)
    return "\n".join(out)


def _page_count(pdf: bytes) -> int:
    reader = PdfFileReader(io.BytesIO(pdf))
    return int(reader.root["/Pages"]["/Count"])


async def signatures_of(agreement: Agreement, *, session: AsyncSession
                        ) -> Sequence[AgreementSignature]:
    return (await session.exec(select(AgreementSignature).where(
        AgreementSignature.agreement_id == agreement.id).order_by(
        col(AgreementSignature.id)))).all()

