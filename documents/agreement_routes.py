"""The signed agreement over HTTP: signing, the PDF, verification, filing and the court inbox."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Annotated

from asn1crypto import x509 as asn1_x509
from fastapi import APIRouter, File, Request, Response, UploadFile, status
from fastapi.responses import RedirectResponse
from pyhanko.keys import load_cert_from_pemder
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.models import Agreement, AgreementRevision, CourtWebhook, Draft, Filing
from documents.runtime import Documents, DocumentsRuntime
from documents.schemas import (
    AgreementPublic,
    FilingCreate,
    FilingDecision,
    FilingPublic,
    SignatoryPublic,
    SignRequest,
    WebhookIn,
    WebhookPublic,
)
from documents.service import load_draft_access
from documents.verify import AgreementMatch, VerificationReport, verify_pdf
from odr import access, cases
from odr.access import AgreementAction, DraftAction, Subject
from odr.deps import (
    Administrator,
    CurrentUser,
    OptionalUser,
    PathId,
    ServicesDep,
    SessionDep,
    Tr,
    client_ip,
)
from odr.errors import N_, Conflict, NotFound, Refused
from odr.forms import FormInvalid, parse, read_form, refusal_as_form_error
from odr.i18n import Translator
from odr.models import Case, Court, User
from odr.security import new_token
from odr.services import Services
from odr.templating import Pages

router = APIRouter()


async def agreement_public(docs: DocumentsRuntime, agreement: Agreement, case: Case, *,
                           session: AsyncSession) -> AgreementPublic:
    people = await docs.signing.signatories(case, agreement, session=session)
    return AgreementPublic(
        id=agreement.id or 0, draft_id=agreement.draft_id, case_id=agreement.case_id,
        revision=agreement.revision, text_sha256=agreement.text_sha256,
        file_sha256=agreement.file_sha256, complete=agreement.completed_at is not None,
        pdf_url=f"/api/v1/agreements/{agreement.id}.pdf",
        signatories=[SignatoryPublic(user_id=s.user.id or 0, name=s.user.name,
                                     role=s.participant.role.value,
                                     signed_at=s.signature.signed_at if s.signature else None)
                     for s in people],
    )


async def _draft_case(draft_id: int, user: User | None, session: AsyncSession,
                      action: AgreementAction) -> tuple[Draft, Case, User]:
    da = await load_draft_access(draft_id, user, DraftAction.view_draft, session)
    access.check_agreement(action, da.subject, da.case)
    return da.draft, da.case, da.user


# --- signing ------------------------------------------------------------------------------------

@router.get("/api/v1/drafts/{draft_id}/agreement", tags=["agreement"])
async def get_agreement(draft_id: PathId, user: OptionalUser, session: SessionDep,
                        docs: Documents) -> AgreementPublic:
    """The agreement of a frozen draft: its PDF, revision and who has signed."""
    draft, case, _user = await _draft_case(draft_id, user, session,
                                           AgreementAction.view_agreement)
    agreement = await docs.signing.agreement_of(draft, case, session=session)
    return await agreement_public(docs, agreement, case, session=session)


@router.post("/api/v1/drafts/{draft_id}/sign", tags=["agreement"])
async def sign(draft_id: PathId, data: SignRequest, request: Request, user: OptionalUser,
               session: SessionDep, docs: Documents) -> AgreementPublic:
    """Sign the frozen agreement, confirming with one's password (or e-mailed code) and name."""
    draft, case, me = await _draft_case(draft_id, user, session,
                                        AgreementAction.sign_agreement)
    agreement = await docs.signing.sign(draft, case, me, password=data.password, code=data.code,
                                        typed_name=data.full_name, ip=client_ip(request),
                                        session=session)
    return await agreement_public(docs, agreement, case, session=session)


@router.post("/api/v1/drafts/{draft_id}/sign/code", status_code=status.HTTP_204_NO_CONTENT,
             tags=["agreement"])
async def send_signing_code(draft_id: PathId, user: OptionalUser, session: SessionDep,
                            docs: Documents, svc: ServicesDep) -> None:
    """E-mail a one-time code to confirm the signature (for a signatory without a password)."""
    draft, case, me = await _draft_case(draft_id, user, session,
                                        AgreementAction.sign_agreement)
    agreement = await docs.signing.agreement_of(draft, case, session=session)
    await docs.signing.send_code(agreement, me, svc.catalogues.get(me.language or draft.language),
                                 session=session)
    await svc.mailer.deliver_pending()


