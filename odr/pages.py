"""The HTML pages: landing, sign-in, dashboard, request, case, invitation, register, admin.

Each handler reads the form, calls the same services as the API and renders a template; a form
with errors is shown again with each message beside its field (status 422).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from odr import (
    access,
    accounts,
    audit,
    cases,
    closing,
    invitations,
    mail,
    neutrality,
    organisations,
    register,
    timeline,
)
from odr.access import Action, GlobalAction
from odr.cookies import clear_session, set_language, set_session, sign_in
from odr.deps import (
    SESSION_COOKIE,
    CaseAccess,
    OptionalUser,
    PathId,
    ServicesDep,
    SessionDep,
    Tr,
    client_ip,
    load_case_access,
    writes_when_read,
)
from odr.errors import N_, Refused, Unauthenticated
from odr.forms import FormInvalid, parse, read_form, refusal_as_form_error
from odr.i18n import LANGUAGES, Translator
from odr.models import (
    AccountRole,
    Case,
    CaseRole,
    MediatorKind,
    MediatorProfile,
    Organisation,
    User,
)
from odr.password_reset import RESET_REQUESTED
from odr.schemas import (
    MAX_ID,
    CaseClose,
    CaseCreate,
    CourtIn,
    FeedbackIn,
    InvitationAccept,
    InvitationCreate,
    Login,
    MediatorProfileIn,
    NewPassword,
    ParticipantRemoval,
    PasswordResetRequest,
    ProfileUpdate,
    Registration,
    SessionCreate,
    StatusChange,
    TokenCreate,
)
from odr.services import Services
from odr.signup import SIGNUP_REQUESTED
from odr.templating import STATIC, Pages

router = APIRouter(include_in_schema=False)

@dataclass
class Page:
    """Everything a page handler needs about the request."""

    request: Request
    tr: Translator
    user: User | None
    svc: Services
    session: AsyncSession

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        pages: Pages = self.request.app.state.pages
        return pages.render(self.request, template, self.tr, self.user, status_code=status_code,
                            **context)

    def require_user(self) -> User:
        if self.user is None:
            raise Unauthenticated(N_("Please sign in first."))
        return self.user


async def page(request: Request, tr: Tr, user: OptionalUser, svc: ServicesDep,
               session: SessionDep) -> Page:
    return Page(request, tr, user, svc, session)


PageDep = Annotated[Page, Depends(page)]


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    return redirect("/login?next=" + quote(request.url.path))


def safe_next(value: str | None) -> str:
    """Only local paths, so a link cannot send a user off to another site after sign-in."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/dashboard"


# --- public -----------------------------------------------------------------------------------

@router.get("/")
async def landing(p: PageDep) -> Response:
    return p.render("landing.html")


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    # Browsers ask for it at the root whatever the page says: answered, not a 404 per page.
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/manifest.webmanifest", include_in_schema=False)
async def manifest(p: PageDep) -> Response:
    """What a phone needs to add the platform to its home screen, in the reader's language."""
    name = p.tr.gettext(N_("Online mediation"))
    icons = [{"src": f"/static/icon-{size}.png", "sizes": f"{size}x{size}", "type": "image/png"}
             for size in (192, 512)]
    icons.append({"src": "/static/icon-maskable-512.png", "sizes": "512x512",
                  "type": "image/png", "purpose": "maskable"})
    body = {"name": f"ODR · {name}", "short_name": "ODR", "lang": p.tr.language,
            "description": p.tr.gettext(N_("Ask for mediation, follow your case and meet the "
                                           "mediator online.")),
            "start_url": "/dashboard", "scope": "/", "display": "standalone",
            "background_color": "#f6f7f9", "theme_color": "#1858b8", "icons": icons}
    return JSONResponse(body, media_type="application/manifest+json",
                        headers={"Vary": "Cookie, Accept-Language"})


