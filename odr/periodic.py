"""A job the service runs every so often in the background (the term watch, session reminders).

Each job keeps its progress in the database and claims every piece of work with an
``UPDATE ... WHERE not yet done``, so a restart loses nothing and several processes running the
same job never do a piece twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

log = logging.getLogger(__name__)


class Periodic:
    """``run_once`` every ``interval`` seconds from ``start`` until ``close``."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a database that is away now is tried again next time
                log.exception("%s failed; it tries again", type(self).__name__)
            await asyncio.sleep(self.interval)

    async def run_once(self, now: datetime | None = None) -> int:
        raise NotImplementedError
