"""Agreement drafts over HTTP and WebSocket: the API, the editor page, and ``/ws/drafts/{id}``.

The WebSocket only adapts the transport: the room (``documents.draft_room``) owns loading,
storing and forwarding; the policy decides, before accept, who may read and who may write.
"""

from __future__ import annotations

import asyncio
import colorsys
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect, status
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketState

from documents import agreement_routes, contract_routes, service
from documents.direct_frames import direct_frames
from documents.draft_room import WriteRefused
from documents.runtime import Documents, DocumentsRuntime
from documents.runtime import runtime as documents_runtime
from documents.schemas import (
    DiffPublic,
    DraftCreate,
    DraftPublic,
    FreezeResult,
    VersionPublic,
)
from documents.service import DraftAccess, load_draft_access
from documents.yprotocol import ProtocolError
from odr import access
from odr.access import Action, DraftAction
from odr.deps import (
    POLICY_REFUSALS,
    VIEW_REFUSALS,
    OptionalUser,
    PathId,
    ServicesDep,
    SessionDep,
    Tr,
    load_case_access,
    websocket_user,
)
from odr.errors import Refused
from odr.forms import FormInvalid, parse, read_form
from odr.forwarding import CLOSE_TRY_AGAIN, serve_here
from odr.openapi import refusals, refuses
from odr.schemas import MAX_ID
from odr.services import Services
from odr.templating import Pages

log = logging.getLogger("odr.drafts")
router = APIRouter()
router.include_router(agreement_routes.router)
router.include_router(contract_routes.router)
__all__ = ["router", "runtime"]


@asynccontextmanager
async def runtime(services: Services) -> AsyncIterator[DocumentsRuntime]:
    """The documents runtime as the app runs it (in its lifespan): the webhook worker delivers
    court notices, and the case page shows the case's filings."""
    async with documents_runtime(services) as docs:
        filings_part = agreement_routes.case_page_filings(docs)
        contract_part = contract_routes.case_page_contract(docs, services)
        services.case_page_parts.extend([filings_part, contract_part])
        docs.filings.start()
        try:
            if prepared := await docs.contracts.prepare_due():
                log.info("Prepared %d mediation contract(s)", prepared)
        except Exception:  # a database that is not there yet must not stop the service
            log.exception("Preparing mediation contracts failed")
        # Agreements left signed but unsealed when the process stopped (or when the timestamp
        # server was down) are sealed in the background: start-up does not wait for it.
        sealing = docs.startup_sealing = asyncio.get_running_loop().create_task(
            _seal_pending(docs))
        try:
            yield docs
        finally:
            await _stop(sealing)
            services.case_page_parts.remove(filings_part)
            services.case_page_parts.remove(contract_part)
            await docs.filings.close()


async def _stop(sealing: asyncio.Task[None]) -> None:
    """Let the start-up sealing finish (it is quick unless a timestamp server is slow), else
    cancel it; either way it has let go of its database connection before the engine closes
    (a task left holding one at that point never finishes, and shutdown hangs)."""
    await asyncio.wait({sealing}, timeout=SEAL_ON_SHUTDOWN_SECONDS)
    sealing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sealing


SEAL_ON_SHUTDOWN_SECONDS = 5.0


async def _seal_pending(docs: DocumentsRuntime) -> None:
    try:
        if sealed := await docs.signing.seal_pending():
            log.info("Sealed %d agreement(s) left unsealed", sealed)
    except Exception:  # a database that is not there yet must not stop the service
        log.exception("Sealing pending agreements failed")


# Close codes: 1008 policy (not allowed), 1007 malformed data, 1009 too large.
POLICY, MALFORMED, TOO_LARGE = 1008, 1007, 1009


def draft_for(action: DraftAction) -> Any:
    @refuses(*(VIEW_REFUSALS if action is DraftAction.view_draft else POLICY_REFUSALS))
    async def dependency(draft_id: PathId, user: OptionalUser, session: SessionDep
                         ) -> DraftAccess:
        return await load_draft_access(draft_id, user, action, session)

    return Depends(dependency)


DraftViewer = Annotated[DraftAccess, draft_for(DraftAction.view_draft)]
DraftApprover = Annotated[DraftAccess, draft_for(DraftAction.approve_draft)]
DraftFreezer = Annotated[DraftAccess, draft_for(DraftAction.freeze_draft)]


# --- API ----------------------------------------------------------------------------------------

@router.post("/api/v1/cases/{case_id}/drafts", status_code=status.HTTP_201_CREATED,
             tags=["drafts"], responses=refusals(*POLICY_REFUSALS, 400))