@router.get("/lang/{language}")
@writes_when_read  # a link, so that choosing a language works without a script
async def choose_language(language: str, p: PageDep, next: str = "/") -> Response:
    response = redirect(safe_next(next) if next != "/" else "/")
    if language in LANGUAGES:
        set_language(response, language, p.svc.settings)
        if p.user is not None:
            p.user.language = language
            p.session.add(p.user)
            await p.session.commit()
    return response


@router.get("/mediators")
async def mediators_page(
    p: PageDep, language: str = "", region: str = "", specialisation: str = "", kind: str = ""
) -> Response:
    kind_value = MediatorKind(kind) if kind in MediatorKind.__members__ else None
    found = await register.search_mediators(
        session=p.session, language=language or None, region=region or None,
        specialisation=specialisation or None, kind=kind_value,
    )
    return p.render("mediators.html", mediators=found, filters={
        "language": language, "region": region, "specialisation": specialisation, "kind": kind,
    })


# --- accounts ---------------------------------------------------------------------------------

@router.get("/login")
async def login_page(p: PageDep, next: str = "") -> Response:
    return p.render("login.html", next=safe_next(next), values={}, errors={})


@router.post("/login")
async def login_submit(p: PageDep) -> Response:
    values = await read_form(p.request)
    next_url = safe_next(values.get("next"))
    try:
        data = parse(Login, values, p.tr)
        user = await accounts.authenticate(
            data.email, data.password, ip=client_ip(p.request), session=p.session,
            hashing=p.svc.hashing, settings=p.svc.settings,
        )
    except (FormInvalid, Refused) as exc:
        return _account_form_error(p, "login.html", exc, values, next_url)
    response = redirect(next_url)
    await sign_in(response, user, request=p.request, session=p.session, settings=p.svc.settings)
    return response


def _account_form_error(p: PageDep, template: str, exc: FormInvalid | Refused,
                        values: dict[str, str], next_url: str) -> Response:
    """The sign-in or sign-up form again, with the reason beside its field."""
    if isinstance(exc, FormInvalid):
        return p.render(template, 422, next=next_url, values=exc.values, errors=exc.errors)
    err = refusal_as_form_error(exc, values, p.tr)
    return p.render(template, exc.status_code, next=next_url, values=values, errors=err.errors)


@router.get("/signup")
async def signup_page(p: PageDep, next: str = "") -> Response:
    return p.render("signup.html", next=safe_next(next), values={}, errors={})


@router.post("/signup")
async def signup_submit(p: PageDep, background: BackgroundTasks) -> Response:
    values = await read_form(p.request)
    values.setdefault("language", p.tr.language)
    next_url = safe_next(values.get("next"))
    try:
        data = parse(Registration, values, p.tr)
    except FormInvalid as exc:
        return _account_form_error(p, "signup.html", exc, values, next_url)
    # The same page for a new address and a known one; the mail does the rest (odr.signup).
    background.add_task(p.svc.signups.request, data, ip=client_ip(p.request),
                        language=p.tr.language, next_path=next_url)
    return _notice(p, N_("Create an account"), message=p.tr.gettext(SIGNUP_REQUESTED))


def _notice(p: PageDep, title: str, status_code: int = 200, **context: Any) -> Response:
    """A page that only says something, with at most one button (``action``)."""
    return p.render("notice.html", status_code, title=p.tr.gettext(title), **context)


def _link_refused(p: PageDep, title: str, exc: Refused) -> Response:
    return _notice(p, title, exc.status_code,
                   errors={"__all__": p.tr.gettext(exc.message, **exc.params)})


# A mailed link opens a page with a button rather than acting on GET: mail scanners and link
# previews fetch links, and must not use up the link or create the account.
@router.get("/signup/{token}")
async def signup_confirm_page(token: str, p: PageDep, next: str = "") -> Response:
    title = N_("Confirm your e-mail address")
    try:
        await p.svc.signups.check(token, session=p.session)
    except Refused as exc:
        return _link_refused(p, title, exc)
    return _notice(p, title, action=f"/signup/{quote(token)}", next=safe_next(next),
                   button=p.tr.gettext("Create my account"),
                   message=p.tr.gettext("Your address is confirmed once you press the button."))