@router.get("/api/v1/agreements/{agreement_id}.pdf", tags=["agreement"])
async def agreement_pdf(agreement_id: PathId, user: OptionalUser, session: SessionDep,
                        docs: Documents) -> Response:
    """The agreement as it is now (all signatures so far, and the seal once complete)."""
    agreement = await session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFound(N_("No such agreement."))
    case = await cases.get_case(agreement.case_id, session=session)
    if not await _clerk_of_a_filing(user, agreement, session):
        participant = await cases.participant_of(case.id or 0, user.id if user else None,
                                                 session=session)
        access.check_agreement(AgreementAction.view_agreement, Subject(user, participant), case)
    return Response(docs.signing.read(agreement), media_type="application/pdf", headers={
        "content-disposition": f'inline; filename="agreement-{case.number}.pdf"'})


async def _clerk_of_a_filing(user: User | None, agreement: Agreement,
                             session: AsyncSession) -> bool:
    """A court's clerk reads the agreements filed with their court."""
    if user is None or user.court_id is None:
        return False
    filing = (await session.exec(select(Filing).where(
        Filing.agreement_id == agreement.id, Filing.court_id == user.court_id))).first()
    if filing is None:
        return False
    access.check_court(user, filing.court_id)
    return True


# --- verification -------------------------------------------------------------------------------

def trust_roots(svc: Services, docs: DocumentsRuntime) -> list[asn1_x509.Certificate]:
    roots = [docs.signing.authority.trust_root]
    if svc.settings.signing_cert_file:
        roots.append(load_cert_from_pemder(  # type: ignore[no-untyped-call]
            str(svc.settings.signing_cert_file)))
    return roots


