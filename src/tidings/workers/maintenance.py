"""Periodic housekeeping of the worker role: expired sessions are deleted, and the
collection of unreferenced files (job `files_gc`, services/files.py) is scheduled every
`files_gc_interval_seconds` (one job per interval whatever the number of workers: its
id names the interval)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Protocol

import structlog

from tidings.services.files import FILES_GC_JOB
from tidings.services.hub import Services

log = structlog.get_logger(__name__)


class _Settings(Protocol):
    @property
    def files_gc_interval_seconds(self) -> float: ...


class _HasServices(Protocol):
    services: Services

    @property
    def settings(self) -> _Settings: ...


class Maintenance:
    def __init__(self, container: _HasServices, interval: float = 3600.0) -> None:
        self.services = container.services
        self.interval = interval
        self.gc_interval = container.settings.files_gc_interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._gc_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop())
        self._gc_task = loop.create_task(self._gc_loop())

    async def schedule_files_gc(self) -> str:
        """Enqueue this interval's `files_gc` job (once, whichever worker is first)."""
        deps = self.services.deps
        slot = int(deps.clock.now().timestamp() // self.gc_interval)
        async with deps.store.write() as tx:
            return await self.services.jobs.enqueue(
                tx, FILES_GC_JOB, {}, job_id=f"{FILES_GC_JOB}:{slot}"
            )

    async def _gc_loop(self) -> None:
        while True:
            await asyncio.sleep(self.gc_interval)
            try:
                await self.schedule_files_gc()
            except asyncio.CancelledError:
                raise
            except Exception:  # one failed round must not stop the next
                log.exception("files_gc_schedule_failed")

    async def run_once(self) -> int:
        return await self.services.auth.purge_expired(keep=timedelta(days=1))

    async def _loop(self) -> None:
        while True:
            try:
                purged = await self.run_once()
                if purged:
                    log.info("expired_sessions_purged", count=purged)
            except asyncio.CancelledError:
                raise
            except Exception:  # one failed run must not stop the next
                log.exception("maintenance_failed")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        for task in (self._task, self._gc_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
