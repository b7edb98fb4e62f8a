"""The mediation contract and the term of mediation over HTTP (the contract is signed through
the agreement's own routes: /drafts/{draft_id}/sign)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from documents.contract import ContractState
from documents.runtime import Documents, DocumentsRuntime
from documents.schemas import (
    ContractPublic,
    ContractTerms,
    SignatoryPublic,
    TermExtension,
)
from odr import access, terms
from odr.access import Action, Subject
from odr.deps import (
    POLICY_REFUSALS,
    CaseViewer,
    OptionalUser,
    PathId,
    ServicesDep,
    SessionDep,
    Tr,
    load_case_access,
)
from odr.errors import N_, NotFound, Refused
from odr.forms import FormInvalid, parse, read_form
from odr.models import Case, User
from odr.openapi import refusals
from odr.schemas import TermPublic
from odr.services import CasePagePart, Services

router = APIRouter()
POLICY = refusals(*POLICY_REFUSALS)


async def contract_public(docs: DocumentsRuntime, state: ContractState, case: Case, *,
                          session: AsyncSession) -> ContractPublic:
    people = await docs.signing.signatories(case, state.agreement, session=session)
    return ContractPublic(
        id=state.contract.id or 0, case_id=case.id or 0, draft_id=state.draft.id or 0,
        language=state.draft.language, fee=state.contract.fee,
        term_days=state.contract.term_days, concluded_at=state.contract.concluded_at,
        sign_url=f"/drafts/{state.draft.id}/sign",
        pdf_url=f"/api/v1/agreements/{state.agreement.id}.pdf" if state.agreement else None,
        signatories=[SignatoryPublic(user_id=s.user.id or 0, name=s.user.name,
                                     role=s.participant.role,
                                     signed_at=s.signature.signed_at if s.signature else None)
                     for s in people])


@router.get("/api/v1/cases/{case_id}/contract", tags=["cases"], responses=refusals(401, 404))
async def get_contract(ca: CaseViewer, session: SessionDep, docs: Documents) -> ContractPublic:
    """The case's mediation contract: prepared once the mediator and two parties take part;
    each party and the mediator sign it (``sign_url``), and its conclusion opens the
    sessions and starts the term of mediation."""
    state = await docs.contracts.state(ca.case, session=session)
    if state is None:
        raise NotFound(N_("The contract is prepared once the mediator and both parties take "
                          "part in the case."))
    return await contract_public(docs, state, ca.case, session=session)


async def _set_terms(case_id: int, data: ContractTerms, user: User | None,
                     session: AsyncSession, docs: DocumentsRuntime) -> Case:
    ca = await load_case_access(case_id, user, Action.set_contract_terms, session)
    await docs.contracts.set_terms(ca.case, fee=data.fee, term_days=data.term_days,
                                   mediator=ca.user, session=session)
    await session.commit()
    return ca.case


@router.put("/api/v1/cases/{case_id}/contract", tags=["cases"], responses=POLICY)
async def set_contract_terms(case_id: PathId, data: ContractTerms, user: OptionalUser,
                             session: SessionDep, docs: Documents) -> ContractPublic:
    """The mediator sets the fee and a shorter term before anyone signs: the contract is
    prepared again with them."""
    case = await _set_terms(case_id, data, user, session, docs)
    state = await docs.contracts.state(case, session=session)
    assert state is not None
    return await contract_public(docs, state, case, session=session)


async def _extend(case_id: int, data: TermExtension, user: User | None, session: AsyncSession,
                  svc: Services) -> Case:
    ca = await load_case_access(case_id, user, Action.view_case, session)
    await terms.extend(ca.case, days=data.days, parties_agreed=data.parties_agreed,
                       note=data.note, subject=ca.subject, svc=svc, session=session)
    await session.commit()
    return ca.case


@router.post("/api/v1/cases/{case_id}/term/extensions", tags=["cases"],
             responses=POLICY | refusals(400))
async def extend_term(case_id: PathId, data: TermExtension, user: OptionalUser,
                      session: SessionDep, svc: ServicesDep) -> TermPublic:
    """The mediator extends the term of mediation with the parties' agreement (which they
    confirm with ``parties_agreed``), by at most what the law allows in all."""
    case = await _extend(case_id, data, user, session, svc)
    view = terms.view(case, svc)
    assert view is not None
    return view


@router.post("/cases/{case_id}/contract", include_in_schema=False)
async def contract_terms_form(case_id: PathId, request: Request, user: OptionalUser, tr: Tr,
                              session: SessionDep, docs: Documents) -> Response:
    values = await read_form(request)
    try:
        data = parse(ContractTerms, values, tr)
    except FormInvalid as exc:
        raise Refused(N_("Give the term as a number of days."), field="term_days") from exc
    await _set_terms(case_id, data, user, session, docs)
    return RedirectResponse(f"/cases/{case_id}?done=contract_terms#contract", status_code=303)


@router.post("/cases/{case_id}/term", include_in_schema=False)
async def extend_term_form(case_id: PathId, request: Request, user: OptionalUser, tr: Tr,
                           session: SessionDep, svc: ServicesDep) -> Response:
    values = await read_form(request)
    values["parties_agreed"] = "true" if values.get("parties_agreed") == "yes" else "false"
    try:
        data = parse(TermExtension, values, tr)
    except FormInvalid as exc:
        raise Refused(N_("Give the extension as a number of days."), field="days") from exc
    await _extend(case_id, data, user, session, svc)
    return RedirectResponse(f"/cases/{case_id}?done=term_extended#term", status_code=303)


def case_page_contract(docs: DocumentsRuntime, svc: Services) -> CasePagePart:
    """What the case page shows of the contract (who signed, the link to sign) and the term."""

    async def part(case: Case, subject: Subject, session: AsyncSession) -> dict[str, Any]:
        state = await docs.contracts.state(case, session=session)
        contract = await contract_public(docs, state, case, session=session) if state else None
        me = subject.user.id if subject.user else None
        return {
            "contract": contract,
            "contract_to_sign": contract is not None and contract.concluded_at is None and any(
                s.user_id == me and s.signed_at is None for s in contract.signatories),
            "can_set_contract_terms": contract is not None and contract.concluded_at is None
            and all(s.signed_at is None for s in contract.signatories)
            and access.may(Action.set_contract_terms, subject, case),
            "term": terms.view(case, svc),
            "can_extend_term": access.may(Action.extend_term, subject, case),
            "contract_max_days": svc.settings.mediation_term_days,
        }

    return part

