"""The JSON API under ``/api/v1`` (see DESIGN.md section 8). Thin: logic is in the services."""

from __future__ import annotations

from zoneinfo import available_timezones

from fastapi import APIRouter, BackgroundTasks, Request, Response, status

from odr import accounts, cases, closing, invitations, mail, register
from odr.cookies import clear_session, set_session, sign_in
from odr.deps import (
    SESSION_COOKIE,
    Administrator,
    AuditVerifier,
    AuthDep,
    CaseConsenter,
    CaseInviter,
    CaseRemover,
    CaseRevoker,
    CaseScheduler,
    CaseTaker,
    CaseViewer,
    CurrentUser,
    OpenRequestsViewer,
    OptionalUser,
    OutboxReader,
    PathId,
    Requester,
    ServicesDep,
    SessionDep,
    Tr,
    client_ip,
)
from odr.errors import N_, Forbidden, Refused
from odr.models import AccountRole, Category, Court, MediatorKind, OutboxMail, User
from odr.openapi import refusals
from odr.password_reset import RESET_REQUESTED
from odr.schemas import (
    AuditReport,
    CaseClose,
    CaseCreate,
    CaseEventPublic,
    CasePublic,
    CourtIn,
    CourtPublic,
    FeedbackIn,
    FeedbackSummaryPublic,
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationPublic,
    Language,
    Login,
    MediatorProfileIn,
    MediatorPublic,
    Notice,
    ParticipantRemoval,
    PasswordResetConfirm,
    PasswordResetRequest,
    ProfileUpdate,
    Region,
    Registration,
    SessionCreate,
    SessionPublic,
    SignupConfirm,
    StatusChange,
    TokenCreate,
    TokenCreated,
    UserPublic,
)
from odr.signup import SIGNUP_REQUESTED

router = APIRouter(prefix="/api/v1")


def user_public(user: User) -> UserPublic:
    return UserPublic.model_validate(user)


# --- accounts -------------------------------------------------------------------------------

@router.post("/auth/register", status_code=status.HTTP_202_ACCEPTED, tags=["accounts"])
async def register_account(
    data: Registration, request: Request, svc: ServicesDep, tr: Tr, background: BackgroundTasks,
) -> Notice:
    """Ask for an account: the same answer for any address; the link to finish is mailed."""
    background.add_task(svc.signups.request, data, ip=client_ip(request), language=tr.language)
    return Notice(detail=tr.gettext(SIGNUP_REQUESTED))


@router.post("/auth/register/confirm", status_code=status.HTTP_201_CREATED, tags=["accounts"],
             responses=refusals(400, 409))
async def confirm_registration(
    data: SignupConfirm, request: Request, response: Response, svc: ServicesDep,
    session: SessionDep,
) -> UserPublic:
    """Create the account with the link from the confirmation mail, and sign in."""
    user = await svc.signups.complete(data.token, session=session)
    await sign_in(response, user, request=request, session=session, settings=svc.settings)
    return user_public(user)


@router.post("/auth/password-reset", status_code=status.HTTP_202_ACCEPTED, tags=["accounts"])
async def request_password_reset(
    data: PasswordResetRequest, request: Request, svc: ServicesDep, tr: Tr,
    background: BackgroundTasks,
) -> Notice:
    """Ask for a password reset link: the same answer whether or not the address has an account."""
    background.add_task(svc.password_resets.request, data.email, ip=client_ip(request),
                        language=tr.language)
    return Notice(detail=tr.gettext(RESET_REQUESTED,
                                    minutes=svc.settings.password_reset_minutes))


@router.post("/auth/password-reset/confirm", tags=["accounts"], responses=refusals(400))
async def reset_password(
    data: PasswordResetConfirm, request: Request, response: Response, svc: ServicesDep,
    session: SessionDep,
) -> UserPublic:
    """Set a new password with the mailed link; ends every session, signs this client in."""
    user = await svc.password_resets.complete(data.token, data.password, ip=client_ip(request),
                                              session=session)
    await sign_in(response, user, request=request, session=session, settings=svc.settings)
    return user_public(user)


@router.post("/auth/login", tags=["accounts"], responses=refusals(401, 429))
async def login(
    data: Login, request: Request, response: Response, svc: ServicesDep, session: SessionDep
) -> UserPublic:
    """Sign in with e-mail and password; sets the session cookie."""
    user = await accounts.authenticate(
        data.email, data.password, ip=client_ip(request), session=session,
        hashing=svc.hashing, settings=svc.settings,
    )
    await sign_in(response, user, request=request, session=session, settings=svc.settings)
    return user_public(user)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["accounts"])
