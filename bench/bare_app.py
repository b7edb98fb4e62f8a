"""The reference for ``http_bench.py``: a bare FastAPI app with nothing behind it.

``/healthz`` answers the same small JSON as ours; ``/`` a small HTML page, the floor for a page.
Run by the bench as ``uvicorn --factory bare_app:create`` with the same options as our app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

PAGE = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Bare</title>"
        "</head><body><h1>Bare FastAPI</h1><p>A page with nothing behind it.</p></body></html>")


def create() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    return app
