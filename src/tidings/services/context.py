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
class SecurityLimits:
    """Login protection and rate limits (settings: login_*, rate_*; 0 disables a rate)."""

    login_failures_before_delay: int = 3
    login_failures_before_lockout: int = 10
    login_address_failures_before_lockout: int = 50
    login_lockout: timedelta = timedelta(minutes=15)
    login_failure_window: timedelta = timedelta(minutes=15)
    login_max_delay: timedelta = timedelta(seconds=60)
    rate_window_seconds: float = 60.0
    rate_login_per_user: int = 20
    rate_login_per_address: int = 600
    rate_send_per_user: int = 600
    rate_send_per_address: int = 30000
    rate_upload_per_user: int = 60
    rate_upload_per_address: int = 600
    totp_issuer: str = "Tidings"


@dataclass(frozen=True, slots=True)
class Deps:
    store: Store
    bus: Bus
    clock: Clock
    ids: IdGenerator
    limits: Limits
    security: SecurityLimits = SecurityLimits()