async def logout(
    request: Request, response: Response, a: AuthDep, svc: ServicesDep, session: SessionDep
) -> None:
    """End this browser's session."""
    if token := request.cookies.get(SESSION_COOKIE):
        await accounts.end_session(token, session=session)
        await session.commit()
    clear_session(response, svc.settings)


@router.get("/me", tags=["accounts"])
async def me(user: CurrentUser) -> UserPublic:
    """The signed-in user."""
    return user_public(user)


@router.patch("/me", tags=["accounts"], responses=refusals(400))
async def update_me(data: ProfileUpdate, user: CurrentUser, session: SessionDep) -> UserPublic:
    """Change one's name, language or time zone."""
    if data.timezone is not None and data.timezone not in available_timezones():
        raise Refused(N_("Unknown time zone."), field="timezone")
    for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(user, field, value)
    session.add(user)
    await session.commit()
    return user_public(user)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, tags=["accounts"])
async def create_token(data: TokenCreate, user: CurrentUser, session: SessionDep) -> TokenCreated:
    """A personal API token (shown once) for court systems and scripts."""
    token, row = await accounts.create_api_token(user, data.name, session=session)
    await session.commit()
    return TokenCreated(id=row.id or 0, name=row.name, token=token)


# --- register -------------------------------------------------------------------------------

@router.get("/mediators", tags=["register"])
async def mediators(
    session: SessionDep,
    language: Language | None = None,
    region: Region | None = None,
    specialisation: Category | None = None,
    kind: MediatorKind | None = None,
) -> list[MediatorPublic]:
    """Search the public register of mediators."""
    return await register.search_mediators(
        session=session, language=language, region=region, specialisation=specialisation,
        kind=kind,
    )


@router.get("/courts", tags=["register"])
async def list_courts(session: SessionDep) -> list[CourtPublic]:
    """Courts that receive filed agreements."""
    return [CourtPublic.model_validate(c) for c in await register.courts(session=session,
                                                                         active_only=True)]


@router.put("/admin/mediators/{user_id}", tags=["admin"], responses=refusals(400, 404))
async def save_mediator(
    user_id: PathId, data: MediatorProfileIn, admin: Administrator, svc: ServicesDep,
    session: SessionDep,
) -> MediatorPublic:
    """Create or change a mediator's entry in the register."""
    profile = await register.save_profile(user_id, data, actor=admin, session=session,
                                          audit=svc.audit)
    user = await session.get(User, user_id)
    await session.commit()
    assert user is not None
    return register.mediator_public(profile, user)


@router.post("/admin/courts", status_code=status.HTTP_201_CREATED, tags=["admin"])
async def create_court(
    data: CourtIn, admin: Administrator, svc: ServicesDep, session: SessionDep
) -> CourtPublic:
    """Add a court."""
    court = await register.save_court(data, actor=admin, session=session, audit=svc.audit)
    await session.commit()
    return CourtPublic.model_validate(court)


@router.put("/admin/courts/{court_id}", tags=["admin"], responses=refusals(404))
async def update_court(
    court_id: PathId, data: CourtIn, admin: Administrator, svc: ServicesDep, session: SessionDep
) -> CourtPublic:
    """Change a court."""
    court: Court = await register.save_court(data, actor=admin, session=session,
                                             audit=svc.audit, court_id=court_id)
    await session.commit()
    return CourtPublic.model_validate(court)


@router.post("/admin/courts/{court_id}/clerks/{user_id}", tags=["admin"],
             responses=refusals(400, 404))
async def assign_clerk(
    court_id: PathId, user_id: PathId, admin: Administrator, svc: ServicesDep, session: SessionDep
) -> UserPublic:
    """Make an account a clerk of a court."""
    user = await register.assign_clerk(user_id, court_id, actor=admin, session=session,
                                       audit=svc.audit)
    await session.commit()
    return user_public(user)


@router.get("/admin/outbox", tags=["admin"])
async def read_outbox(
    session: SessionDep,
    user: OutboxReader,
) -> list[dict[str, object]]:
    """Mail the platform has sent or kept (the outbox, when no SMTP server is configured)."""
    rows: list[OutboxMail] = await mail.outbox(session)
    return [r.model_dump(mode="json") for r in rows]


