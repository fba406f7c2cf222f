"""The worker role's LDAP schedule: every `ldap_sync_interval_seconds` (checked a few
times per interval) it enqueues the interval's `identity.ldap_sync` job
(services/ldap.py:LdapService.schedule_sync); the job runner (workers/jobs.py) runs it.
Every worker node enqueues the same job id for an interval, so a cluster syncs once."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from tidings.services.ldap import LdapService

log = structlog.get_logger(__name__)
CHECKS_PER_INTERVAL = 4
MAX_CHECK_S = 300.0


class LdapSyncScheduler:
    def __init__(self, ldap: LdapService, interval: float) -> None:
        self.ldap = ldap
        self.every = min(MAX_CHECK_S, max(1.0, interval / CHECKS_PER_INTERVAL))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                await self.ldap.schedule_sync()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: the next round retries
                log.exception("ldap_sync_schedule_failed")
            await asyncio.sleep(self.every)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
