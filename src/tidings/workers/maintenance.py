"""Periodic housekeeping of the worker role: expired sessions are deleted."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Protocol

import structlog

from tidings.services.hub import Services

log = structlog.get_logger(__name__)


class _HasServices(Protocol):
    services: Services


class Maintenance:
    def __init__(self, container: _HasServices, interval: float = 3600.0) -> None:
        self.services = container.services
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
