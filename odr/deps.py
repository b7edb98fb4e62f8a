"""What handlers need, named as ``Annotated`` types: the database session, the user, the case.

Case dependencies load and check with the access policy at once (``CaseFor(Action.x)``), so a
route body never sees a case its user may not act on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request, WebSocket
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import access, accounts, cases, forgery
from odr.access import Action, GlobalAction, Subject
from odr.errors import N_, Forbidden, Unauthenticated
from odr.i18n import Translator, negotiate
from odr.models import AuthSession, Case, Participant, User
from odr.openapi import refuses
from odr.schemas import MAX_ID
from odr.services import Services
from odr.settings import Settings

# A row id in a path; anything else is a 422 before any query runs.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
# The same in a query string (PostgreSQL refuses an id beyond its integer: a 500, not a 404).
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]

SESSION_COOKIE = "odr_session"
LANG_COOKIE = "odr_lang"


# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread hop per request each.
async def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]


# Requests that by HTTP's rules change nothing run in read-only transactions, which never wait
# for a writer (``db.make_read_engine``); the few reads that record something (an API token's
# last use) do so in a short transaction of their own.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


_WRITES = "odr_writes_when_read"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def writes_when_read(endpoint: Endpoint) -> Endpoint:
    """Mark a GET route that may write (the agreement made on its first view, a seal that failed
    tried again): its session is a writer's, taking the write lock at BEGIN like a POST's."""
    setattr(endpoint, _WRITES, True)
    return endpoint


def writes(request: Request) -> bool:
    if request.method not in READ_METHODS:
        return True
    route = request.scope.get("route")  # set by the router before any dependency runs
    return bool(getattr(getattr(route, "endpoint", None), _WRITES, False))


async def db_session(request: Request, svc: ServicesDep) -> AsyncIterator[AsyncSession]:
    maker = svc.maker if writes(request) else svc.reader
    async with maker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(db_session)]


@dataclass
class Auth:
    user: User | None
    browser: AuthSession | None = None
    by_token: bool = False


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@refuses(401, unsafe=(403,))  # a token that is not valid; a cookie write that may be forged
async def auth(request: Request, session: SessionDep) -> Auth:
    """The caller: a bearer API token, else the session cookie, else nobody."""
    cached: Auth | None = getattr(request.state, "auth", None)
    if cached is not None:
        return cached
    result = Auth(None)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = await accounts.api_token_user(header[7:].strip(), session=session,
                                             maker=request.app.state.services.maker)
        if user is None:
            raise Unauthenticated(N_("The API token is not valid."))
        result = Auth(user, by_token=True)
    elif token := request.cookies.get(SESSION_COOKIE):
        found = await accounts.session_user(token, session=session)
        if found:
            result = Auth(found[1], browser=found[0])
    if result.browser is not None and request.method in forgery.UNSAFE:
        _check_api_csrf(request, result.browser)
    request.state.auth = result
    # Kept as a plain string: an error handler picks the language after a rollback, when the
    # user object can no longer be read.
    request.state.user_language = result.user.language if result.user else None
    return result


async def websocket_user(websocket: WebSocket, session: AsyncSession) -> User | None:
    """The user behind a WebSocket: a bearer token, else the session cookie from our own pages.

    ``session`` is a read-only one (``Services.reader``): the socket's own writes come later.

    Browsers send cookies with cross-site WebSocket handshakes too, so a cookie only counts when
    the page that opened the socket is ours (the same rule as for forms, ``forgery``).
    """
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return await accounts.api_token_user(header[7:].strip(), session=session,
                                             maker=websocket.app.state.services.maker)
    token = websocket.cookies.get(SESSION_COOKIE)
    if not token or not forgery.from_our_pages(websocket.headers, websocket_settings(websocket)):
        return None
    found = await accounts.session_user(token, session=session)
    return found[1] if found else None


def websocket_settings(websocket: WebSocket) -> Settings:
    settings: Settings = websocket.app.state.services.settings
    return settings


def _check_api_csrf(request: Request, browser: AuthSession) -> None:
    """Cookie-authenticated API writes must come from our pages, not a foreign page's form.

    The origin was checked for every unsafe request (``forgery.guard``). Beyond it, the write
    carries the session's token in ``X-CSRF-Token`` (our pages' scripts read it from the page,
    never from a cookie), or is a JSON body: a browser sends JSON to another origin only after
    a CORS preflight, which we never grant, so no other page can make one. Page forms check
    their own field (``forms.read_form``).
    """
    if not request.url.path.startswith("/api/"):
        return
    settings: Settings = request.app.state.services.settings
    if request.headers.get("content-type", "").startswith("application/json"):
        return
    if forgery.token_valid(request.headers.get("x-csrf-token", ""), request, browser, settings):
        return
    raise Forbidden(forgery.FORGED)


AuthDep = Annotated[Auth, Depends(auth)]


async def optional_user(a: AuthDep) -> User | None:
    return a.user


@refuses(401)
async def current_user(a: AuthDep) -> User:
    if a.user is None:
        raise Unauthenticated(N_("Please sign in first."))
    return a.user


OptionalUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(current_user)]


def language_of(request: Request, user_language: str | None, default: str) -> str:
    chosen = request.cookies.get(LANG_COOKIE) or user_language
    return negotiate(chosen, request.headers.get("accept-language"), default)


async def translator(request: Request, svc: ServicesDep, user: OptionalUser) -> Translator:
    language = user.language if user else None
    tr = svc.catalogues.get(language_of(request, language, svc.settings.default_language))
    request.state.translator = tr
    return tr


Tr = Annotated[Translator, Depends(translator)]


@dataclass
class CaseAccess:
    """A case together with who is asking and what they are in it; already checked."""

    case: Case
    user: User
    participant: Participant | None

    @property
    def subject(self) -> Subject:
        return Subject(self.user, self.participant)


async def load_case_access(
    case_id: int, user: User | None, action: Action, session: AsyncSession
) -> CaseAccess:
    """Load a case and check ``action`` on it with the policy (used by WebSockets too)."""
    if user is None:
        raise Unauthenticated(N_("Please sign in first."))
    case = await cases.get_case(case_id, session=session)
    participant = await cases.participant_of(case_id, user.id, session=session)
    registered = participant is None and await cases.registered_mediator(user.id, session=session)
    access.check(action, Subject(user, participant), case, registered_mediator=registered)
    return CaseAccess(case, user, participant)


# What the access policy answers about a case or draft: not signed in, not allowed, not there
# (or not the caller's to see), not now. Viewing is refused only the first and third ways.
POLICY_REFUSALS = (401, 403, 404, 409)
VIEW_REFUSALS = (401, 404)


def case_for(action: Action) -> Callable[..., Coroutine[Any, Any, CaseAccess]]:
    @refuses(*(VIEW_REFUSALS if action is Action.view_case else POLICY_REFUSALS))
    async def dependency(case_id: PathId, user: OptionalUser, session: SessionDep) -> CaseAccess:
        return await load_case_access(case_id, user, action, session)

    return dependency


def allowed(action: GlobalAction) -> Callable[..., Coroutine[Any, Any, User]]:
    @refuses(401, 403)
    async def dependency(user: OptionalUser) -> User:
        access.check_global(action, user)
        assert user is not None
        return user

    return dependency


CaseViewer = Annotated[CaseAccess, Depends(case_for(Action.view_case))]
CaseInviter = Annotated[CaseAccess, Depends(case_for(Action.invite))]
CaseTaker = Annotated[CaseAccess, Depends(case_for(Action.accept_case))]
CaseConsenter = Annotated[CaseAccess, Depends(case_for(Action.consent))]
CaseScheduler = Annotated[CaseAccess, Depends(case_for(Action.schedule_session))]
CaseRevoker = Annotated[CaseAccess, Depends(case_for(Action.revoke_invitation))]
CaseRemover = Annotated[CaseAccess, Depends(case_for(Action.remove_participant))]
Administrator = Annotated[User, Depends(allowed(GlobalAction.manage_register))]
Requester = Annotated[User, Depends(allowed(GlobalAction.request_mediation))]
OutboxReader = Annotated[User, Depends(allowed(GlobalAction.read_outbox))]
AuditVerifier = Annotated[User, Depends(allowed(GlobalAction.verify_audit))]
OpenRequestsViewer = Annotated[User, Depends(allowed(GlobalAction.list_open_requests))]
