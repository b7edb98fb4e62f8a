"""Live rooms: the room page and the signalling WebSocket (a thin adapter over ``LiveRoom``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect, WebSocketState

from odr import accounts, forgery
from odr.access import Action
from odr.deps import LANG_COOKIE, SESSION_COOKIE, CurrentUser, PathId, load_case_access
from odr.errors import N_, Refused, Unavailable
from odr.forwarding import CLOSE_TRY_AGAIN, serve_here
from odr.i18n import negotiate
from odr.openapi import refusals
from odr.pages import PageDep, case_access, login_redirect
from odr.schemas import MAX_ID, Input
from odr.services import Services
from rooms.check import Echoes
from rooms.live import Seat
from rooms.manager import RoomManager
from rooms.media import MediaRelay
from rooms.signalling import SignallingRefused
from rooms.turn import ice_servers_for

log = logging.getLogger("odr.rooms")
router = APIRouter()

CLOSE_POLICY = 1008
# Messages waiting for a slow client; beyond this it is disconnected (and may come back).
SEND_QUEUE = 1000


@asynccontextmanager
async def runtime(services: Services) -> AsyncIterator[RoomManager]:
    """Long-lived parts of the rooms (manager, media relay), kept on ``app.state.rooms``."""
    relay = MediaRelay(ice_servers=services.settings.ice_servers,
                       media_addresses=services.settings.media_addresses)
    echoes = Echoes(ice_servers=services.settings.ice_servers,
                    media_addresses=services.settings.media_addresses)
    manager = RoomManager(services, relay=relay, echoes=echoes)
    services.cases.status_listeners.append(manager.case_status_changed)
    services.cases.disconnectors.append(manager)
    try:
        yield manager
    finally:
        services.cases.disconnectors.remove(manager)
        services.cases.status_listeners.remove(manager.case_status_changed)
        await manager.close()


ROOM_PERMISSIONS = "camera=(self), microphone=(self), display-capture=(self), geolocation=()"


@router.get("/cases/{case_id}/room", include_in_schema=False)
async def room_page(case_id: PathId, p: PageDep) -> Response:
    """The live room of a case, for its participants once the session may be joined."""
    if p.user is None:
        return login_redirect(p.request)
    ca = await case_access(p, case_id, Action.join_session)
    participant = ca.participant
    assert participant is not None  # the policy lets only participants join
    config = {
        "case_id": case_id,
        "socket": f"/ws/rooms/{case_id}",
        "me": {"user_id": ca.user.id, "name": ca.user.name, "role": participant.role.value,
               "side": participant.side.value if participant.side else None},
        "ice_servers": ice_servers_for(p.svc.settings, participant.user_id),
        "grace_seconds": p.svc.settings.room_grace_seconds,
        "media": p.request.app.state.rooms.relay is not None,
    }
    response = p.render("room.html", case=ca.case, config=config)
    # The one page that may use the camera and microphone (every other page denies them).
    response.headers["permissions-policy"] = ROOM_PERMISSIONS
    return response


class EchoOffer(Input):
    sdp: str = Field(min_length=1, max_length=20_000)


class EchoAnswer(BaseModel):
    sdp: str


@router.get("/check", include_in_schema=False)
async def check_page(p: PageDep, back: PathId | None = None) -> Response:
    """The device check: camera, microphone, speaker and the connection to the media relay,
    each with what to do when it does not work. Linked from the room and the reminders."""
    if p.user is None:
        return login_redirect(p.request)
    manager: RoomManager = p.request.app.state.rooms
    config = {"ice_servers": ice_servers_for(p.svc.settings, p.user.id or 0),
              "echo": "/api/v1/check/echo", "media": manager.echoes is not None}
    response = p.render("check.html", config=config,
                        back=f"/cases/{back}/room" if back else None)
    response.headers["permissions-policy"] = ROOM_PERMISSIONS
    return response


@router.post("/api/v1/check/echo", tags=["rooms"], responses=refusals(400, 401, 503))
async def check_echo(offer: EchoOffer, user: CurrentUser, request: Request) -> EchoAnswer:
    """A short call for the device check: the server sends back the sound it receives, for
    30 seconds at most (one call per person; a new one ends the last)."""
    manager: RoomManager = request.app.state.rooms
    if manager.echoes is None:
        raise Unavailable(N_("Video and sound are not available on this server."))
    try:
        return EchoAnswer(sdp=await manager.echoes.answer(user.id or 0, offer.sdp))
    except SignallingRefused as exc:
        raise Refused(N_("The browser's offer could not be used."), field="sdp") from exc


@router.websocket("/ws/rooms/{case_id}")
async def room_socket(websocket: WebSocket, case_id: int) -> None:
    """Signalling: authorised with the access policy before accept, refused with 1008."""
    svc: Services = websocket.app.state.services
    manager: RoomManager = websocket.app.state.rooms
    if not 1 <= case_id <= MAX_ID or not forgery.from_our_pages(websocket.headers, svc.settings):
        await websocket.close(code=CLOSE_POLICY)
        return
    if not await serve_here(websocket, svc.cluster, "room", case_id, _unavailable):
        return  # relayed to the process that owns the room, or refused for now
    token = websocket.cookies.get(SESSION_COOKIE)
    async with svc.reader() as session:
        found = await accounts.session_user(token, session=session) if token else None
        user = found[1] if found else None
        try:
            ca = await load_case_access(case_id, user, Action.join_session, session)
        except Refused:
            await websocket.close(code=CLOSE_POLICY)
            return
    participant = ca.participant
    if participant is None:  # pragma: no cover - the policy admits participants only
        await websocket.close(code=CLOSE_POLICY)
        return
    language = negotiate(websocket.cookies.get(LANG_COOKIE) or ca.user.language,
                         websocket.headers.get("accept-language"),
                         svc.settings.default_language)
    await websocket.accept()

    outbox: asyncio.Queue[dict[str, Any] | int] = asyncio.Queue(SEND_QUEUE)

    def send(message: dict[str, Any]) -> None:
        try:
            outbox.put_nowait(message)
        except asyncio.QueueFull:
            seat.closed = True
            log.warning("room %s: user %s is too slow; disconnected", case_id, seat.user_id)
            while not outbox.empty():
                outbox.get_nowait()
            outbox.put_nowait(1013)

    async def close(code: int) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            outbox.put_nowait(code)

    seat = Seat(
        user_id=ca.user.id or 0, name=ca.user.name, role=participant.role.value,
        side=participant.side.value if participant.side else None,
        tr=svc.catalogues.get(language), send=send, close=close,
    )
    writer = asyncio.create_task(_write(websocket, outbox))
    live = await manager.connect(case_id, seat)
    try:
        while not seat.closed:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                break
            text = frame.get("text")
            await live.handle(seat, text if text is not None else "")
    except WebSocketDisconnect:
        pass
    finally:
        await live.detach(seat)
        await close(1000)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(writer, timeout=5)
        if not writer.done():
            writer.cancel()


async def _unavailable(websocket: WebSocket) -> None:
    """Nobody can tell which process holds the room (Redis is down), or it is moving: the page
    says so and tries again, rather than a second copy of the room starting here."""
    svc: Services = websocket.app.state.services
    tr = svc.catalogues.get(negotiate(websocket.cookies.get(LANG_COOKIE),
                                      websocket.headers.get("accept-language"),
                                      svc.settings.default_language))
    await websocket.accept()
    await websocket.send_text(json.dumps({
        "type": "error", "code": "unavailable", "about": None,
        "message": tr.gettext(N_("The room cannot be reached for a moment; trying again.")),
    }, ensure_ascii=False))
    await websocket.close(code=CLOSE_TRY_AGAIN)


async def _write(websocket: WebSocket, outbox: asyncio.Queue[dict[str, Any] | int]) -> None:
    """Send queued messages in order; an int in the queue closes the socket with that code."""
    try:
        while True:
            item = await outbox.get()
            if isinstance(item, int):
                if websocket.application_state == WebSocketState.CONNECTED:
                    await websocket.close(code=item)
                return
            await websocket.send_text(json.dumps(item, ensure_ascii=False))
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the client went away; the reader sees it too
