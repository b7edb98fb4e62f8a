"""The application factory: services in the lifespan, routers, and errors in the user's language."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from documents import routes as document_routes
from odr import (
    api,
    forgery,
    migrate,
    openapi,
    organisation_routes,
    pages,
    reminders,
    terms,
    warning_watch,
)
from odr.deps import language_of
from odr.errors import N_, Refused
from odr.headers import SecurityHeaders
from odr.i18n import Translator
from odr.services import Services
from odr.settings import Settings
from odr.statistics_routes import router as statistics_router
from odr.templating import STATIC, Pages
from odr.validation import describe_errors
from rooms import routes as room_routes

log = logging.getLogger("odr")

HTTP_MESSAGES = {
    404: N_("The page you asked for does not exist."),
    405: N_("This action is not possible here."),
    401: N_("Please sign in first."),
    403: N_("You are not allowed to do this."),
    413: N_("What you sent is too large."),
    400: N_("What you sent could not be read."),
}
# Any other status raised by the framework: its own text is English only.
HTTP_FALLBACK = N_("This request cannot be handled.")


def freeze_startup_heap() -> None:
    """Keep what start-up built (modules, routes, templates, PDF and crypto libraries) out of
    every later garbage collection.

    Start-up leaves about 230,000 tracked objects, and a full collection walks them all: 60 to
    170 ms here (start-up's own full collections, seen with ``gc.callbacks``), during which the
    event loop stands still: no draft edit, chat message or media packet moves in any room.
    A long-running server meets one whenever enough new objects have survived. Frozen objects
    are never collected, so this runs once, in the serving process, after start-up and a last
    collection.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, migrate_on_start: bool = True,
               serving: bool = False) -> FastAPI:
    """The application. ``serving``: this process serves it until it ends (``odr run``,
    uvicorn's factory), rather than a test building many apps one after another."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            await asyncio.to_thread(migrate.upgrade, settings.effective_database_url)
        services = Services.create(settings)
        app.state.services = services
        app.state.pages = Pages(settings)
        try:
            async with (
                room_routes.runtime(services) as rooms_runtime,
                document_routes.runtime(services) as documents_runtime,
            ):
                app.state.rooms = rooms_runtime
                app.state.documents = documents_runtime
                if serving:
                    freeze_startup_heap()
                cluster = services.cluster
                if cluster is not None:
                    await cluster.start()  # once the runtimes have said what they hold
                # Background jobs that keep their progress in the database (odr.periodic).
                jobs = [terms.TermWatch(services), reminders.SessionReminders(services),
                        warning_watch.WarningWatch(services)]
                app.state.term_watch, app.state.reminders, app.state.warning_watch = jobs
                for job in jobs:
                    job.start()
                try:
                    yield
                finally:
                    for job in jobs:
                        await job.close()
                    if cluster is not None:
                        await cluster.close()  # leases go first: clients move at once
        finally:
            await services.close()

    app = FastAPI(
        title="ODR platform", version="0.1.0", lifespan=lifespan,
        description="Online dispute resolution: mediation cases, register, rooms, agreements.",
        # Every unsafe request must come from our own pages (forms, API, all alike).
        dependencies=[Depends(forgery.guard)],
    )
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(organisation_routes.router)
    app.include_router(statistics_router)
    # The only place odr knows the other packages: it mounts their routes and runtimes.
    app.include_router(room_routes.router)
    app.include_router(document_routes.router)
    openapi.install(app)

    build_stack = app.build_middleware_stack
    app.build_middleware_stack = (  # type: ignore[method-assign]
        lambda: SecurityHeaders(document_routes.DraftSocketShortcut(build_stack(), app), settings))

    @app.get("/healthz", tags=["health"], responses={503: {"description": "Redis is down"}})
    async def healthz() -> JSONResponse:
        """``ok``; with several processes, 503 while Redis is unreachable (this process then
        serves the rooms it holds but opens no new ones)."""
        cluster = app.state.services.cluster
        if cluster is not None and not cluster.up:
            return JSONResponse({"status": "degraded", "redis": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"} | ({"redis": "ok"} if cluster else {}))

    def translator_for(request: Request) -> Translator:
        tr: Translator | None = getattr(request.state, "translator", None)
        if tr is not None:
            return tr
        svc: Services = request.app.state.services
        language = getattr(request.state, "user_language", None)
        return svc.catalogues.get(language_of(request, language, settings.default_language))

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def page_error(request: Request, status: int, message: str) -> Response:
        tr = translator_for(request)
        user = getattr(getattr(request.state, "auth", None), "user", None)
        return request.app.state.pages.render(  # type: ignore[no-any-return]
            request, "error.html", tr, user, status_code=status, message=message,
        )

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        tr = translator_for(request)
        message = tr.gettext(exc.message, **exc.params)
        if is_api(request):
            errors = [{"field": exc.field, "message": message}] if exc.field else []
            return openapi.error_response(exc.status_code, message, errors)
        return page_error(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        tr = translator_for(request)
        errors = describe_errors(exc.errors(), tr)
        summary = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"]
                            for e in errors)
        if is_api(request):
            return openapi.error_response(422, summary, errors)
        return page_error(request, 422, summary)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        tr = translator_for(request)
        message = tr.gettext(HTTP_MESSAGES.get(exc.status_code, HTTP_FALLBACK))
        if is_api(request) or request.url.path.startswith("/static/"):
            return openapi.error_response(exc.status_code, message,
                                          headers=getattr(exc, "headers", None))
        return page_error(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        tr = translator_for(request)
        message = tr.gettext(N_("Something went wrong on our side. Nothing was changed; "
                                "please try again."))
        if is_api(request):
            return openapi.error_response(500, message)
        return page_error(request, 500, message)

    return app


def app_from_environment() -> FastAPI:
    """Entry for ``uvicorn --factory odr.app:app_from_environment``."""
    return create_app(serving=True)
