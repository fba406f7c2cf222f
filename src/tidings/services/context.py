"""What every service needs, injected by the container (app/container.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tidings.bus.ports import Bus
from tidings.core.clock import Clock, IdGenerator
from tidings.store.ports import Store


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int = 16 * 1024
    edit_window: timedelta = timedelta(hours=1)
    token_ttl: timedelta = timedelta(days=30)
    history_page_max: int = 200
    sync_page_max: int = 1000
    max_members_per_request: int = 500
    send_batch_max: int = 256


@dataclass(frozen=True, slots=True)
class Deps:
    store: Store
    bus: Bus
    clock: Clock
    ids: IdGenerator
    limits: Limits
