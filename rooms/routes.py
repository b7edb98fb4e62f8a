"""Live rooms: the room page and the signalling WebSocket (built in the live-rooms issue)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter

from odr.services import Services

router = APIRouter()


@asynccontextmanager
async def runtime(services: Services) -> AsyncIterator[object | None]:
    """Long-lived parts of the rooms (manager, media relay), kept on ``app.state.rooms``."""
    yield None
