"""The mediation contract: prepared once a mediator has taken the case and the parties are
there, signed by each party and the mediator like an agreement (a frozen draft, one PAdES
signature each, then the seal), and concluded when the last one signs.

Signing it is how a party consents to mediation, and its conclusion opens the sessions and
starts the term of mediation (odr.terms). The contract names its signatories: if the people of
the case change before everyone has signed, it is void and the next look prepares a new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pycrdt import Doc
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from documents import agreement_templates, contract_templates, prosemirror
from documents.contract_templates import TEMPLATE, ContractFacts
from documents.models import Agreement, Draft, DraftSnapshot, DraftUpdate, MediationContract
from odr.errors import N_, Conflict
from odr.models import Case, CaseRole, CaseStatus, MediatorKind, MediatorProfile, User, utcnow
from odr.register import pack, unpack
from odr.services import Services
from odr.vocab import CATEGORY_LABELS, REGION_LABELS, SIDE_LABELS

if TYPE_CHECKING:
    from documents.signing import AgreementSigning, Signatory

CHANNEL = "contract"
# What the mediator may write as the fee (the contract prints it as written).
FEE_MAX = 500


def is_contract(draft: Draft) -> bool:
    return draft.template == TEMPLATE


@dataclass(frozen=True)
class ContractState:
    contract: MediationContract
    draft: Draft
    agreement: Agreement | None  # None until someone opens it to sign (it renders then)


class MediationContracts:
    def __init__(self, svc: Services, signing: AgreementSigning) -> None:
        self.svc = svc
        self.signing = signing

    async def state(self, case: Case, *, session: AsyncSession) -> ContractState | None:
        """The contract being signed, or the concluded one (None before one is prepared, and
        for cases that began before contracts existed)."""
        latest = await self._latest(case, session)
        if latest is None or (case.status != CaseStatus.accepted and latest.concluded_at is None):
            return None
        return await self._state(latest, session)

    async def refresh(self, case: Case, session: AsyncSession, actor: User | None = None
                      ) -> None:
        """After the people of a case changed (``CaseService.roster_listeners``, in the same
        transaction): while the case waits for its contract, prepare one naming the mediator
        and the parties, voiding one that names others."""
        if case.status != CaseStatus.accepted:
            return
        await session.flush()
        latest = await self._latest(case, session)
        people = await self.signing.signatories(case, None, session=session)
        parties = [s for s in people if s.participant.role == CaseRole.party]
        mediators = [s for s in people if s.participant.role == CaseRole.mediator]
        if latest is not None and latest.signatories == pack(str(s.user.id) for s in people):
            return
        if latest is not None:  # someone joined or left before everyone signed
            await self._void(latest, case, session, actor)
        if len(parties) >= 2 and len(mediators) == 1:
            fee, term_days = ((latest.fee, latest.term_days) if latest
                              else ("", self.svc.settings.mediation_term_days))
            await self._prepare(case, people, fee=fee, term_days=term_days, session=session,
                                actor=actor)

    async def prepare_due(self) -> int:
        """Prepare the contract of every case waiting for one without it (cases accepted
        before contracts existed, or made while no documents runtime listened: the demo).
        Run at start-up; returns how many were prepared."""
        prepared = 0
        async with self.svc.maker() as session:
            waiting = (await session.exec(select(Case).where(
                Case.status == CaseStatus.accepted,
                ~select(MediationContract.id).where(
                    col(MediationContract.case_id) == col(Case.id),
                    col(MediationContract.void_at).is_(None)).exists()))).all()
            for case in waiting:
                await self.refresh(case, session)
                prepared += (await self._latest(case, session)) is not None
            await session.commit()
        return prepared

    async def _latest(self, case: Case, session: AsyncSession) -> MediationContract | None:
        return (await session.exec(
            select(MediationContract).where(MediationContract.case_id == case.id,
                                            col(MediationContract.void_at).is_(None))
            .order_by(col(MediationContract.id).desc()))).first()

    async def set_terms(self, case: Case, *, fee: str, term_days: int, mediator: User,
                        session: AsyncSession) -> None:
        """The mediator's fee and a term shorter than the law's, before anyone has signed."""
        state = await self.state(case, session=session)
        if state is None or case.status != CaseStatus.accepted:
            raise Conflict(N_("The contract is prepared once the mediator and both parties "
                              "take part in the case."))
        if state.agreement is not None and state.agreement.revision > 0:
            raise Conflict(N_("The contract's terms cannot change once someone has signed it."))
        if term_days > self.svc.settings.mediation_term_days:
            raise Conflict(N_("The term cannot be longer than the law's %(days)s days."),
                           days=self.svc.settings.mediation_term_days)
        await self._void(state.contract, case, session, mediator)
        people = await self.signing.signatories(case, None, session=session)
        await self._prepare(case, people, fee=fee, term_days=term_days, session=session,
                            actor=mediator)

    async def _state(self, contract: MediationContract, session: AsyncSession
                     ) -> ContractState:
        draft = await session.get(Draft, contract.draft_id)
        assert draft is not None
        agreement = (await session.exec(select(Agreement).where(
            Agreement.draft_id == draft.id))).first()
        return ContractState(contract, draft, agreement)

    async def _void(self, contract: MediationContract, case: Case, session: AsyncSession,
                    actor: User | None) -> None:
        contract.void_at = utcnow()
        session.add(contract)
        await self.svc.cases.record(session, case, "contract_void", actor=actor,
                                    detail=str(contract.id))

    async def _prepare(self, case: Case, people: list[Signatory], *, fee: str, term_days: int,
                       session: AsyncSession, actor: User | None = None) -> None:
        mediator = next(s.user for s in people if s.participant.role == CaseRole.mediator)
        kind = MediatorKind((await session.exec(select(MediatorProfile.kind).where(
            MediatorProfile.user_id == mediator.id))).first() or MediatorKind.professional)
        if kind == MediatorKind.public:
            fee = ""  # a public mediator works free of charge
        tr = self.svc.catalogues.get(case.language)
        facts = ContractFacts(
            case_number=case.number,
            category_name=tr.gettext(CATEGORY_LABELS[case.category.value]),
            summary=case.summary,
            region_name=tr.gettext(REGION_LABELS.get(case.region, case.region)),
            procedure_language=case.language,
            parties=[(s.user.name, tr.gettext(SIDE_LABELS[s.participant.side.value])
                      if s.participant.side else "")
                     for s in people if s.participant.role == CaseRole.party],
            mediator=mediator.name, mediator_kind=kind.value, fee=fee, term_days=term_days,
            extension_days=self.svc.settings.mediation_extension_days,
            verify_url=self.svc.settings.public_url.rstrip("/") + "/verify",
            today=utcnow().date(),
        )
        update = agreement_templates.update_of(contract_templates.blocks(case.language, facts))
        doc: Doc[Any] = Doc()
        doc.apply_update(update)
        text, html = prosemirror.to_text(doc), prosemirror.to_html(doc)
        now = utcnow()
        # Frozen from the start: the contract is the template's text, not a draft to edit.
        draft = Draft(
            case_id=case.id or 0, channel=CHANNEL, language=case.language, template=TEMPLATE,
            title=contract_templates.WORDS[case.language]["title"],
            created_by=mediator.id or 0, version=1, frozen_at=now, frozen_version=1,
            frozen_text=text, frozen_html=html,
            frozen_sha256=hashlib.sha256(text.encode()).hexdigest())
        session.add(draft)
        await session.flush()
        session.add(DraftUpdate(draft_id=draft.id or 0, data=update, author_id=None))
        session.add(DraftSnapshot(draft_id=draft.id or 0, version=1, reason="frozen",
                                  text=text, html=html))
        contract = MediationContract(
            case_id=case.id or 0, draft_id=draft.id or 0, term_days=term_days, fee=fee,
            signatories=pack(str(s.user.id) for s in people))
        session.add(contract)
        await session.flush()
        await self.svc.cases.record(session, case, "contract_prepared", actor=actor,
                                    detail=str(contract.id),
                                    audit_detail={"draft_id": draft.id, "fee": fee,
                                                  "term_days": term_days})


async def contract_of(draft: Draft, *, session: AsyncSession) -> MediationContract:
    return (await session.exec(select(MediationContract).where(
        MediationContract.draft_id == draft.id))).one()


async def check_signable(draft: Draft, case: Case, user: User, signatories: list[int], *,
                         session: AsyncSession) -> None:
    """A contract is signed while the case waits for it, by the people it names, who are still
    the case's signatories (``signatories``, user ids in order)."""
    contract = await contract_of(draft, session=session)
    if (contract.void_at is not None or case.status != CaseStatus.accepted
            or contract.signatories != pack(str(i) for i in signatories)
            or str(user.id) not in unpack(contract.signatories)):
        raise Conflict(N_("This contract is no longer the one to sign: open the case page "
                          "for the current one."))


async def concluded(draft: Draft, case: Case, *, svc: Services, session: AsyncSession) -> None:
    """Everyone has signed: the contract is concluded, every party has consented by signing,
    the term of mediation starts, and the sessions open."""
    contract = await contract_of(draft, session=session)
    now = utcnow()
    contract.concluded_at = now
    case.term_ends_at = now + timedelta(days=contract.term_days)
    session.add_all([contract, case])
    await svc.cases.record(session, case, "contract_concluded", actor=None,
                           detail=case.term_ends_at.isoformat(timespec="minutes"),
                           audit_detail={"contract_id": contract.id,
                                         "term_days": contract.term_days})
    if case.status == CaseStatus.accepted:
        await svc.cases.transition(case, CaseStatus.consented, actor=None, session=session)
