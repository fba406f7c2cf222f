"""Passwords, tokens, login and logout."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Collection
from datetime import datetime, timedelta

import structlog

from tidings.core.audit import AuditAction
from tidings.core.clock import new_token
from tidings.core.errors import (
    InvalidCredentials,
    InvalidTotp,
    SecondFactorRequired,
    TidingsError,
    TotpRequired,
    Unauthenticated,
)
from tidings.core.models import Session, User, UserOrigin
from tidings.core.rules import clean_text, username_key
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.events import close_connections_on_commit
from tidings.services.login_guard import LoginGuard
from tidings.services.passwords import Passwords
from tidings.services.ratelimit import Action, RateLimiter
from tidings.services.reauth import DirectorySignIn
from tidings.services.second_factor import SecondFactorService
from tidings.store.ports import TokenSeen

log = structlog.get_logger(__name__)

# The one answer to a refused password login, whatever the reason (see AuthService.login).
LOGIN_REFUSED = "wrong username or password"
SEEN_EVERY = timedelta(seconds=60)  # how stale a session's last_seen_at may get
# Last-seen notes wait this long to be written together: a reconnect burst writes a
# handful of transactions, not one per connection (list_sessions writes them first).
SEEN_WRITE_DELAY = 1.0
TOKEN_CHECK_CHUNK = 500  # token ids per query when the gateway checks its sessions


def token_hash(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash suffices to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


class LastSeen:
    """When (and from where) each session was last seen, written in batches: one write
    transaction for every session seen within `SEEN_WRITE_DELAY`, instead of one per
    request or connection. A note is a hint (`SEEN_EVERY` granularity): if the write
    fails, the notes wait for the next one."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self._pending: dict[str, tuple[datetime, str | None]] = {}
        self._timer: asyncio.Task[None] | None = None

    def note(self, token_id: str, now: datetime, address: str | None) -> None:
        self._pending[token_id] = (now, address)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._write_later())

    async def _write_later(self) -> None:
        await asyncio.sleep(SEEN_WRITE_DELAY)
        self._timer = None
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - the store is away: the next note retries
            log.warning("last_seen_write_failed", error=str(exc))

    async def flush(self) -> None:
        """Write every pending note now."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            async with self.d.store.write() as tx:
                await tx.set_tokens_seen(
                    [TokenSeen(tid, when, address) for tid, (when, address) in pending.items()]
                )
        except BaseException:
            for tid, note in pending.items():  # newer notes taken meanwhile win
                self._pending.setdefault(tid, note)
            raise

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - closing: a lost hint is no harm
            log.warning("last_seen_write_failed", error=str(exc))


class AuthService:
    def __init__(
        self,
        deps: Deps,
        passwords: Passwords,
        second_factor: SecondFactorService,
        directory: DirectorySignIn | None = None,
    ) -> None:
        self.d = deps
        self.directory = directory  # LDAP sign-in (services/ldap.py), when configured
        self.passwords = passwords
        self.second_factor = second_factor
        self.limiter = RateLimiter(deps)
        self.guard = LoginGuard(lambda: deps.security)
        self.last_seen = LastSeen(deps)

    async def login(
        self,
        username: str,
        password: str,
        device: str = "",
        *,
        totp: str | None = None,
        address: str = "",
    ) -> tuple[str, Session]:
        """Check the password (and the second factor, if the account has one) and open a
        session for one device. An unknown name, a bot (no password: it uses its token),
        a wrong password and a disabled account (even with its right password) give one
        answer, `LOGIN_REFUSED`, after the same work (one password check each), and count
        alike towards the slow-down and the lockout; only the audit log tells them apart.

        With LDAP on, a name that is no local account (or an account the directory
        made) is checked by the directory instead (services/ldap.py): the same answers,
        the same protection, the same second factor; `Unavailable` when the directory
        cannot answer. The owner and every local account keep their own password.
        Counted in /metrics by method (`password`, `ldap`) and outcome."""
        used = ["password"]  # the method _login used, once it knows
        try:
            opened = await self._login(
                username, password, device, totp=totp, address=address, used=used
            )
        except TidingsError as exc:
            self.d.counts.login(used[0], exc.code.value)
            log.info("login_refused", method=used[0], code=exc.code.value)
            raise
        self.d.counts.login(used[0], "ok")
        log.info("login", method=used[0], user_id=opened[1].user.id)
        return opened

    async def _login(
        self,
        username: str,
        password: str,
        device: str,
        *,
        totp: str | None,
        address: str,
        used: list[str],
    ) -> tuple[str, Session]:
        name = username_key(username)
        await self.limiter.check(Action.LOGIN, name[:120], address or None)
        now = self.d.clock.now()
        async with self.d.store.read() as tx:
            await self.guard.check(tx, name, address, now)
            found = await tx.get_credentials(name)
        method = used[0]
        signed_in: User | None = None
        directory = (
            self.directory if self.directory is not None and self.directory.enabled else None
        )
        if directory is not None and (found is None or found.user.origin is UserOrigin.LDAP):
            # not a local account: the directory's password (Unavailable, a 503 that
            # counts as no failure, when the directory cannot answer)
            method = used[0] = "ldap"
            signed_in = await directory.sign_in(name, password)
            if signed_in is None:
                refused: str | None = "unknown" if found is None else "password"
            else:
                refused = "disabled" if signed_in.disabled else None
        elif found is None or found.user.bot:  # a bot has no password: it uses its bot token
            await self.passwords.waste_time(password)
            refused = "unknown" if found is None else "bot"
        elif not await self.passwords.verify(found.password_hash, password):
            refused = "password"
        else:
            refused = "disabled" if found.user.disabled else None
            signed_in = found.user
        if refused is not None:
            known = signed_in or (None if found is None else found.user)
            user_id = None if known is None else known.id
            await self._failed(name, address, user_id, "password", refused, method=method)
            raise InvalidCredentials(LOGIN_REFUSED)
        assert signed_in is not None
        user = signed_in
        second_factor = self.second_factor
        token = new_token()
        expires = now + self.d.limits.token_ttl
        token_id = self.d.ids.new_id()
        device_name = clean_text(device or "unknown", field="device", max_chars=120)
        outcome = "none"
        recovery = await second_factor.recovery_match(user, totp)  # slow: before the writer
        async with self.d.store.write() as wtx:
            if await second_factor.enabled(wtx, user.id):
                if not totp:
                    outcome = "missing"
                else:
                    checked = await second_factor.verify(wtx, user, totp, now, recovery)
                    outcome = checked or "wrong"
            if outcome not in ("missing", "wrong"):
                enrol_only = outcome == "none" and await second_factor.required_for(user)
                await wtx.insert_token(
                    token_id, token_hash(token), user.id, device_name, now, expires
                )
                await wtx.set_tokens_seen([TokenSeen(token_id, now, address)])
                if enrol_only:
                    await wtx.set_token_enrol_only(token_id, True)
                await self.guard.succeeded(wtx, name)
                await record(
                    wtx,
                    self.d.clock,
                    AuditAction.LOGIN,
                    actor_id=user.id,
                    target_id=token_id,
                    address=address,
                    details={"device": device_name, "second_factor": outcome, "method": method},
                )
        if outcome == "missing":
            raise TotpRequired("this account has a second factor: send the code as totp")
        if outcome == "wrong":
            await self._failed(name, address, user.id, "totp", method=method)
            raise InvalidTotp("wrong or already used second-factor code")
        async with self.d.store.lookup() as q:
            session = await q.session_for_token(token_hash(token), now)
        assert session is not None
        return token, session

    async def open_session(
        self, user: User, device: str, address: str, details: dict[str, object]
    ) -> tuple[str, Session]:
        """A session for a user whom another method signed in (OpenID Connect: the
        provider checked who they are and its own second factor); audited as `login`
        with `details` (the method among them)."""
        now = self.d.clock.now()
        token = new_token()
        token_id = self.d.ids.new_id()
        device_name = clean_text(device or "unknown", field="device", max_chars=120)
        async with self.d.store.write() as wtx:
            await wtx.insert_token(
                token_id, token_hash(token), user.id, device_name, now,
                now + self.d.limits.token_ttl,
            )  # fmt: skip
            await wtx.set_tokens_seen([TokenSeen(token_id, now, address)])
            await record(
                wtx,
                self.d.clock,
                AuditAction.LOGIN,
                actor_id=user.id,
                target_id=token_id,
                address=address,
                details={"device": device_name, **details},
            )
        async with self.d.store.lookup() as q:
            session = await q.session_for_token(token_hash(token), now)
        assert session is not None
        return token, session

    async def _failed(
        self,
        name: str,
        address: str,
        user_id: str | None,
        factor: str,
        refused: str = "",
        *,
        method: str | None = None,
    ) -> None:
        """`factor`: password or totp; `method`: how the password was checked (password:
        the account's own, ldap: the directory's)."""
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            outcome = await self.guard.failed(tx, name, address, now)
            # an unknown name is not recorded: it may be a password typed in the wrong box
            details: dict[str, object] = {"factor": factor, "failures": outcome.failures}
            if method is not None:
                details["method"] = method
            if user_id is not None:
                details["username"] = name
                if refused:  # why (the answer did not say): password, bot, disabled
                    details["refused"] = refused
            await record(
                tx,
                self.d.clock,
                AuditAction.LOGIN_FAILED,
                actor_id=None,
                target_id=user_id,
                address=address,
                details=details,
            )
            if outcome.locked:
                await record(
                    tx,
                    self.d.clock,
                    AuditAction.LOGIN_LOCKED,
                    actor_id=None,
                    target_id=user_id,
                    address=address,
                    details={"until": (now + self.d.security.login_lockout).isoformat()},
                )

    async def authenticate(
        self, token: str, *, allow_enrol_only: bool = False, address: str | None = None
    ) -> Session:
        """The session of a bearer token: unknown, revoked, expired tokens and disabled
        users are all refused. A session that must first enrol a second factor is refused
        too, unless `allow_enrol_only`. Notes when the session was last seen (at most
        once a minute, written in batches: see LastSeen); one read, no write."""
        if not token:
            raise Unauthenticated("missing token")
        now = self.d.clock.now()
        async with self.d.store.lookup() as q:
            session = await q.session_for_token(token_hash(token), now)
        if session is None:
            raise Unauthenticated("invalid or expired token")
        if session.enrol_only and not allow_enrol_only:
            raise SecondFactorRequired(
                "your organization requires a second factor: enrol one at /auth/totp/setup"
            )
        if session.last_seen_at is None or now - session.last_seen_at > SEEN_EVERY:
            self.last_seen.note(session.token_id, now, address)
        if session.user.disabled:
            raise Unauthenticated("this account is disabled")
        return session

    async def logout(self, session: Session) -> None:
        async with self.d.store.write() as tx:
            await tx.revoke_token(session.token_id, self.d.clock.now())
            await record(
                tx,
                self.d.clock,
                AuditAction.LOGOUT,
                actor_id=session.user.id,
                target_id=session.token_id,
            )
            close_connections_on_commit(
                tx, self.d.bus, session.user.id, "logged_out", token_ids=[session.token_id]
            )
        log.info("logout", token_id=session.token_id)  # the request's user_id: its context

    async def revoke_all(self, user: User, reason: str, actor: User | None = None) -> None:
        """Revoke every token of a user and cut their live connections."""
        async with self.d.store.write() as tx:
            await tx.revoke_user_tokens(user.id, self.d.clock.now())
            await record(
                tx,
                self.d.clock,
                AuditAction.SESSIONS_REVOKED,
                actor_id=None if actor is None else actor.id,
                target_id=user.id,
                details={"reason": reason},
            )
            close_connections_on_commit(tx, self.d.bus, user.id, reason)

    async def purge_expired(self, keep: timedelta) -> int:
        """Delete tokens that expired (or were revoked) more than `keep` ago."""
        async with self.d.store.write() as tx:
            return await tx.delete_dead_tokens(self.d.clock.now() - keep)

    async def ended_tokens(self, token_ids: Collection[str]) -> set[str]:
        """Those of `token_ids` that no longer authenticate (revoked, expired, or their
        user disabled): the gateway closes connections made with them, whoever ended
        them and wherever (the admin CLI, another node, a lost bus message)."""
        ids = list(token_ids)
        live: set[str] = set()
        now = self.d.clock.now()
        async with self.d.store.read() as tx:
            for start in range(0, len(ids), TOKEN_CHECK_CHUNK):
                live |= await tx.live_token_ids(ids[start : start + TOKEN_CHECK_CHUNK], now)
        return set(ids) - live