@router.post("/signup/{token}")
async def signup_confirm_submit(token: str, p: PageDep) -> Response:
    values = await read_form(p.request)
    next_url = safe_next(values.get("next"))
    try:
        user = await p.svc.signups.complete(token, session=p.session)
    except Refused as exc:
        return _link_refused(p, N_("Confirm your e-mail address"), exc)
    response = redirect(next_url + ("&" if "?" in next_url else "?") + "done=welcome")
    await sign_in(response, user, request=p.request, session=p.session, settings=p.svc.settings)
    return response


@router.get("/password-reset")
async def password_reset_page(p: PageDep) -> Response:
    return p.render("password_reset.html", token=None, values={}, errors={})


@router.post("/password-reset")
async def password_reset_submit(p: PageDep, background: BackgroundTasks) -> Response:
    values = await read_form(p.request)
    try:
        data = parse(PasswordResetRequest, values, p.tr)
    except FormInvalid as exc:
        return p.render("password_reset.html", 422, token=None, values=exc.values,
                        errors=exc.errors)
    background.add_task(p.svc.password_resets.request, data.email, ip=client_ip(p.request),
                        language=p.tr.language)
    return _notice(p, N_("Choose a new password"), message=p.tr.gettext(
        RESET_REQUESTED, minutes=p.svc.settings.password_reset_minutes))


@router.get("/password-reset/{token}")
async def password_reset_form(token: str, p: PageDep) -> Response:
    try:
        await p.svc.password_resets.check(token, session=p.session)
    except Refused as exc:
        return _link_refused(p, N_("Choose a new password"), exc)
    return p.render("password_reset.html", token=token, values={}, errors={})


@router.post("/password-reset/{token}")
async def password_reset_confirm(token: str, p: PageDep) -> Response:
    values = await read_form(p.request)
    try:
        data = parse(NewPassword, values, p.tr)
        user = await p.svc.password_resets.complete(token, data.password,
                                                    ip=client_ip(p.request), session=p.session)
    except FormInvalid as exc:
        return p.render("password_reset.html", 422, token=token, values={}, errors=exc.errors)
    except Refused as exc:
        return _link_refused(p, N_("Choose a new password"), exc)
    response = redirect("/dashboard?done=password")
    await sign_in(response, user, request=p.request, session=p.session, settings=p.svc.settings)
    return response


@router.post("/logout")
async def logout_submit(p: PageDep) -> Response:
    await read_form(p.request)
    if token := p.request.cookies.get(SESSION_COOKIE):
        await accounts.end_session(token, session=p.session)
        await p.session.commit()
    response = redirect("/")
    clear_session(response, p.svc.settings)
    return response


@router.get("/settings")
async def settings_page(p: PageDep) -> Response:
    if p.user is None:
        return login_redirect(p.request)
    return p.render("settings.html", values={}, errors={}, timezones=sorted(available_timezones()),
                    new_token=None)


@router.post("/settings")
async def settings_submit(p: PageDep) -> Response:
    user = p.require_user()
    values = await read_form(p.request)
    zones = sorted(available_timezones())
    try:
        data = parse(ProfileUpdate, values, p.tr)
        if data.timezone is not None and data.timezone not in zones:
            raise FormInvalid({"timezone": p.tr.gettext(N_("Unknown time zone."))}, values)
        for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
            setattr(user, field, value)
        p.session.add(user)
        await p.session.commit()
    except FormInvalid as exc:
        return p.render("settings.html", 422, values=exc.values, errors=exc.errors,
                        timezones=zones, new_token=None)
    response = redirect("/settings?done=saved")
    if user.language:
        set_language(response, user.language, p.svc.settings)
    return response


@router.post("/settings/tokens")
async def token_submit(p: PageDep) -> Response:
    user = p.require_user()
    values = await read_form(p.request)
    zones = sorted(available_timezones())
    try:
        data = parse(TokenCreate, values, p.tr)
    except FormInvalid as exc:
        return p.render("settings.html", 422, values=exc.values, errors=exc.errors,
                        timezones=zones, new_token=None)
    token, _ = await accounts.create_api_token(user, data.name, session=p.session)
    await p.session.commit()
    return p.render("settings.html", values={}, errors={}, timezones=zones, new_token=token)


