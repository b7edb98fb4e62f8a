"""The signed agreement over HTTP: signing, the PDF, verification, filing and the court inbox."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile, status
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.types import Message

from documents import attempts, contract
from documents.contract_templates import TEMPLATE
from documents.models import Agreement, AgreementRevision, CourtWebhook, Draft, Filing
from documents.pki import TrustRoots
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
    POLICY_REFUSALS,
    Administrator,
    CurrentUser,
    OptionalUser,
    PathId,
    ServicesDep,
    SessionDep,
    Tr,
    client_ip,
    writes_when_read,
)
from odr.errors import N_, Conflict, Forbidden, NotFound, Refused
from odr.forms import FormInvalid, parse, read_form, refusal_as_form_error
from odr.i18n import Translator
from odr.models import Case, Court, User
from odr.openapi import refusals
from odr.security import new_token
from odr.services import CasePagePart, Services
from odr.templating import Pages

router = APIRouter()
# What the routes' own policy checks may refuse (they load the draft or case themselves).
AGREEMENT = refusals(*POLICY_REFUSALS)
# Only a court's clerks see its inbox and decide its filings; to others it does not exist.
COURT = refusals(401, 404)


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

@router.get("/api/v1/drafts/{draft_id}/agreement", tags=["agreement"], responses=AGREEMENT)
@writes_when_read
async def get_agreement(draft_id: PathId, user: OptionalUser, session: SessionDep,
                        docs: Documents) -> AgreementPublic:
    """The agreement of a frozen draft: its PDF, revision and who has signed."""
    draft, case, _user = await _draft_case(draft_id, user, session,
                                           AgreementAction.view_agreement)
    agreement = await docs.signing.agreement_of(draft, case, session=session)
    return await agreement_public(docs, agreement, case, session=session)


async def _sign(draft_id: int, data: SignRequest, request: Request, user: User | None,
                session: AsyncSession, docs: DocumentsRuntime) -> tuple[Agreement, Case]:
    """Sign for the API and the page alike, counting wrong passwords and codes (too many lock
    the signatory out for a while: documents.attempts)."""
    draft, case, me = await _draft_case(draft_id, user, session,
                                        AgreementAction.sign_agreement)
    agreement = await docs.signing.agreement_of(draft, case, session=session)
    agreement_id, user_id = agreement.id or 0, me.id or 0
    await attempts.check(session, agreement_id, user_id)
    try:
        agreement = await docs.signing.sign(
            draft, case, me, password=data.password, code=data.code,
            typed_name=data.full_name, ip=client_ip(request), session=session)
    except Forbidden as exc:
        if exc.field in ("password", "code"):
            await attempts.record_failure(session, agreement_id, user_id)
        raise
    return agreement, case


async def _send_code(draft_id: int, user: User | None, session: AsyncSession,
                     docs: DocumentsRuntime, svc: Services) -> None:
    draft, case, me = await _draft_case(draft_id, user, session,
                                        AgreementAction.sign_agreement)
    agreement = await docs.signing.agreement_of(draft, case, session=session)
    await attempts.check_code_request(session, agreement.id or 0, me.id or 0)
    await docs.signing.send_code(agreement, me, svc.catalogues.get(me.language or draft.language),
                                 session=session)
    await svc.mailer.deliver_pending()


@router.post("/api/v1/drafts/{draft_id}/sign", tags=["agreement"],
             responses=AGREEMENT | refusals(400, 429, 503))
async def sign(draft_id: PathId, data: SignRequest, request: Request, user: OptionalUser,
               session: SessionDep, docs: Documents) -> AgreementPublic:
    """Sign the frozen agreement, confirming with one's password (or e-mailed code) and name.
    After five wrong passwords or codes signing is locked for a while (429)."""
    agreement, case = await _sign(draft_id, data, request, user, session, docs)
    return await agreement_public(docs, agreement, case, session=session)


@router.post("/api/v1/drafts/{draft_id}/sign/code", status_code=status.HTTP_204_NO_CONTENT,
             tags=["agreement"], responses=AGREEMENT | refusals(429))
async def send_signing_code(draft_id: PathId, user: OptionalUser, session: SessionDep,
                            docs: Documents, svc: ServicesDep) -> None:
    """E-mail a one-time code to confirm the signature (for a signatory without a password).
    A few codes may be open at once; more are refused (429) until they expire."""
    await _send_code(draft_id, user, session, docs, svc)


@router.get("/api/v1/agreements/{agreement_id}.pdf", tags=["agreement"],
            response_class=Response, responses=AGREEMENT | {200: {
                "content": {"application/pdf": {"schema": {"type": "string",
                                                           "format": "binary"}}},
                "description": "The PDF with every signature so far."}})
@writes_when_read
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
    if agreement.completed_at is None:  # a seal that failed is tried again when anyone reads
        await docs.signing.seal_if_due(agreement, case, session=session)
    pdf = await docs.signing.read(agreement, session=session)
    draft = await session.get(Draft, agreement.draft_id)
    name = "contract" if draft is not None and contract.is_contract(draft) else "agreement"
    return Response(pdf, media_type="application/pdf", headers={
        "content-disposition": f'inline; filename="{name}-{case.number}.pdf"'})


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

def trust_roots(svc: Services, docs: DocumentsRuntime) -> TrustRoots:
    # Signers' and timestamp servers' roots, kept apart (see AgreementSigning.trust_roots).
    return docs.signing.trust_roots()


# Room for the multipart framing around the uploaded file (boundaries, part headers, its name).
FORM_OVERHEAD = 16_384


class UploadTooLarge(Refused):
    status_code = 413


class _BodyTooLarge(HTTPException):
    """Raised while the body arrives; an HTTPException, so FastAPI's body parsing passes it on
    untouched (anything else becomes its 400), to be turned into ``UploadTooLarge``."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE)


