"""Login protection: repeated failures slow down, then lock, an account name and a source
address. Unknown and existing usernames are treated alike, so the answers tell nothing
about which accounts exist. The counts live in the database (login_failures), so they
survive restarts and are shared by every node."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tidings.core.errors import RateLimited
from tidings.services.context import SecurityLimits
from tidings.store.ports import LoginFailures, Tx


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    locked: bool  # this failure locked a key
    failures: int  # the account name's failures in the window


def user_key(username: str) -> str:
    """Hashed: a password typed into the name field is not kept in clear."""
    name = username.strip().lower()[:120]
    return "user:" + hashlib.sha256(name.encode()).hexdigest()[:40]


def address_key(address: str) -> str:
    return "addr:" + address[:64]


def delay_after(failures: int, limits: SecurityLimits) -> timedelta:
    """How long to wait after the `failures`-th failure before trying again:
    nothing at first, then 1, 2, 4 ... seconds up to login_max_delay."""
    over = failures - limits.login_failures_before_delay
    if over < 0:
        return timedelta(0)
    seconds = min(2.0**over, limits.login_max_delay.total_seconds())
    return timedelta(seconds=seconds)


class LoginGuard:
    """`limits`: the login limits in force, read at every check (an admin may change
    them at run time: services/config.py)."""

    def __init__(self, limits: Callable[[], SecurityLimits]) -> None:
        self._limits = limits

    @property
    def limits(self) -> SecurityLimits:
        return self._limits()

    def _keys(self, username: str, address: str) -> list[str]:
        keys = [user_key(username)]
        if address:
            keys.append(address_key(address))
        return keys

    async def check(self, tx: Tx, username: str, address: str, now: datetime) -> None:
        """Raise RateLimited if the name or the address is locked or must still wait."""
        limits = self.limits
        rows = await tx.get_login_failures(self._keys(username, address))
        wait = timedelta(0)
        for key, row in rows.items():
            if row.locked_until is not None and row.locked_until > now:
                wait = max(wait, row.locked_until - now)
                continue
            if now - row.first_at > limits.login_failure_window:
                continue  # stale: forgotten at the next failure
            if key.startswith("user:"):
                ready_at = row.last_at + delay_after(row.failures, limits)
                if ready_at > now:
                    wait = max(wait, ready_at - now)
        if wait > timedelta(0):
            raise RateLimited(
                "too many failed logins: try again later",
                retry_after=max(1.0, wait.total_seconds()),
            )

    async def failed(self, tx: Tx, username: str, address: str, now: datetime) -> FailureOutcome:
        """Count one failure for the name and the address; lock what crossed its limit."""
        limits = self.limits
        keys = self._keys(username, address)
        rows = await tx.get_login_failures(keys)
        locked = False
        user_failures = 0
        for key in keys:
            failures, first_at, locked_until = 0, now, None
            old = rows.get(key)
            if old is not None:
                expired_lock = old.locked_until is not None and old.locked_until <= now
                if now - old.first_at <= limits.login_failure_window and not expired_lock:
                    failures, first_at, locked_until = old.failures, old.first_at, old.locked_until
            failures += 1
            limit = (
                limits.login_failures_before_lockout
                if key.startswith("user:")
                else limits.login_address_failures_before_lockout
            )
            if failures >= limit and locked_until is None:
                locked_until = now + limits.login_lockout
                locked = True
            if key.startswith("user:"):
                user_failures = failures
            await tx.put_login_failure(key, LoginFailures(failures, first_at, now, locked_until))
        return FailureOutcome(locked, user_failures)

    async def succeeded(self, tx: Tx, username: str) -> None:
        """A good login forgets the name's failures (never the address's: one valid
        account must not reset the count of a source guessing at others)."""
        await tx.clear_login_failures(user_key(username))