async def verify_upload(upload: UploadFile, svc: Services, docs: DocumentsRuntime,
                        tr: Translator, session: AsyncSession) -> VerificationReport:
    limit = svc.settings.verify_max_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise Refused(N_("The file is too large (at most %(mb)d MB)."), mb=limit // 1_000_000)
    # pyHanko validates on its own event loop: run it off ours.
    report = await asyncio.to_thread(verify_pdf, data, trust_roots(svc, docs), tr)
    digest = hashlib.sha256(data).hexdigest()
    revision = (await session.exec(select(AgreementRevision).where(
        AgreementRevision.file_sha256 == digest))).first()
    if revision is not None:
        agreement = await session.get(Agreement, revision.agreement_id)
        case = await session.get(Case, agreement.case_id) if agreement else None
        if agreement is not None and case is not None:
            report.match = AgreementMatch(
                agreement_id=agreement.id or 0, case_number=case.number,
                revision=revision.revision, complete=revision.kind == "seal",
                latest=agreement.file_sha256 == digest)
    return report


@router.post("/api/v1/verify", tags=["agreement"])
async def verify(file: Annotated[UploadFile, File()], svc: ServicesDep, docs: Documents,
                 tr: Tr, session: SessionDep) -> VerificationReport:
    """Upload any PDF: are its signatures intact and valid, who signed when, was it changed
    after signing, and is it an agreement in the platform's records."""
    return await verify_upload(file, svc, docs, tr, session)


@router.get("/verify", include_in_schema=False)
async def verify_page(request: Request, user: OptionalUser, tr: Tr) -> Response:
    pages: Pages = request.app.state.pages
    return pages.render(request, "verify.html", tr, user, report=None)


@router.post("/verify", include_in_schema=False)
async def verify_form(request: Request, user: OptionalUser, tr: Tr, svc: ServicesDep,
                      docs: Documents, session: SessionDep) -> Response:
    form = await request.form()
    pages: Pages = request.app.state.pages
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return pages.render(request, "verify.html", tr, user, status_code=422, report=None,
                            error=tr.gettext(N_("Choose a PDF file to check.")))
    try:
        report = await verify_upload(upload, svc, docs, tr, session)
    except Refused as exc:
        return pages.render(request, "verify.html", tr, user, status_code=exc.status_code,
                            report=None, error=tr.gettext(exc.message, **exc.params))
    return pages.render(request, "verify.html", tr, user, report=report)


# --- filing -------------------------------------------------------------------------------------

async def filing_public(filing: Filing, session: AsyncSession) -> FilingPublic:
    case = await session.get(Case, filing.case_id)
    return FilingPublic(
        id=filing.id or 0, number=filing.number, case_id=filing.case_id,
        case_number=case.number if case else "", court_id=filing.court_id,
        agreement_id=filing.agreement_id, filed_at=filing.filed_at, status=filing.status,
        reason=filing.reason, decided_at=filing.decided_at,
        pdf_url=f"/api/v1/agreements/{filing.agreement_id}.pdf",
        verification=json.loads(filing.verification or "{}"),
    )


@router.post("/api/v1/cases/{case_id}/filings", tags=["courts"])
async def file_agreement(case_id: PathId, data: FilingCreate, response: Response,
                         user: OptionalUser, session: SessionDep, docs: Documents,
                         svc: ServicesDep, tr: Tr) -> FilingPublic:
    """File the case's signed agreement with a court; the answer is the receipt. Filing the
    same agreement with the same court again returns the first receipt."""
    case = await cases.get_case(case_id, session=session)
    participant = await cases.participant_of(case_id, user.id if user else None,
                                             session=session)
    agreement = (await session.exec(select(Agreement).where(
        Agreement.case_id == case_id, col(Agreement.completed_at).is_not(None))
        .order_by(col(Agreement.id).desc()))).first()
    existing = agreement and (await session.exec(select(Filing).where(
        Filing.agreement_id == agreement.id, Filing.court_id == data.court_id))).first()
    if not existing:
        access.check_agreement(AgreementAction.file_agreement, Subject(user, participant), case)
    else:
        access.check_agreement(AgreementAction.view_agreement, Subject(user, participant), case)
    if agreement is None:
        raise Conflict(N_("Only a signed agreement can be filed."))
    assert user is not None
    report = await asyncio.to_thread(verify_pdf, docs.signing.read(agreement),
                                     trust_roots(svc, docs), tr)
    filing, created = await docs.filings.file(
        case, agreement, data.court_id, user=user, session=session,
        verification=report.model_dump_json(include={"valid", "message", "signatures"}))
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    if created:
        docs.filings.deliver_later()
    return await filing_public(filing, session)


@router.get("/api/v1/courts/{court_id}/filings", tags=["courts"])
async def court_filings(court_id: PathId, user: OptionalUser, session: SessionDep,
                        docs: Documents) -> list[FilingPublic]:
    """The court's inbox: filings with their verification result (the court's clerks only;
    a court system uses a clerk's API token)."""
    access.check_court(user, court_id)
    return [await filing_public(f, session)
            for f in await docs.filings.inbox(court_id, session=session)]


async def _filing_for_clerk(filing_id: int, user: User | None, session: AsyncSession
                            ) -> Filing:
    filing = await session.get(Filing, filing_id)
    if filing is None:
        raise NotFound(N_("No such filing."))
    try:
        access.check_court(user, filing.court_id)
    except NotFound:
        raise NotFound(N_("No such filing.")) from None
    return filing


@router.post("/api/v1/filings/{filing_id}/accept", tags=["courts"])
async def accept_filing(filing_id: PathId, user: OptionalUser, session: SessionDep,
                        docs: Documents) -> FilingPublic:
    """A clerk of the court accepts the filing."""
    filing = await _filing_for_clerk(filing_id, user, session)
    assert user is not None
    filing = await docs.filings.decide(filing, accept=True, reason="", clerk=user,
                                       session=session)
    docs.filings.deliver_later()
    return await filing_public(filing, session)


@router.post("/api/v1/filings/{filing_id}/reject", tags=["courts"])
async def reject_filing(filing_id: PathId, data: FilingDecision, user: OptionalUser,
                        session: SessionDep, docs: Documents) -> FilingPublic:
    """A clerk of the court rejects the filing, with the reason."""
    filing = await _filing_for_clerk(filing_id, user, session)
    assert user is not None
    if len(data.reason.strip()) < 3:
        raise Refused(N_("Give the reason for the rejection."), field="reason")
    filing = await docs.filings.decide(filing, accept=False, reason=data.reason.strip(),
                                       clerk=user, session=session)
    docs.filings.deliver_later()
    return await filing_public(filing, session)


@router.put("/api/v1/admin/courts/{court_id}/webhook", tags=["admin"])
async def set_webhook(court_id: PathId, data: WebhookIn, admin: Administrator,
                      session: SessionDep, svc: ServicesDep) -> WebhookPublic:
    """Where the court's system is told of filings; the answer holds the signing secret."""
    if await session.get(Court, court_id) is None:
        raise NotFound(N_("No such court."))
    hook = (await session.exec(select(CourtWebhook).where(
        CourtWebhook.court_id == court_id))).first() or CourtWebhook(
        court_id=court_id, url=data.url, secret=new_token())
    hook.url = data.url
    session.add(hook)
    await svc.audit.append(session, "court.webhook_set", actor_id=admin.id,
                           detail={"court_id": court_id, "url": data.url})
    await session.commit()
    return WebhookPublic(url=hook.url, secret=hook.secret)


# --- pages: signing and the court's inbox --------------------------------------------------------

@router.get("/drafts/{draft_id}/sign", include_in_schema=False)
async def sign_page(draft_id: PathId, request: Request, user: OptionalUser, tr: Tr,
                    session: SessionDep, docs: Documents) -> Response:
    if user is None:
        return RedirectResponse(f"/login?next=/drafts/{draft_id}/sign", status_code=303)
    return await _render_sign(request, draft_id, user, tr, session, docs)


async def _render_sign(request: Request, draft_id: int, user: User, tr: Translator,
                       session: AsyncSession, docs: DocumentsRuntime, status_code: int = 200,
                       errors: dict[str, str] | None = None) -> Response:
    draft, case, me = await _draft_case(draft_id, user, session,
                                        AgreementAction.view_agreement)
    agreement = await docs.signing.agreement_of(draft, case, session=session)
    public = await agreement_public(docs, agreement, case, session=session)
    mine = next((s for s in public.signatories if s.user_id == me.id), None)
    pages: Pages = request.app.state.pages
    return pages.render(request, "sign.html", tr, user, status_code=status_code, draft=draft,
                        case=case, agreement=public, mine=mine,
                        has_password=me.password_hash is not None, errors=errors or {})


@router.post("/drafts/{draft_id}/sign", include_in_schema=False)
async def sign_form(draft_id: PathId, request: Request, user: CurrentUser, tr: Tr,
                    session: SessionDep, docs: Documents) -> Response:
    values = await read_form(request)
    try:
        data = parse(SignRequest, values, tr)
        draft, case, me = await _draft_case(draft_id, user, session,
                                            AgreementAction.sign_agreement)
        await docs.signing.sign(draft, case, me, password=data.password, code=data.code,
                                typed_name=data.full_name, ip=client_ip(request),
                                session=session)
    except FormInvalid as exc:
        return await _render_sign(request, draft_id, user, tr, session, docs, 422, exc.errors)
    except Refused as exc:
        # Refusals come before sign() writes anything, so there is nothing to undo.
        err = refusal_as_form_error(exc, values, tr)
        return await _render_sign(request, draft_id, user, tr, session, docs, exc.status_code,
                                  err.errors)
    return RedirectResponse(f"/drafts/{draft_id}/sign?done=signed", status_code=303)


@router.get("/court", include_in_schema=False)
async def court_inbox(request: Request, user: CurrentUser, tr: Tr, session: SessionDep,
                      docs: Documents) -> Response:
    access.check_court(user, user.court_id or 0)
    court = await session.get(Court, user.court_id)
    filings = [await filing_public(f, session)
               for f in await docs.filings.inbox(user.court_id or 0, session=session)]
    pages: Pages = request.app.state.pages
    return pages.render(request, "court.html", tr, user, court=court, filings=filings)


@router.post("/court/filings/{filing_id}/{decision}", include_in_schema=False)
async def court_decide(filing_id: PathId, decision: str, request: Request, user: CurrentUser,
                       session: SessionDep, docs: Documents) -> Response:
    values = await read_form(request)
    filing = await _filing_for_clerk(filing_id, user, session)
    if decision not in ("accept", "reject"):
        raise NotFound(N_("The page you asked for does not exist."))
    reason = str(values.get("reason", "")).strip()
    if decision == "reject" and len(reason) < 3:
        raise Refused(N_("Give the reason for the rejection."), field="reason")
    await docs.filings.decide(filing, accept=decision == "accept", reason=reason, clerk=user,
                              session=session)
    docs.filings.deliver_later()
    return RedirectResponse("/court?done=saved", status_code=303)