def too_large(limit: int) -> UploadTooLarge:
    if limit < 1_000_000:
        return UploadTooLarge(N_("The file is too large (at most %(kb)d KB)."), kb=limit // 1000)
    megabytes = f"{limit // 100_000 / 10:.1f}".removesuffix(".0")  # 20, 1.5 (never rounded up)
    return UploadTooLarge(N_("The file is too large (at most %(mb)s MB)."), mb=megabytes)


def capped(request: Request, limit: int) -> Request:
    """``request`` with its body limited to ``limit`` bytes plus the form's framing: refused at
    once when its declared length is over, else as soon as more than that has arrived (a client
    need not declare it), so an oversized upload is never read, kept or spooled whole."""
    allowed = limit + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > allowed:
        raise _BodyTooLarge
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > allowed:
                raise _BodyTooLarge
        return message

    return Request(request.scope, receive)


class CappedUploadRoute(APIRoute):
    """An API route whose body is ``capped`` at the verification limit before FastAPI reads
    the form (FastAPI reads it before any dependency could look at the request)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped_handler(request: Request) -> Response:
            services: Services = request.app.state.services
            limit = services.settings.verify_max_bytes
            try:
                return await handler(capped(request, limit))
            except _BodyTooLarge:
                raise too_large(limit) from None

        return capped_handler


upload_router = APIRouter(route_class=CappedUploadRoute)


async def verify_upload(upload: StarletteUploadFile, svc: Services, docs: DocumentsRuntime,
                        tr: Translator, session: AsyncSession) -> VerificationReport:
    limit = svc.settings.verify_max_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
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


@upload_router.post("/api/v1/verify", tags=["agreement"], responses=refusals(400, 413))
async def verify(file: Annotated[UploadFile, File()], svc: ServicesDep, docs: Documents,
                 tr: Tr, session: SessionDep) -> VerificationReport:
    """Upload any PDF: are its signatures intact and valid, who signed when, was it changed
    after signing, and is it an agreement in the platform's records. A file over the limit is
    refused with 413, before it is read when the request declares its length."""
    return await verify_upload(file, svc, docs, tr, session)


router.include_router(upload_router)


@router.get("/verify", include_in_schema=False)
async def verify_page(request: Request, user: OptionalUser, tr: Tr) -> Response:
    pages: Pages = request.app.state.pages
    return pages.render(request, "verify.html", tr, user, report=None)


@router.post("/verify", include_in_schema=False)
async def verify_form(request: Request, user: OptionalUser, tr: Tr, svc: ServicesDep,
                      docs: Documents, session: SessionDep) -> Response:
    pages: Pages = request.app.state.pages
    limit = svc.settings.verify_max_bytes
    try:
        form = await capped(request, limit).form()
    except _BodyTooLarge:
        exc = too_large(limit)
        return pages.render(request, "verify.html", tr, user, status_code=exc.status_code,
                            report=None, error=tr.gettext(exc.message, **exc.params))
    upload = form.get("file")
    # The form gives Starlette's UploadFile (FastAPI's is a subclass made for parameters).
    if not isinstance(upload, StarletteUploadFile) or not upload.filename:
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


async def _file(case_id: int, court_id: int, user: User | None, session: AsyncSession,
                docs: DocumentsRuntime, svc: Services, tr: Translator) -> tuple[Filing, bool]:
    """File for the API and the case page alike: the filing, and whether it is new."""
    case = await cases.get_case(case_id, session=session)
    subject = Subject(user, await cases.participant_of(case_id, user.id if user else None,
                                                       session=session))
    agreement = (await session.exec(select(Agreement).join(
        Draft, col(Draft.id) == col(Agreement.draft_id)).where(
        Agreement.case_id == case_id, col(Agreement.completed_at).is_not(None),
        Draft.template != TEMPLATE)  # the mediation contract is not what a court receives
        .order_by(col(Agreement.id).desc()))).first()
    existing = agreement and await docs.filings.open_filing(agreement.id or 0, court_id,
                                                            session=session)
    if existing:
        access.check_agreement(AgreementAction.view_agreement, subject, case)
        return existing, False
    access.check_agreement(AgreementAction.file_agreement, subject, case)
    if agreement is None:
        raise Conflict(N_("Only a signed agreement can be filed."))
    assert user is not None
    pdf = await docs.signing.read(agreement, session=session)
    report = await asyncio.to_thread(verify_pdf, pdf, trust_roots(svc, docs), tr)
    filing, created = await docs.filings.file(
        case, agreement, court_id, user=user, session=session,
        verification=report.model_dump_json(include={"valid", "message", "signatures"}))
    if created:
        docs.filings.deliver_later()
    return filing, created


@router.post("/api/v1/cases/{case_id}/filings", tags=["courts"], responses=AGREEMENT | {
    201: {"model": FilingPublic, "description": "A new filing (the earlier one was rejected)."}})
async def file_agreement(case_id: PathId, data: FilingCreate, response: Response,
                         user: OptionalUser, session: SessionDep, docs: Documents,
                         svc: ServicesDep, tr: Tr) -> FilingPublic:
    """File the case's signed agreement with a court; the answer is the receipt. While that
    filing is received or accepted, filing again returns it (200); after the court rejects it,
    filing again makes a new one (201)."""
    filing, created = await _file(case_id, data.court_id, user, session, docs, svc, tr)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return await filing_public(filing, session)


@router.post("/cases/{case_id}/filings", include_in_schema=False)
async def file_form(case_id: PathId, request: Request, user: CurrentUser, tr: Tr,
                    session: SessionDep, docs: Documents, svc: ServicesDep) -> Response:
    """The case page's filing form: the mediator picks a court from the register."""
    values = await read_form(request)
    try:
        data = parse(FilingCreate, values, tr)
    except FormInvalid:
        raise Refused(N_("Choose the court to file the agreement with."),
                      field="court_id") from None
    await _file(case_id, data.court_id, user, session, docs, svc, tr)
    return RedirectResponse(f"/cases/{case_id}?done=filed#filings", status_code=303)


def case_page_filings(docs: DocumentsRuntime) -> CasePagePart:
    """What the case page shows of filings: each with its court, number, status and reason,
    and for the mediator, the courts of the register to file with."""

    async def part(case: Case, subject: Subject, session: AsyncSession) -> dict[str, Any]:
        try:
            access.check_agreement(AgreementAction.file_agreement, subject, case)
            courts = (await session.exec(select(Court).where(col(Court.active).is_(True))
                                         .order_by(col(Court.name)))).all()
        except Refused:
            courts = []
        return {"filings": await docs.filings.of_case(case.id or 0, session=session),
                "filing_courts": courts}

    return part


@router.get("/api/v1/courts/{court_id}/filings", tags=["courts"], responses=COURT)
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


@router.post("/api/v1/filings/{filing_id}/accept", tags=["courts"],
             responses=COURT | refusals(409))
async def accept_filing(filing_id: PathId, user: OptionalUser, session: SessionDep,
                        docs: Documents) -> FilingPublic:
    """A clerk of the court accepts the filing."""
    filing = await _filing_for_clerk(filing_id, user, session)
    assert user is not None
    filing = await docs.filings.decide(filing, accept=True, reason="", clerk=user,
                                       session=session)
    docs.filings.deliver_later()
    return await filing_public(filing, session)


@router.post("/api/v1/filings/{filing_id}/reject", tags=["courts"],
             responses=COURT | refusals(400, 409))
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


@router.put("/api/v1/admin/courts/{court_id}/webhook", tags=["admin"], responses=refusals(404))
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
@writes_when_read
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
    extra: dict[str, str] = {}
    if request.query_params.get("done") == "code_sent":
        extra["flash"] = tr.gettext(N_("We have sent you a code by e-mail. It is valid for "
                                       "15 minutes."))
    return pages.render(request, "sign.html", tr, user, status_code=status_code, draft=draft,
                        case=case, agreement=public, mine=mine,
                        is_contract=contract.is_contract(draft),
                        has_password=me.password_hash is not None, errors=errors or {},
                        **extra)


@router.post("/drafts/{draft_id}/sign", include_in_schema=False)
async def sign_form(draft_id: PathId, request: Request, user: CurrentUser, tr: Tr,
                    session: SessionDep, docs: Documents) -> Response:
    values = await read_form(request)
    try:
        data = parse(SignRequest, values, tr)
        agreement, case = await _sign(draft_id, data, request, user, session, docs)
    except FormInvalid as exc:
        return await _render_sign(request, draft_id, user, tr, session, docs, 422, exc.errors)
    except Refused as exc:
        # Refusals come before sign() writes anything, so there is nothing to undo.
        err = refusal_as_form_error(exc, values, tr)
        return await _render_sign(request, draft_id, user, tr, session, docs, exc.status_code,
                                  err.errors)
    draft = await session.get(Draft, agreement.draft_id)
    if draft is not None and contract.is_contract(draft):
        return RedirectResponse(f"/cases/{case.id}?done=contract_signed#contract",
                                status_code=303)
    return RedirectResponse(f"/drafts/{draft_id}/sign?done=signed", status_code=303)


@router.post("/drafts/{draft_id}/sign/code", include_in_schema=False)
async def send_code_form(draft_id: PathId, request: Request, user: CurrentUser, tr: Tr,
                         session: SessionDep, docs: Documents, svc: ServicesDep) -> Response:
    """The signing page's "send me a code" button, for a signatory without a password."""
    await read_form(request)
    try:
        await _send_code(draft_id, user, session, docs, svc)
    except Refused as exc:
        return await _render_sign(request, draft_id, user, tr, session, docs, exc.status_code,
                                  {"code": tr.gettext(exc.message, **exc.params)})
    return RedirectResponse(f"/drafts/{draft_id}/sign?done=code_sent", status_code=303)


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