# --- cases ------------------------------------------------------------------------------------

@router.get("/dashboard")
async def dashboard(p: PageDep) -> Response:
    if p.user is None:
        return login_redirect(p.request)
    mine = await cases.cases_of(p.user, session=p.session)
    open_cases = (
        await cases.open_requests(p.user, session=p.session)
        if p.user.role == AccountRole.mediator else []
    )
    feedback = (await closing.summary_for(p.user, session=p.session)
                if p.user.role == AccountRole.mediator else None)
    return p.render("dashboard.html", cases=mine, open_cases=open_cases, feedback=feedback,
                    coordinated=await organisations.coordinated_by(p.user, session=p.session))


async def request_choices(session: AsyncSession) -> dict[str, Any]:
    """Whom the request form offers: the register's mediators, and the organisations."""
    return {"mediators": await register.search_mediators(session=session),
            "organisations": (await session.exec(select(Organisation).where(
                col(Organisation.active).is_(True)).order_by(col(Organisation.name)))).all()}


@router.get("/cases/new")
async def new_case_page(p: PageDep, mediator: str = "") -> Response:
    if p.user is None:
        return login_redirect(p.request)
    values: dict[str, Any] = {"language": p.tr.language}
    if mediator.isdigit():
        values["mediator_id"] = mediator
    return p.render("case_new.html", values=values, errors={},
                    **await request_choices(p.session))


@router.post("/cases/new")
async def new_case_submit(p: PageDep) -> Response:
    user = p.require_user()
    access.check_global(GlobalAction.request_mediation, user)
    values = await read_form(p.request)
    try:
        errors: dict[str, str] = {}
        if values.get("agree") != "yes":
            errors["agree"] = p.tr.gettext(N_("Mediation is voluntary: please confirm that you "
                                              "agree to it."))
        try:
            data = parse(CaseCreate, values, p.tr)
        except FormInvalid as exc:
            raise FormInvalid(exc.errors | errors, values) from exc
        if errors:
            raise FormInvalid(errors, values)
        case = await p.svc.cases.request(data, requester=user, session=p.session)
        await p.session.commit()
    except FormInvalid as exc:
        return p.render("case_new.html", 422, values=exc.values, errors=exc.errors,
                        **await request_choices(p.session))
    except Refused as exc:
        err = refusal_as_form_error(exc, values, p.tr)
        return p.render("case_new.html", exc.status_code, values=values, errors=err.errors,
                        **await request_choices(p.session))
    return redirect(f"/cases/{case.id}?done=requested")


async def case_page_context(p: Page, ca: CaseAccess) -> dict[str, Any]:
    """What the case page shows, with each action offered only where the policy allows it."""
    registered = ca.participant is None and await cases.registered_mediator(
        ca.user.id, session=p.session)

    def can(action: Action) -> bool:
        return access.may(action, ca.subject, ca.case, registered_mediator=registered)

    extra: dict[str, Any] = {}
    for part in p.svc.case_page_parts:
        extra |= await part(ca.case, ca.subject, p.session)
    removable = {t.user_id for t in await cases.participants(ca.case, session=p.session)
                 if access.may_remove(ca.subject, ca.case, t)}
    return extra | {
        "case": ca.case,
        "public": await cases.case_public(ca.case, session=p.session),
        "timeline": await timeline.lines(ca.case, p.tr, session=p.session),
        "sessions": await cases.scheduled_sessions(ca.case, session=p.session),
        "me": ca.participant,
        "can": {a.value: can(a) for a in Action},
        "invite_roles": [r for r in CaseRole if r != CaseRole.mediator],
        "pending_invitations": await invitations.pending(ca.case, session=p.session)
        if can(Action.revoke_invitation) else [],
        "removable": removable,
        "feedback_due": await closing.feedback_due(ca.case, ca.user, session=p.session),
        "neutrality": await neutrality_context(p, ca.case),
    }


