"""The worker role's backup clock: every `every` seconds it asks for this time slot's
backup job (app/backup.py:ScheduledBackups.tick enqueues it once per slot; the job runs
like any other, on one worker)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class BackupClock:
    def __init__(self, tick: Callable[[], Awaitable[object]], every: float) -> None:
        self.tick = tick
        self.every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                log.warning("backup_schedule_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(self.every)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
