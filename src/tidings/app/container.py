"""The container: chooses adapters once, at start-up, and builds the services
(cf. Synapse's HomeServer getters)."""

from __future__ import annotations

from datetime import timedelta

from tidings.app.settings import Settings
from tidings.bus.local import LocalBus
from tidings.bus.ports import Bus
from tidings.core.clock import SystemClock, TimeOrderedIds
from tidings.services.context import Deps, Limits
from tidings.services.hub import Services
from tidings.store.ports import Store
from tidings.store.sql.store import SqlStore


class Container:
    def __init__(self, settings: Settings, *, store: Store | None = None, bus: Bus | None = None):
        self.settings = settings
        self.store: Store = store or SqlStore.from_url(
            settings.db_url,
            pool_size=settings.db_pool_size,
            synchronous=settings.sqlite_synchronous,
        )
        self.bus: Bus = bus or LocalBus()
        self.deps = Deps(
            store=self.store,
            bus=self.bus,
            clock=SystemClock(),
            ids=TimeOrderedIds(),
            limits=Limits(
                max_message_bytes=settings.max_message_bytes,
                edit_window=timedelta(seconds=settings.edit_window_seconds),
                token_ttl=timedelta(seconds=settings.token_ttl_seconds),
                history_page_max=settings.history_page_max,
                sync_page_max=settings.sync_page_max,
            ),
        )
        self.services = Services.build(self.deps)

    async def close(self) -> None:
        await self.services.messages.close()
        await self.bus.close()
        await self.store.close()