async def neutrality_context(p: Page, case: Case) -> dict[str, Any] | None:
    """The mediator's time per session and in all (odr.neutrality), for everyone in the case:
    the parties see the balance once a session is over."""
    records = await neutrality.of_case(case.id or 0, session=p.session)
    if not records:
        return None
    return {"sessions": [(r.started_at, neutrality.describe(neutrality.seconds_of(r), p.tr))
                         for r in records],
            "total": neutrality.describe(neutrality.totals(records), p.tr)}


async def render_case(p: Page, ca: CaseAccess, status_code: int = 200, **extra: Any) -> Response:
    context = await case_page_context(p, ca)
    context.setdefault("values", {})
    context.setdefault("errors", {})
    context.setdefault("invite_link", None)
    context.update(extra)
    return p.render("case.html", status_code, **context)


async def case_access(p: Page, case_id: int, action: Action) -> CaseAccess:
    return await load_case_access(case_id, p.user, action, p.session)


@router.get("/cases/{case_id}")
async def case_page(case_id: PathId, p: PageDep) -> Response:
    if p.user is None:
        return login_redirect(p.request)
    return await render_case(p, await case_access(p, case_id, Action.view_case))


@router.post("/cases/{case_id}/accept")
async def case_accept(case_id: PathId, p: PageDep) -> Response:
    await read_form(p.request)
    ca = await case_access(p, case_id, Action.accept_case)
    await p.svc.cases.accept(ca.case, mediator=ca.user, session=p.session)
    await p.session.commit()
    return redirect(f"/cases/{case_id}?done=accepted")


@router.post("/cases/{case_id}/consent")
async def case_consent(case_id: PathId, p: PageDep) -> Response:
    await read_form(p.request)
    ca = await case_access(p, case_id, Action.consent)
    assert ca.participant is not None
    await p.svc.cases.consent(ca.case, ca.participant, user=ca.user, session=p.session)
    await p.session.commit()
    return redirect(f"/cases/{case_id}?done=consented")


@router.post("/cases/{case_id}/status")
async def case_status(case_id: PathId, p: PageDep) -> Response:
    values = await read_form(p.request)
    ca = await case_access(p, case_id, Action.view_case)
    try:
        data = parse(StatusChange, values, p.tr)
    except FormInvalid as exc:
        return await render_case(p, ca, 422, values=exc.values, errors=exc.errors)
    await p.svc.cases.change_status(ca.case, data.status, subject=ca.subject, session=p.session,
                                    reason=data.reason)
    await p.session.commit()
    return redirect(f"/cases/{case_id}?done=status")


@router.post("/cases/{case_id}/close")
async def case_close(case_id: PathId, p: PageDep) -> Response:
    values = await read_form(p.request)
    ca = await case_access(p, case_id, Action.close_case)
    try:
        data = parse(CaseClose, values, p.tr)
    except FormInvalid as exc:
        return await render_case(p, ca, 422, values=exc.values, errors=exc.errors)
    await closing.close(ca.case, data, subject=ca.subject, svc=p.svc, session=p.session)
    await p.session.commit()
    await p.svc.mailer.deliver_pending()
    return redirect(f"/cases/{case_id}?done=closed")


@router.get("/cases/{case_id}/feedback")
async def feedback_page(case_id: PathId, p: PageDep) -> Response:
    if p.user is None:
        return login_redirect(p.request)
    ca = await case_access(p, case_id, Action.view_case)
    if not await closing.feedback_due(ca.case, ca.user, session=p.session):
        return redirect(f"/cases/{case_id}")
    return p.render("feedback.html", case=ca.case, values={}, errors={})