async def create_draft(case_id: PathId, data: DraftCreate, user: OptionalUser,
                       session: SessionDep, docs: Documents) -> DraftPublic:
    """Start a draft agreement from the template (the mediator; after both parties consent)."""
    ca = await load_case_access(case_id, user, Action.view_case, session)
    access.check_draft(DraftAction.create_draft, ca.subject, ca.case, None)
    draft = await docs.drafts.create(ca.case, data, creator=ca.user, session=session)
    await session.commit()
    da = DraftAccess(ca.case, ca.user, ca.participant, draft)
    return await docs.drafts.public(da, session=session)


@router.get("/api/v1/cases/{case_id}/drafts", tags=["drafts"],
            responses=refusals(*VIEW_REFUSALS))
async def list_drafts(case_id: PathId, user: OptionalUser, session: SessionDep,
                      docs: Documents) -> list[DraftPublic]:
    """The case's drafts the user may open."""
    ca = await load_case_access(case_id, user, Action.view_case, session)
    drafts = await service.drafts_of(ca.case, ca.subject, session=session)
    return [await docs.drafts.public(DraftAccess(ca.case, ca.user, ca.participant, d),
                                     session=session) for d in drafts]


@router.get("/api/v1/drafts/{draft_id}", tags=["drafts"])
async def get_draft(da: DraftViewer, session: SessionDep, docs: Documents) -> DraftPublic:
    """The draft rendered to HTML and plain text, its version, whether frozen, and approvals."""
    return await docs.drafts.public(da, session=session)


@router.post("/api/v1/drafts/{draft_id}/approve", tags=["drafts"])
async def approve_draft(da: DraftApprover, session: SessionDep, docs: Documents) -> DraftPublic:
    """A party approves the current version; a later edit clears it."""
    await docs.drafts.approve(da, session=session)
    await session.commit()
    return await docs.drafts.public(da, session=session)


@router.post("/api/v1/drafts/{draft_id}/freeze", tags=["drafts"])
async def freeze_draft(da: DraftFreezer, session: SessionDep, docs: Documents) -> FreezeResult:
    """Freeze for signature (all parties approved the current version); returns its SHA-256."""
    digest, version = await docs.drafts.freeze(da, session=session)
    return FreezeResult(sha256=digest, version=version)


@router.get("/api/v1/drafts/{draft_id}/versions", tags=["drafts"])
async def draft_versions(da: DraftViewer, session: SessionDep, docs: Documents
                         ) -> list[VersionPublic]:
    """Kept versions: created, each approval, frozen."""
    return await docs.drafts.versions(da, session=session)


@router.get("/api/v1/drafts/{draft_id}/diff", tags=["drafts"], responses=refusals(404))
async def draft_diff(
    da: DraftViewer, session: SessionDep, docs: Documents,
    from_version: Annotated[int, Query(alias="from", ge=0)],
    to_version: Annotated[int, Query(alias="to", ge=0)],
) -> DiffPublic:
    """What changed between two kept versions, line by line."""
    return await docs.drafts.diff(da, from_version, to_version, session=session)


# --- page ---------------------------------------------------------------------------------------

def user_colour(user_id: int) -> str:
    """A stable, readable cursor colour per person."""
    hue = int(hashlib.sha256(str(user_id).encode()).hexdigest()[:4], 16) % 360
    return _hsl_to_hex(hue, 0.65, 0.42)


def _hsl_to_hex(h: float, s: float, lightness: float) -> str:
    r, g, b = colorsys.hls_to_rgb(h / 360, lightness, s)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


@router.get("/drafts/{draft_id}", include_in_schema=False)
async def draft_page(draft_id: PathId, request: Request, user: OptionalUser,
                     session: SessionDep, tr: Tr, svc: ServicesDep) -> Response:
    if user is None:
        return RedirectResponse(f"/login?next=/drafts/{draft_id}", status_code=303)
    da = await load_draft_access(draft_id, user, DraftAction.view_draft, session)
    scheme = "wss" if request.url.scheme == "https" else "ws"
    pages: Pages = request.app.state.pages
    return pages.render(
        request, "draft.html", tr, user,
        draft=da.draft, case=da.case,
        can_write=da.may(DraftAction.edit_draft),
        can_approve=da.may(DraftAction.approve_draft),
        can_freeze=da.may(DraftAction.freeze_draft),
        ws_url=f"{scheme}://{request.url.netloc}/ws/drafts",
        user_name=user.name, user_color=user_colour(user.id or 0),
    )


