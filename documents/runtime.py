"""The long-lived parts of documents (draft rooms, signing, filings), made in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from documents import authority_store, service
from documents.contract import MediationContracts
from documents.draft_room import DraftRooms
from documents.filings import Filings
from documents.service import DraftService
from documents.signing import AgreementSigning
from odr import access
from odr.access import DraftAction, Subject
from odr.cluster import Holder
from odr.models import Case
from odr.services import Services


@dataclass
class DocumentsRuntime:
    rooms: DraftRooms
    drafts: DraftService
    signing: AgreementSigning
    filings: Filings
    contracts: MediationContracts
    # Sealing what was left unsealed, started in the background at start-up (documents.routes).
    startup_sealing: asyncio.Task[None] | None = None


@asynccontextmanager
async def runtime(services: Services) -> AsyncIterator[DocumentsRuntime]:
    """Kept on ``app.state.documents``; the draft writer flushes what it holds on shutdown."""
    rooms = DraftRooms(services.engine,
                       max_update_bytes=services.settings.draft_max_update_bytes,
                       shared=services.cluster is not None)

    async def case_page_drafts(case: Case, subject: Subject, session: AsyncSession
                               ) -> dict[str, Any]:
        return {
            "drafts": await service.drafts_of(case, subject, session=session),
            "can_create_draft": access.may_draft(DraftAction.create_draft, subject, case, None),
        }

    if services.cluster is not None:
        services.cluster.holders["draft"] = Holder(held=rooms.connected, lost=rooms.moved)
    services.case_page_parts.append(case_page_drafts)
    services.cases.disconnectors.append(rooms)
    filings = Filings(services)
    signing = AgreementSigning(services)
    if services.cluster is not None:  # every host signs under, and trusts, one authority
        await authority_store.share(
            services.settings.data_dir / "pki", services.settings.effective_secret_key.encode(),
            services.maker, make=not signing.uses_configured_certificate)
    contracts = MediationContracts(services, signing)
    services.cases.roster_listeners.append(contracts.refresh)
    try:
        yield DocumentsRuntime(rooms, DraftService(rooms, services.cases, services.catalogues),
                               signing, filings, contracts)
    finally:
        services.cases.roster_listeners.remove(contracts.refresh)
        services.cases.disconnectors.remove(rooms)
        services.case_page_parts.remove(case_page_drafts)
        await filings.close()
        await rooms.close()


async def documents_runtime(request: Request) -> DocumentsRuntime:  # async: no worker thread
    rt: DocumentsRuntime = request.app.state.documents
    return rt


Documents = Annotated[DocumentsRuntime, Depends(documents_runtime)]