@router.post("/cases/{case_id}/feedback")
async def feedback_submit(case_id: PathId, p: PageDep) -> Response:
    values = await read_form(p.request)
    ca = await case_access(p, case_id, Action.view_case)
    try:
        data = parse(FeedbackIn, values, p.tr)
    except FormInvalid as exc:
        return p.render("feedback.html", 422, case=ca.case, values=exc.values,
                        errors=exc.errors)
    await closing.answer(ca.case, ca.user, data, session=p.session)
    await p.session.commit()
    return redirect(f"/cases/{case_id}?done=feedback")


@router.post("/cases/{case_id}/invitations")
async def case_invite(case_id: PathId, p: PageDep, background: BackgroundTasks) -> Response:
    values = await read_form(p.request)
    ca = await case_access(p, case_id, Action.invite)
    assert ca.participant is not None
    try:
        data = parse(InvitationCreate, values, p.tr)
        sent = await p.svc.invitations.invite(
            ca.case, data, inviter=ca.user, inviter_role=ca.participant.role, session=p.session,
            translator=p.svc.catalogues.get(ca.case.language),
        )
        await p.session.commit()
    except FormInvalid as exc:
        return await render_case(p, ca, 422, values=exc.values, errors=exc.errors)
    except Refused as exc:
        err = refusal_as_form_error(exc, values, p.tr)
        return await render_case(p, ca, exc.status_code, values=values, errors=err.errors)
    background.add_task(p.svc.mailer.deliver_pending)
    # The link is shown to the inviter once, to pass on by phone or messenger if mail fails.
    return await render_case(p, ca, invite_link=sent.link, invite_mailed=sent.mailed)


@router.post("/cases/{case_id}/sessions")
async def case_schedule(case_id: PathId, p: PageDep) -> Response:
    values = await read_form(p.request)
    ca = await case_access(p, case_id, Action.schedule_session)
    user = ca.user
    try:
        data = parse(SessionCreate, values, p.tr)
        # The form gives the wall-clock time in the mediator's own zone.
        if data.starts_at.tzinfo is None:
            data.starts_at = data.starts_at.replace(tzinfo=ZoneInfo(user.timezone))
        await p.svc.cases.schedule(ca.case, data, mediator=user, session=p.session)
        await p.session.commit()
    except FormInvalid as exc:
        return await render_case(p, ca, 422, values=exc.values, errors=exc.errors)
    except Refused as exc:
        err = refusal_as_form_error(exc, values, p.tr)
        return await render_case(p, ca, exc.status_code, values=values, errors=err.errors)
    return redirect(f"/cases/{case_id}?done=scheduled")


@router.post("/cases/{case_id}/invitations/{invitation_id}/revoke")
async def case_revoke_invitation(case_id: PathId, invitation_id: PathId, p: PageDep) -> Response:
    await read_form(p.request)
    ca = await case_access(p, case_id, Action.revoke_invitation)
    await p.svc.invitations.revoke(ca.case, invitation_id, subject=ca.subject, session=p.session)
    await p.session.commit()
    return redirect(f"/cases/{case_id}?done=revoked")


@router.post("/cases/{case_id}/participants/{user_id}/remove")
async def case_remove_participant(case_id: PathId, user_id: PathId, p: PageDep) -> Response:
    values = await read_form(p.request)
    ca = await case_access(p, case_id, Action.remove_participant)
    try:
        data = parse(ParticipantRemoval, values, p.tr)
    except FormInvalid as exc:
        return await render_case(p, ca, 422, values=exc.values, errors=exc.errors)
    await p.svc.cases.remove_participant(ca.case, user_id, data.reason, subject=ca.subject,
                                         session=p.session)
    await p.session.commit()
    return redirect(f"/cases/{case_id}?done=removed")


# --- invitations ------------------------------------------------------------------------------

@router.get("/invitations/{token}")
async def invitation_page(token: str, p: PageDep) -> Response:
    invitation, case = await p.svc.invitations.find(token, session=p.session)
    inviter = await p.session.get(User, invitation.invited_by)
    existing = await accounts.user_by_email(invitation.email, session=p.session)
    return p.render("invitation.html", invitation=invitation, case=case, inviter=inviter,
                    token=token, has_account=existing is not None, values={}, errors={},
                    wrong_account=p.user is not None
                    and not invitations.addressed_to(invitation, p.user))