@router.post("/cases/{case_id}/drafts", include_in_schema=False)
async def create_draft_form(case_id: PathId, request: Request, user: OptionalUser,
                            session: SessionDep, docs: Documents, tr: Tr) -> Response:
    values = await read_form(request)
    ca = await load_case_access(case_id, user, Action.view_case, session)
    access.check_draft(DraftAction.create_draft, ca.subject, ca.case, None)
    try:
        data = parse(DraftCreate, {"language": values.get("language", "")}, tr)
    except FormInvalid:
        data = DraftCreate(language=ca.case.language)
    draft = await docs.drafts.create(ca.case, data, creator=ca.user, session=session)
    await session.commit()
    return RedirectResponse(f"/drafts/{draft.id}", status_code=303)


# --- WebSocket ----------------------------------------------------------------------------------

class SocketConnection:
    """A draft room's view of one WebSocket."""

    def __init__(self, websocket: WebSocket, user_id: int, can_write: bool) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self.can_write = can_write
        self.direct = direct_frames(websocket)

    async def send(self, data: bytes) -> None:
        if self.direct is None or not self.direct.send(data):
            await self.websocket.send_bytes(data)

    async def close(self, code: int = 1011, reason: str = "") -> None:
        await self.websocket.close(code=code, reason=reason)


class DraftSocketShortcut:
    """Serves ``/ws/drafts/{id}`` straight from the server, in front of the middleware stack.

    Every message a draft room forwards went through six layers of ASGI middleware wrappers
    (errors, telemetry, body limits, exceptions) that do nothing for a WebSocket; at typing
    rates that was a quarter of the server's CPU. Everything else goes to the app as usual.
    """

    PREFIX = "/ws/drafts/"

    def __init__(self, inner: ASGIApp, app: ASGIApp) -> None:
        self.inner = inner
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "websocket" and path.startswith(self.PREFIX):
            tail = path[len(self.PREFIX):]
            if tail.isdigit() and 1 <= int(tail) <= MAX_ID:
                scope["app"] = self.app
                await draft_socket(WebSocket(scope, receive, send), int(tail))
                return
        await self.inner(scope, receive, send)


@router.websocket("/ws/drafts/{draft_id}")
async def draft_socket(websocket: WebSocket, draft_id: PathId) -> None:
    """y-websocket protocol; authorised before accept, writes checked on every message."""
    svc: Services = websocket.app.state.services
    docs: DocumentsRuntime = websocket.app.state.documents
    if not await serve_here(websocket, svc.cluster, "draft", draft_id, _unavailable):
        return  # relayed to the process that owns the draft, or refused for now
    async with svc.reader() as session:
        try:
            user = await websocket_user(websocket, session)
            da = await load_draft_access(draft_id, user, DraftAction.view_draft, session)
        except Refused:
            await websocket.close(code=POLICY)
            return
        can_write = da.may(DraftAction.edit_draft)
        user_id = da.user.id or 0
    await websocket.accept()
    connection = SocketConnection(websocket, user_id, can_write)
    refused_logged = False
    async with docs.rooms.use(draft_id) as room:
        await docs.rooms.connect(room, connection)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None:
                    await websocket.close(code=MALFORMED)
                    break
                try:
                    await docs.rooms.receive(room, connection, data)
                except WriteRefused as refused:
                    if not refused_logged:
                        refused_logged = True
                        await _audit_refusal(svc, da, str(refused))
                except ProtocolError as exc:
                    code = TOO_LARGE if "too large" in str(exc) else MALFORMED
                    await websocket.close(code=code)
                    break
        except WebSocketDisconnect:
            pass
        finally:
            await docs.rooms.disconnect(room, connection)
            # A client that said goodbye (or vanished) needs no close frame from us.
            if (websocket.application_state == WebSocketState.CONNECTED
                    and websocket.client_state == WebSocketState.CONNECTED):
                try:
                    await websocket.close()
                except (RuntimeError, WebSocketDisconnect):
                    pass


async def _unavailable(websocket: WebSocket) -> None:
    """Redis is down or the draft is moving: the editor reconnects by itself (y-websocket)."""
    await websocket.accept()
    await websocket.close(code=CLOSE_TRY_AGAIN)


async def _audit_refusal(svc: Services, da: DraftAccess, reason: str) -> None:
    async with svc.maker() as session:
        await svc.audit.append(session, "draft.write_refused", actor_id=da.user.id,
                               case_id=da.case.id,
                               detail={"draft_id": da.draft.id, "reason": reason})
        await session.commit()
