"""Checking a signed-in user's password or second-factor code again, before a change
that needs it: changing the password, enrolling or disabling a second factor, new
recovery codes.

A stolen session token must not be a way to guess the password or the codes without
limit. These checks go through the login guard (services/login_guard.py) on the same
counts as a login, the account name and the source address: failures here slow down and
lock logins too, and the other way round; a locked name or address gets `429
rate_limited` before anything is checked. Every failure is audited (`reauth_failed`,
and `login_locked` when it locks). A success forgets nothing: only a full login does.
"""

from __future__ import annotations

from typing import Protocol

from tidings.core.audit import AuditAction
from tidings.core.errors import InvalidCredentials
from tidings.core.models import User, UserOrigin
from tidings.services.audit import client_address, record
from tidings.services.context import Deps
from tidings.services.login_guard import LoginGuard
from tidings.services.passwords import Passwords


class DirectorySignIn(Protocol):
    """Passwords a directory keeps (services/ldap.py:LdapService), when `enabled` (asked
    at each call: admins may turn it on or off at run time)."""

    @property
    def enabled(self) -> bool: ...

    async def sign_in(self, username: str, password: str) -> User | None:
        """The account, provisioned, when the directory accepts the password."""
        ...

    async def check_password(self, user: User, password: str) -> bool:
        """Whether `password` is this directory account's password (nothing written)."""
        ...


class Reauth:
    def __init__(
        self, deps: Deps, passwords: Passwords, directory: DirectorySignIn | None = None
    ) -> None:
        self.d = deps
        self.passwords = passwords
        self.directory = directory  # an account the directory made: its password there
        self.guard = LoginGuard(lambda: deps.security)

    async def check_allowed(self, user: User) -> None:
        """Raise RateLimited while the account name or the caller's address must wait."""
        async with self.d.store.read() as tx:
            await self.guard.check(tx, user.username, client_address.get(), self.d.clock.now())

    async def password(
        self, user: User, password: str, operation: str, *, field: str = "password"
    ) -> None:
        """Check the guard, then `password`: a wrong one is counted, audited, and raises
        `invalid_credentials` (details.field names the request field)."""
        await self.check_allowed(user)
        if user.origin is UserOrigin.LDAP and self.directory is not None and self.directory.enabled:
            right = await self.directory.check_password(user, password)  # Unavailable: 503
        else:
            async with self.d.store.read() as tx:
                stored = await tx.get_password_hash(user.id)
            right = stored is not None and await self.passwords.verify(stored, password)
        if not right:
            await self.failed(user, operation, "password")
            raise InvalidCredentials("the password is wrong", field=field)

    async def failed(self, user: User, operation: str, factor: str) -> None:
        """Count one failed check of `factor` ("password" or "totp") for `operation`."""
        now = self.d.clock.now()
        address = client_address.get()
        async with self.d.store.write() as tx:
            outcome = await self.guard.failed(tx, user.username, address, now)
            await record(
                tx,
                self.d.clock,
                AuditAction.REAUTH_FAILED,
                actor_id=user.id,
                target_id=user.id,
                details={"operation": operation, "factor": factor, "failures": outcome.failures},
            )
            if outcome.locked:
                await record(
                    tx,
                    self.d.clock,
                    AuditAction.LOGIN_LOCKED,
                    actor_id=None,
                    target_id=user.id,
                    details={
                        "until": (now + self.d.security.login_lockout).isoformat(),
                        "operation": operation,
                    },
                )