@router.post("/invitations/{token}")
async def invitation_submit(token: str, p: PageDep) -> Response:
    values = await read_form(p.request)
    try:
        data = parse(InvitationAccept, values, p.tr) if p.user is None else InvitationAccept()
        result = await p.svc.invitations.accept(token, data, user=p.user, session=p.session)
        cookie = None
        if result.account_created:
            cookie, _ = await accounts.start_session(result.user, ip=client_ip(p.request),
                                                     session=p.session, settings=p.svc.settings)
        await p.session.commit()
    except (FormInvalid, Refused) as exc:
        invitation, case = await p.svc.invitations.find(token, session=p.session)
        inviter = await p.session.get(User, invitation.invited_by)
        err = exc if isinstance(exc, FormInvalid) else refusal_as_form_error(exc, values, p.tr)
        status = 422 if isinstance(exc, FormInvalid) else exc.status_code
        return p.render("invitation.html", status, invitation=invitation, case=case,
                        inviter=inviter, token=token, has_account=False, values=values,
                        errors=err.errors, wrong_account=p.user is not None
                        and not invitations.addressed_to(invitation, p.user))
    response = redirect(f"/cases/{result.case.id}?done=joined")
    if cookie:
        set_session(response, cookie, p.svc.settings)
    return response


# --- administration ---------------------------------------------------------------------------

async def admin_context(p: Page) -> dict[str, Any]:
    users = (await p.session.exec(select(User).order_by(col(User.name)))).all()
    profiles = {m.user_id: m for m in (await p.session.exec(select(MediatorProfile))).all()}
    return {
        "users": users,
        "profiles": profiles,
        "courts": await register.courts(session=p.session),
        "outbox": await mail.outbox(p.session, limit=50),
        "mail_configured": p.svc.mailer.configured,
        "unpack": register.unpack,
    }


def require_admin(p: Page) -> User:
    user = p.require_user()
    access.check_global(GlobalAction.manage_register, user)
    return user


async def admin_render(
    p: Page, status_code: int = 200, *, form: str = "", values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None, audit_report: audit.ChainReport | None = None,
) -> Response:
    """The admin page; ``values`` and ``errors`` belong to the one form named by ``form``
    ("mediator", "court" or "clerk"), so a failed post re-opens only the form that was sent."""
    return p.render("admin.html", status_code, form=form, values=values or {},
                    errors=errors or {}, audit_report=audit_report, **await admin_context(p))


async def admin_form_error(
    p: Page, form: str, exc: FormInvalid | Refused, values: dict[str, Any]
) -> Response:
    if isinstance(exc, FormInvalid):
        return await admin_render(p, 422, form=form, values=exc.values, errors=exc.errors)
    err = refusal_as_form_error(exc, values, p.tr)
    return await admin_render(p, exc.status_code, form=form, values=values, errors=err.errors)


def admin_row_id(value: str) -> int | None:
    # isascii: "²" is a digit to str.isdigit() but not to int().
    ok = value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID
    return int(value) if ok else None


async def admin_mediator_values(user_id: int, session: AsyncSession) -> dict[str, Any] | None:
    """An entry as its form's fields: saving the form replaces the whole entry, so every field
    starts from what is stored (languages not ticked again would otherwise be lost)."""
    user = await session.get(User, user_id)
    if user is None:
        return None
    values: dict[str, Any] = {"email": user.email}
    profile = await register.profile_of(user_id, session=session)
    if profile is not None:
        values |= {
            "kind": profile.kind.value, "certificate": profile.certificate,
            "certified_on": profile.certified_on.isoformat() if profile.certified_on else "",
            "languages": register.unpack(profile.languages),
            "regions": register.unpack(profile.regions),
            "specialisations": register.unpack(profile.specialisations),
            "bio": profile.bio, "active": "true" if profile.active else "false",
        }
    return values


