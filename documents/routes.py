"""Agreement drafts, signing and filing: pages, API and the draft WebSocket (their own issues)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter

from odr.services import Services

router = APIRouter()


@asynccontextmanager
async def runtime(services: Services) -> AsyncIterator[object | None]:
    """The long-lived parts of the documents (draft rooms), kept on ``app.state.documents``."""
    yield None