@router.get("/admin/audit/verify", tags=["admin"])
async def verify_audit(
    session: SessionDep,
    user: AuditVerifier,
    svc: ServicesDep,
    tr: Tr,
) -> AuditReport:
    """Check the audit log's hash chain and its sealed newest entry."""
    report = await svc.audit.verify(session)
    return AuditReport(entries=report.entries, intact=report.intact,
                       problems=report.problems(tr.gettext))


# --- cases ----------------------------------------------------------------------------------

@router.post("/cases", status_code=status.HTTP_201_CREATED, tags=["cases"],
             responses=refusals(400))
async def request_mediation(
    data: CaseCreate, user: Requester, svc: ServicesDep, session: SessionDep
) -> CasePublic:
    """Request mediation; the requester is side A and has consented by asking."""
    case = await svc.cases.request(data, requester=user, session=session)
    await session.commit()
    return await cases.case_public(case, session=session)


@router.get("/cases", tags=["cases"])
async def my_cases(user: CurrentUser, session: SessionDep) -> list[CasePublic]:
    """The cases the user takes part in."""
    return [await cases.case_public(c, session=session)
            for c in await cases.cases_of(user, session=session)]


@router.get("/cases/open", tags=["cases"])
async def open_requests(
    session: SessionDep,
    user: OpenRequestsViewer,
) -> list[CasePublic]:
    """Requests a registered mediator may take."""
    return [await cases.case_public(c, session=session)
            for c in await cases.open_requests(user, session=session)]


@router.get("/cases/{case_id}", tags=["cases"])
async def get_case(ca: CaseViewer, session: SessionDep) -> CasePublic:
    """One case, if the user takes part in it."""
    return await cases.case_public(ca.case, session=session)


@router.get("/cases/{case_id}/events", tags=["cases"])
async def case_events(ca: CaseViewer, session: SessionDep) -> list[CaseEventPublic]:
    """The case's timeline."""
    return [CaseEventPublic.model_validate(e)
            for e in await cases.timeline(ca.case, session=session)]


@router.post("/cases/{case_id}/accept", tags=["cases"])
async def accept_case(ca: CaseTaker, svc: ServicesDep, session: SessionDep) -> CasePublic:
    """A registered mediator takes the case."""
    await svc.cases.accept(ca.case, mediator=ca.user, session=session)
    await session.commit()
    return await cases.case_public(ca.case, session=session)


@router.post("/cases/{case_id}/close", tags=["cases"], responses=refusals(403, 409))
async def close_case(data: CaseClose, ca: CaseViewer, svc: ServicesDep, session: SessionDep
                     ) -> CasePublic:
    """The mediator closes the case with its outcome and a reason; each party is then asked
    for feedback (by e-mail, and on the case page)."""
    await closing.close(ca.case, data, subject=ca.subject, svc=svc, session=session)
    await session.commit()
    await svc.mailer.deliver_pending()
    return await cases.case_public(ca.case, session=session)


@router.post("/cases/{case_id}/feedback", status_code=status.HTTP_204_NO_CONTENT,
             tags=["cases"], responses=refusals(404, 409))
async def give_feedback(data: FeedbackIn, ca: CaseViewer, session: SessionDep) -> Response:
    """A party's answer on a closed case, once; it is kept without their name."""
    await closing.answer(ca.case, ca.user, data, session=session)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/feedback", tags=["accounts"], responses=refusals(403))
async def my_feedback(user: CurrentUser, session: SessionDep) -> FeedbackSummaryPublic:
    """For a mediator: what the parties of their closed cases answered, without names."""
    if user.role != AccountRole.mediator:
        raise Forbidden(N_("Only mediators receive feedback."))
    return await closing.summary_for(user, session=session)


@router.post("/cases/{case_id}/consent", tags=["cases"])
async def consent(ca: CaseConsenter, svc: ServicesDep, session: SessionDep) -> CasePublic:
    """A party consents to mediation."""
    assert ca.participant is not None
    await svc.cases.consent(ca.case, ca.participant, user=ca.user, session=session)
    await session.commit()
    return await cases.case_public(ca.case, session=session)