@router.get("/admin")
async def admin_page(p: PageDep, mediator: str = "", court: str = "") -> Response:
    """``?mediator=USER_ID`` or ``?court=ID`` opens that entry's form, filled in."""
    if p.user is None:
        return login_redirect(p.request)
    require_admin(p)
    if (user_id := admin_row_id(mediator)) is not None:
        values = await admin_mediator_values(user_id, p.session)
        if values is not None:
            return await admin_render(p, form="mediator", values=values)
    if (court_id := admin_row_id(court)) is not None:
        try:
            found = await register.court_by_id(court_id, session=p.session)
        except Refused:
            return await admin_render(p)  # gone meanwhile: the page as usual
        return await admin_render(p, form="court", values={
            "court_id": str(court_id), "name": found.name, "region": found.region,
            "address": found.address, "active": "true" if found.active else "false",
        })
    return await admin_render(p)


@router.post("/admin/mediators")
async def admin_save_mediator(p: PageDep) -> Response:
    admin = require_admin(p)
    values = await read_form(p.request)
    try:
        target = await accounts.user_by_email(str(values.get("email", "")), session=p.session)
        if target is None:
            raise FormInvalid({"email": p.tr.gettext(N_("No account with this e-mail."))}, values)
        data = parse(MediatorProfileIn, values, p.tr)
        await register.save_profile(target.id or 0, data, actor=admin, session=p.session,
                                    audit=p.svc.audit)
        await p.session.commit()
    except (FormInvalid, Refused) as exc:
        return await admin_form_error(p, "mediator", exc, values)
    return redirect("/admin?done=saved")


@router.post("/admin/courts")
async def admin_save_court(p: PageDep) -> Response:
    """Adds a court, or changes the one whose id the form carries (opened by its edit link)."""
    admin = require_admin(p)
    values = await read_form(p.request)
    try:
        raw_id = str(values.get("court_id", ""))
        court_id = admin_row_id(raw_id)
        if raw_id and court_id is None:
            raise FormInvalid({"court_id": p.tr.gettext(N_("No such court."))}, values)
        data = parse(CourtIn, values, p.tr)
        await register.save_court(data, actor=admin, session=p.session, audit=p.svc.audit,
                                  court_id=court_id)
        await p.session.commit()
    except (FormInvalid, Refused) as exc:
        return await admin_form_error(p, "court", exc, values)
    return redirect("/admin?done=saved")


@router.post("/admin/courts/{court_id}/active")
async def admin_court_active(court_id: PathId, p: PageDep) -> Response:
    """The deactivate / reactivate button beside a court (an unknown court is a 404 page)."""
    admin = require_admin(p)
    values = await read_form(p.request)
    await register.set_court_active(court_id, values.get("active") == "true", actor=admin,
                                    session=p.session, audit=p.svc.audit)
    await p.session.commit()
    return redirect("/admin?done=saved")


@router.post("/admin/clerks")
async def admin_assign_clerk(p: PageDep) -> Response:
    admin = require_admin(p)
    values = await read_form(p.request)
    try:
        target = await accounts.user_by_email(str(values.get("clerk_email", "")),
                                              session=p.session)
        if target is None:
            raise FormInvalid({"clerk_email": p.tr.gettext(N_("No account with this e-mail."))},
                              values)
        court_id = admin_row_id(str(values.get("court_id", "")))
        if court_id is None:
            raise FormInvalid({"court_id": p.tr.gettext(N_("Choose a court."))}, values)
        # An unknown court is refused with field "court_id": shown beside the court choice.
        await register.assign_clerk(target.id or 0, court_id, actor=admin, session=p.session,
                                    audit=p.svc.audit)
        await p.session.commit()
    except (FormInvalid, Refused) as exc:
        return await admin_form_error(p, "clerk", exc, values)
    return redirect("/admin?done=saved")


@router.post("/admin/audit")
async def admin_verify_audit(p: PageDep) -> Response:
    require_admin(p)
    await read_form(p.request)
    return await admin_render(p, audit_report=await p.svc.audit.verify(p.session))
