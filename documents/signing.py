"""Signing the frozen agreement: one PAdES signature per signatory, each an incremental
revision so earlier ones stay valid, then a sealed certificate of completion.

Intent is confirmed by the signatory's password (or a one-time code by e-mail) and their typed
full name. Each revision is kept as its own file, written before the database points at it, so
a crash never leaves the record naming a file that lacks an acknowledged signature.

With a timestamp server every signature carries a timestamp (PAdES B-T), and the seal is
followed by validation data for every signature and a document timestamp over it all (B-LT and
B-LTA). A timestamp server that does not answer refuses a signature without changing anything;
a seal that failed is made again by the next request that reads the agreement.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import content, generic, layout
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.model import VENDOR
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.signers.pdf_signer import TimestampDSSContentSettings
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.dss import collect_validation_info
from pyhanko.stamp import BaseStampStyle, StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.path import ValidationPath
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents import contract
from documents.models import (
    Agreement,
    AgreementFile,
    AgreementRevision,
    AgreementSignature,
    Draft,
    SigningCode,
)
from documents.pki import (
    LocalAuthority,
    TrustRoots,
    is_self_signed,
    kept_key_signer,
    load_certificates,
)
from documents.render import (
    COMPLETION_BOX,
    AgreementContent,
    CompletionContent,
    CompletionSignature,
    render_completion,
    render_pdf,
)
from odr import neutrality
from odr.cases import ACTIVE
from odr.errors import N_, Conflict, Forbidden, Refused
from odr.i18n import Translator
from odr.models import Case, CaseRole, CaseStatus, Participant, User, utcnow
from odr.security import token_hash
from odr.services import Services

# DejaVu, for text drawn by pyHanko itself (bench/signing_bench.py); the completion page is
# drawn by WeasyPrint with the same fonts.
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
# fontTools warns about a table it drops while subsetting DejaVu; nothing is lost that we use.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
log = logging.getLogger(__name__)
SIGNATORY_ROLES = frozenset({CaseRole.party, CaseRole.mediator})


class TimestampUnavailable(Refused):
    """The timestamp server did not answer; nothing was signed, and trying later can work."""

    status_code = 503


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
        self._authority: LocalAuthority | None = None
        self._configured: signers.Signer | None = None
        self._timestamper: timestamps.TimeStamper | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._seal_failed_at: dict[int, float] = {}

    # --- keys --------------------------------------------------------------------------------

    @property
    def uses_configured_certificate(self) -> bool:
        s = self.svc.settings
        return bool(s.signing_cert_file and s.signing_key_file)

    @property
    def authority(self) -> LocalAuthority:
        if self._authority is None:
            self._authority = LocalAuthority.open(
                self.svc.settings.data_dir / "pki",
                self.svc.settings.effective_secret_key.encode())
        return self._authority

    def _signer(self, name: str, email: str | None) -> signers.Signer:
        if not self.uses_configured_certificate:
            return self.authority.signer_for(name, email)
        if self._configured is None:  # loaded once: reading and decrypting the key is slow
            s = self.svc.settings
            loaded = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]
                str(s.signing_key_file), str(s.signing_cert_file),
                ca_chain_files=(str(s.signing_chain_file),) if s.signing_chain_file else None,
                key_passphrase=s.signing_key_password.encode() or None)
            assert isinstance(loaded, signers.SimpleSigner), \
                "the configured signing key could not be loaded"
            self._configured = kept_key_signer(loaded)
        return self._configured

    def trust_roots(self) -> TrustRoots:
        """What verification trusts. With a configured certificate: the root of its chain
        (or the certificate itself when it is self-signed and no chain is given), plus any
        local authority this data folder already has (agreements it signed stay valid), but
        no new local authority is made. Timestamps: only the configured server's roots."""
        s = self.svc.settings
        roots: list[asn1_x509.Certificate] = []
        if self.uses_configured_certificate:
            assert s.signing_cert_file is not None
            chain = (load_certificates(s.signing_chain_file) if s.signing_chain_file
                     else load_certificates(s.signing_cert_file))
            roots += [c for c in chain if is_self_signed(c)]
            if not roots:
                log.warning("No root for the configured signing certificate: set "
                            "ODR_SIGNING_CHAIN_FILE, or its signatures will not verify.")
            roots += LocalAuthority.existing_roots(s.data_dir / "pki")
        else:
            roots += self.authority.trust_roots
        tsa = load_certificates(s.tsa_trust_roots_file) if s.tsa_trust_roots_file else []
        return TrustRoots(signers=roots, timestamps=tsa)

    def _timestamper_or_none(self) -> timestamps.TimeStamper | None:
        """Kept for the process: the first request also fetches a sample token to size the
        signature, which a kept timestamper does not repeat."""
        s = self.svc.settings
        if s.tsa_url and self._timestamper is None:
            if not s.tsa_trust_roots_file:
                log.warning("ODR_TSA_TRUST_ROOTS_FILE is not set: signatures get timestamps, "
                            "but verification will not trust them and the seal adds no "
                            "long-term validation data (PAdES B-LT/LTA).")
            self._timestamper = timestamps.HTTPTimeStamper(
                s.tsa_url, timeout=s.tsa_timeout_seconds)
        return self._timestamper if s.tsa_url else None

    def _archival_context(self) -> ValidationContext | None:
        """For B-LT/LTA: signers' and the timestamp server's roots, the local authority's
        revocation list, and fetching allowed so that a real CA's OCSP/CRL data is collected
        where its certificates point to it. None when the server's roots are not configured:
        without them the server's own certificates cannot be validated, so no B-LT/LTA."""
        roots = self.trust_roots()
        if not self.svc.settings.tsa_url or not roots.timestamps:
            return None
        local = None if self.uses_configured_certificate else self.authority
        return ValidationContext(
            trust_roots=roots.signers + roots.timestamps, allow_fetching=True,
            crls=[local.crl()] if local else [], revocation_mode="soft-fail")

    # --- the agreement file ------------------------------------------------------------------

    async def read(self, agreement: Agreement, *, session: AsyncSession) -> bytes:
        """The current revision's bytes (from the database; an agreement stored before files
        moved there is read from its path under the data folder)."""
        if agreement.file:
            return (self.svc.settings.data_dir / agreement.file).read_bytes()
        data = (await session.exec(select(AgreementFile.data).where(
            AgreementFile.agreement_id == agreement.id,
            AgreementFile.revision == agreement.revision))).one()
        return bytes(data)

    @staticmethod
    def _store(session: AsyncSession, agreement: Agreement, revision: int, data: bytes) -> None:
        """Add a revision's bytes to the transaction that records it (``AgreementFile``)."""
        session.add(AgreementFile(agreement_id=agreement.id or 0, revision=revision, data=data))
        agreement.file = ""

    async def signatories(self, case: Case, agreement: Agreement | None, *,
                          session: AsyncSession) -> list[Signatory]:
        rows = (await session.exec(
            select(Participant, User).join(User, col(User.id) == col(Participant.user_id))
            .where(Participant.case_id == case.id, ACTIVE).order_by(col(Participant.id))
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
            if found.completed_at is None:
                await self.seal_if_due(found, case, session=session)
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
        try:
            async with session.begin_nested():
                session.add(agreement)
        except IntegrityError:
            # Two signatories opened it first at the same moment (PostgreSQL lets both look
            # before either inserts): the other's is committed by now, and it is the one.
            return (await session.exec(select(Agreement).where(
                Agreement.draft_id == draft.id))).one()
        self._store(session, agreement, 0, pdf)
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
            if not await self.svc.hashing.verify_async(user.password_hash, password):
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

    def _lock(self, agreement: Agreement) -> asyncio.Lock:
        return self._locks.setdefault(agreement.id or 0, asyncio.Lock())

    async def sign(self, draft: Draft, case: Case, user: User, *, password: str | None,
                   code: str | None, typed_name: str, ip: str,
                   session: AsyncSession) -> Agreement:
        """Add this signatory's signature; the last one also seals the certificate of completion."""
        agreement = await self.agreement_of(draft, case, session=session)
        async with self._lock(agreement):
            await session.refresh(agreement)
            people = await self.signatories(case, agreement, session=session)
            me = next((s for s in people if s.user.id == user.id), None)
            if me is None:
                raise Forbidden(N_("You are not a signatory of this agreement."))
            if me.signature is not None:
                raise Conflict(N_("You have already signed this agreement."))
            is_contract = contract.is_contract(draft)
            if is_contract:
                await contract.check_signable(draft, case, user, [s.user.id or 0 for s in people],
                                              session=session)
            if not same_name(typed_name, user.name):
                raise Refused(N_("Type your full name exactly as it is in your account: "
                                 "%(name)s."), field="full_name", name=user.name)
            method = await self._confirm(agreement, user, password, code, session=session)
            before = await self.read(agreement, session=session)
            order = sum(1 for s in people if s.signature is not None) + 1
            # /Name, /Reason and /ContactInfo say who signed even when every signature is
            # made with the one configured platform certificate (whose name is the platform's).
            meta = signers.PdfSignatureMetadata(
                field_name=f"Signatory{order}", name=user.name, location=ip,
                reason=f"{user.name} signed the mediation "
                       f"{'contract' if is_contract else 'agreement'} of case {case.number}",
                contact_info=user.email,
                subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256")
            signer = self._signer(user.name, user.email)
            try:
                after = await asyncio.to_thread(self._apply, before, meta, signer, None, None)
            except TimestampRequestError as exc:
                # Raised before anything is written or committed (a spent e-mail code is
                # rolled back with the session), so the signatory can simply try again.
                log.warning("Timestamp server failed; signature refused: %s", exc)
                raise TimestampUnavailable(N_(
                    "The timestamp server is not answering, so the signature cannot be made "
                    "now. Nothing was signed: please try again in a few minutes.")) from exc
            revision = agreement.revision + 1
            self._store(session, agreement, revision, after)
            agreement.revision, agreement.file_sha256 = revision, sha256(after)
            signature = AgreementSignature(
                agreement_id=agreement.id or 0, user_id=user.id or 0, typed_name=typed_name,
                method=method, ip=ip, sha256_before=sha256(before), sha256_after=sha256(after))
            session.add_all([agreement, signature, AgreementRevision(
                agreement_id=agreement.id or 0, revision=revision,
                file_sha256=agreement.file_sha256, kind="signature")])
            if is_contract and me.participant.role == CaseRole.party:
                # Signing the contract is how a party consents to mediation.
                me.participant.consented_at = me.participant.consented_at or utcnow()
                session.add(me.participant)
            await self.svc.cases.record(session, case,
                                        "contract_signed" if is_contract else "signed",
                                        actor=user,
                                        detail=str(agreement.id),
                                        audit_detail={"agreement_id": agreement.id,
                                                      "sha256": agreement.file_sha256,
                                                      "method": method, "ip": ip})
            await session.commit()
            if order == len(people):
                await self._try_seal(agreement, case, session=session)
        return agreement

    def _writer(self, pdf: bytes) -> IncrementalPdfFileWriter:
        """An incremental writer that keeps the file's two producer entries equal (PDF/A).

        pyHanko writes its own name to XMP ``pdf:Producer`` but appends it to the Info
        dictionary's ``/Producer`` only when missing: starting Info from that same name makes
        both read the same after every revision.
        """
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        info_ref = writer.trailer_view.raw_get("/Info")
        if isinstance(info_ref, generic.IndirectObject):
            info = info_ref.get_object()  # type: ignore[no-untyped-call]
            assert isinstance(info, generic.DictionaryObject)
            if info.get("/Producer") != VENDOR:
                info["/Producer"] = generic.TextStringObject(VENDOR)
                writer.mark_update(info_ref)
        return writer

    def _apply(self, pdf: bytes, meta: signers.PdfSignatureMetadata, signer: signers.Signer,
               stamp: BaseStampStyle | None, field_spec: fields.SigFieldSpec | None) -> bytes:
        pdf_signer = signers.PdfSigner(meta, signer=signer,
                                       timestamper=self._timestamper_or_none(),
                                       stamp_style=stamp, new_field_spec=field_spec)
        out = pdf_signer.sign_pdf(self._writer(pdf))
        return bytes(out.getbuffer())

    def _archive(self, pdf: bytes, context: ValidationContext) -> bytes:
        """PAdES B-LT and B-LTA: the certificates (and revocation data where there is any) of
        every signature and its timestamp go into the DSS, then a document timestamp covers
        the whole file, DSS included, in one more revision."""
        timestamper = self._timestamper_or_none()
        assert timestamper is not None

        async def run() -> bytes:
            try:
                paths: list[ValidationPath] = []
                for embedded in PdfFileReader(io.BytesIO(pdf)).embedded_signatures:
                    paths += await collect_validation_info(embedded, context)
                out = io.BytesIO()
                await signers.PdfTimeStamper(timestamper, field_name="DocumentTimestamp"
                                             ).async_timestamp_pdf(
                    self._writer(pdf), "sha256", validation_context=context,
                    validation_paths=paths, output=out,
                    # The DSS goes in the timestamped revision, so the timestamp covers it (no
                    # VRI then: pyHanko keys those by signatures made before the update).
                    dss_settings=TimestampDSSContentSettings(update_before_ts=True,
                                                             include_vri=False))
                return out.getvalue()
            finally:
                # Network sessions opened for fetching, if any.
                await context.aclose()  # type: ignore[no-untyped-call]

        return asyncio.run(run())

    async def seal_if_due(self, agreement: Agreement, case: Case, *,
                          session: AsyncSession) -> None:
        """Seal an agreement that every signatory has signed but that has no seal yet: the
        seal after the last signature failed (the timestamp server was down, say). Called
        whenever the agreement is read, and by :meth:`seal_pending`."""
        async with self._lock(agreement):
            await session.refresh(agreement)
            if agreement.completed_at is None:
                await self._try_seal(agreement, case, session=session)

    async def seal_pending(self) -> int:
        """Seal every agreement left signed but unsealed (for start-up); returns how many."""
        sealed = 0
        async with self.svc.maker() as session:
            pending = (await session.exec(select(Agreement).where(
                col(Agreement.completed_at).is_(None)))).all()
            for agreement in pending:
                case = await session.get(Case, agreement.case_id)
                if case is not None:
                    await self.seal_if_due(agreement, case, session=session)
                    sealed += agreement.completed_at is not None
        return sealed

    # A failed seal is tried again at most this often, so that pages reading the agreement do
    # not each wait for a timestamp server that is down.
    seal_retry_seconds = 30.0

    async def _try_seal(self, agreement: Agreement, case: Case, *,
                        session: AsyncSession) -> None:
        """Seal if every signatory has signed."""
        people = await self.signatories(case, agreement, session=session)
        if not people or any(p.signature is None for p in people):
            return
        failed_at = self._seal_failed_at.get(agreement.id or 0)
        if failed_at is not None and time.monotonic() - failed_at < self.seal_retry_seconds:
            return
        await self._seal(agreement, case, session=session)

    async def _seal(self, agreement: Agreement, case: Case, *, session: AsyncSession) -> None:
        """Show the audit trail on the completion page as the seal's own signature appearance,
        then (with a timestamp server) add validation data and a document timestamp.

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
        records = await neutrality.of_case(case.id or 0, session=session)
        trail = CompletionContent(
            case_number=case.number, language=draft.language,
            text_sha256=agreement.text_sha256, sealed_at=_utc(utcnow()),
            signatures=[CompletionSignature(
                name=user.name, email=user.email, signed_at=_utc(sig.signed_at), ip=sig.ip,
                method=sig.method, typed_name=sig.typed_name,
                sha256_before=sig.sha256_before, sha256_after=sig.sha256_after)
                for sig, user in rows],
            neutrality=neutrality.describe(neutrality.totals(records), tr) if records else "")
        before = await self.read(agreement, session=session)
        try:
            after = await asyncio.to_thread(self._sealed, before, trail, tr)
        except Exception:
            # The signatures are already recorded and the seal only adds to them, so a
            # failure (a timestamp server that is down, most likely) is left for a retry.
            # Nothing has been changed in the session yet: it stays usable for the caller.
            self._seal_failed_at[agreement.id or 0] = time.monotonic()
            log.exception("Sealing agreement %s failed; it will be tried again", agreement.id)
            return
        self._seal_failed_at.pop(agreement.id or 0, None)
        revision = agreement.revision + 1
        self._store(session, agreement, revision, after)
        agreement.revision, agreement.file_sha256 = revision, sha256(after)
        agreement.completed_at = utcnow()
        session.add_all([agreement, AgreementRevision(
            agreement_id=agreement.id or 0, revision=revision,
            file_sha256=agreement.file_sha256, kind="seal")])
        if contract.is_contract(draft):
            await contract.concluded(draft, case, svc=self.svc, session=session)
            await session.commit()
            return
        await self.svc.cases.record(session, case, "sealed", detail=str(agreement.id),
                                    actor=None, audit_detail={"sha256": agreement.file_sha256})
        if case.status == CaseStatus.agreement_drafted:
            await self.svc.cases.transition(case, CaseStatus.signed, actor=None,
                                            session=session)
        await session.commit()

    def _sealed(self, pdf: bytes, trail: CompletionContent, tr: Translator) -> bytes:
        """The seal (and its archival revision) added to ``pdf``; runs off the event loop."""
        stamp = StaticStampStyle(
            background=_PdfPage(render_completion(trail, tr)), border_width=0,
            background_opacity=1.0, background_layout=layout.SimpleBoxLayoutRule(
                x_align=layout.AxisAlignment.ALIGN_MIN, y_align=layout.AxisAlignment.ALIGN_MAX,
                margins=layout.Margins()))
        field = fields.SigFieldSpec(sig_field_name="CertificateOfCompletion",
                                    on_page=_page_count(pdf) - 1, box=COMPLETION_BOX)
        meta = signers.PdfSignatureMetadata(
            field_name="CertificateOfCompletion", name="ODR platform",
            reason="Certificate of completion", subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256")
        sealed = self._apply(pdf, meta, self._signer("ODR platform seal", None), stamp, field)
        context = self._archival_context()
        return self._archive(sealed, context) if context is not None else sealed


class _PdfPage(content.ImportedPdfPage):
    """pyHanko's imported page, read from bytes in memory instead of a file."""

    def __init__(self, pdf: bytes) -> None:
        super().__init__(file_name="")  # type: ignore[no-untyped-call]
        self.pdf = pdf

    def render(self) -> bytes:
        xobject = self._ensure_writer.import_page_as_xobject(
            PdfFileReader(io.BytesIO(self.pdf)), page_ix=0)
        name = "/Import0"
        self.resources.xobject[name] = xobject
        x1, y1, x2, y2 = xobject.get_object()["/BBox"]
        self.box = layout.BoxConstraints(width=abs(x1 - x2), height=abs(y1 - y2))
        return name.encode() + b" Do"


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _page_count(pdf: bytes) -> int:
    reader = PdfFileReader(io.BytesIO(pdf))
    return int(reader.root["/Pages"]["/Count"])


async def signatures_of(agreement: Agreement, *, session: AsyncSession
                        ) -> Sequence[AgreementSignature]:
    return (await session.exec(select(AgreementSignature).where(
        AgreementSignature.agreement_id == agreement.id).order_by(
        col(AgreementSignature.id)))).all()