# The dependency only lets the case be seen; the change itself is asked of the policy.
@router.post("/cases/{case_id}/status", tags=["cases"], responses=refusals(403, 409))
async def change_status(
    data: StatusChange, ca: CaseViewer, svc: ServicesDep, session: SessionDep
) -> CasePublic:
    """Decline, withdraw, start the session, or end without agreement."""
    await svc.cases.change_status(ca.case, data.status, subject=ca.subject, session=session,
                                  reason=data.reason)
    await session.commit()
    return await cases.case_public(ca.case, session=session)


@router.post("/cases/{case_id}/invitations", status_code=status.HTTP_201_CREATED, tags=["cases"],
             responses=refusals(400))
async def invite(
    data: InvitationCreate, ca: CaseInviter, svc: ServicesDep, session: SessionDep, tr: Tr,
    background: BackgroundTasks,
) -> InvitationCreated:
    """Invite a person by e-mail; the answer holds the link to pass on another way too."""
    assert ca.participant is not None
    sent = await svc.invitations.invite(
        ca.case, data, inviter=ca.user, inviter_role=ca.participant.role, session=session,
        translator=svc.catalogues.get(ca.case.language),
    )
    await session.commit()
    background.add_task(svc.mailer.deliver_pending)
    inv = sent.invitation
    return InvitationCreated(id=inv.id or 0, email=inv.email, role=inv.role, side=inv.side,
                             link=sent.link, expires_at=inv.expires_at, mailed=sent.mailed)


@router.get("/cases/{case_id}/invitations", tags=["cases"])
async def pending_invitations(ca: CaseRevoker, session: SessionDep) -> list[InvitationPublic]:
    """The case's invitations that can still be accepted (for the mediator, who may revoke)."""
    return [InvitationPublic.model_validate(i)
            for i in await invitations.pending(ca.case, session=session)]


@router.post("/cases/{case_id}/invitations/{invitation_id}/revoke", tags=["cases"])
async def revoke_invitation(
    invitation_id: PathId, ca: CaseRevoker, svc: ServicesDep, session: SessionDep
) -> InvitationPublic:
    """The mediator revokes a pending invitation; its link is refused from then on."""
    row = await svc.invitations.revoke(ca.case, invitation_id, subject=ca.subject,
                                       session=session)
    await session.commit()
    return InvitationPublic.model_validate(row)


@router.post("/cases/{case_id}/participants/{user_id}/remove", tags=["cases"])
async def remove_participant(
    user_id: PathId, data: ParticipantRemoval, ca: CaseRemover, svc: ServicesDep,
    session: SessionDep,
) -> CasePublic:
    """The mediator removes a participant (by user id), with a reason the timeline shows;
    their open room and draft connections close with code 4403."""
    await svc.cases.remove_participant(ca.case, user_id, data.reason, subject=ca.subject,
                                       session=session)
    await session.commit()
    return await cases.case_public(ca.case, session=session)


@router.post("/invitations/{token}/accept", tags=["cases"],
             responses=refusals(400, 403, 404, 409))
async def accept_invitation(
    token: str, request: Request, response: Response, user: OptionalUser, svc: ServicesDep,
    session: SessionDep, data: InvitationAccept | None = None,
) -> CasePublic:
    """Accept an invitation: binds the signed-in user, or creates the invited person's account."""
    result = await svc.invitations.accept(token, data or InvitationAccept(), user=user,
                                          session=session)
    if result.account_created:
        cookie, _ = await accounts.start_session(result.user, ip=client_ip(request),
                                                 session=session, settings=svc.settings)
        set_session(response, cookie, svc.settings)
    await session.commit()
    return await cases.case_public(result.case, session=session)


@router.post("/cases/{case_id}/sessions", status_code=status.HTTP_201_CREATED, tags=["cases"],
             responses=refusals(400))
async def schedule_session(
    data: SessionCreate, ca: CaseScheduler, svc: ServicesDep, session: SessionDep
) -> SessionPublic:
    """The mediator schedules a session (the time is given with its zone; stored in UTC)."""
    row = await svc.cases.schedule(ca.case, data, mediator=ca.user, session=session)
    await session.commit()
    return SessionPublic.model_validate(row)


@router.get("/cases/{case_id}/sessions", tags=["cases"])
async def list_sessions(ca: CaseViewer, session: SessionDep) -> list[SessionPublic]:
    """Scheduled sessions of the case."""
    return [SessionPublic.model_validate(s)
            for s in await cases.scheduled_sessions(ca.case, session=session)]

