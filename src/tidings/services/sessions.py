"""Device sessions: list and revoke your own; admins revoke all of someone's; changing
your password ends every other session."""

from __future__ import annotations

from tidings.core.audit import AuditAction
from tidings.core.errors import InvalidOperation, NotFound
from tidings.core.models import Session, SessionInfo, User, UserOrigin
from tidings.core.rules import check_can_manage_user
from tidings.services.audit import record
from tidings.services.auth import AuthService
from tidings.services.context import Deps
from tidings.services.events import close_connections_on_commit
from tidings.services.password_policy import check_new_password
from tidings.services.passwords import Passwords
from tidings.services.reauth import Reauth


class SessionService:
    def __init__(self, deps: Deps, auth: AuthService, passwords: Passwords) -> None:
        self.d = deps
        self.auth = auth
        self.passwords = passwords
        self.reauth = Reauth(deps, passwords, auth.directory)

    async def mine(self, session: Session) -> list[SessionInfo]:
        await self.auth.last_seen.flush()
        async with self.d.store.read() as tx:
            return await tx.list_sessions(session.user.id, self.d.clock.now())

    async def revoke(self, session: Session, token_id: str) -> None:
        """End one of your own sessions (the current one included). Another user's
        session id answers not_found, like an unknown one."""
        user = session.user
        async with self.d.store.write() as tx:
            if await tx.token_owner(token_id) != user.id:
                raise NotFound("session not found", session_id=token_id)
            await tx.revoke_token(token_id, self.d.clock.now())
            await record(
                tx,
                self.d.clock,
                AuditAction.SESSION_REVOKED,
                actor_id=user.id,
                target_id=token_id,
            )
            close_connections_on_commit(tx, self.d.bus, user.id, "revoked", token_ids=[token_id])

    async def revoke_others(self, session: Session) -> int:
        """Sign out every other session of yours ("sign out all others"): this one stays,
        the others' live connections close. Returns how many ended."""
        user = session.user
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            others = [
                s.token_id
                for s in await tx.list_sessions(user.id, now)
                if s.token_id != session.token_id
            ]
            if not others:
                return 0
            await tx.revoke_user_tokens_except(user.id, session.token_id, now)
            await record(
                tx,
                self.d.clock,
                AuditAction.SESSIONS_REVOKED,
                actor_id=user.id,
                target_id=user.id,
                details={"reason": "others_signed_out", "count": len(others)},
            )
            close_connections_on_commit(tx, self.d.bus, user.id, "revoked", token_ids=others)
        return len(others)

    async def of_user(self, actor: User | None, user_id: str) -> list[SessionInfo]:
        """An admin looks at someone's sessions."""
        target = await self._managed(actor, user_id)
        await self.auth.last_seen.flush()
        async with self.d.store.read() as tx:
            return await tx.list_sessions(target.id, self.d.clock.now())

    async def revoke_all(self, actor: User | None, user_id: str) -> None:
        """An admin ends every session of a user (their live connections close)."""
        target = await self._managed(actor, user_id)
        await self.auth.revoke_all(target, "sessions_revoked", actor)

    async def change_password(self, session: Session, current: str, new: str) -> None:
        """Change your own password: the current one is needed (checked under the login
        guard, services/reauth.py); every other session of yours ends, this one stays."""
        user = session.user
        if user.bot:
            raise InvalidOperation("a bot account has no password")
        if user.origin is not UserOrigin.LOCAL:
            raise InvalidOperation(
                f"this account's password is kept by its identity provider ({user.origin.value})"
            )
        await self.reauth.password(user, current, "password_change", field="current_password")
        await check_new_password(
            self.d.security.password_policy, new, user.username, user.display_name
        )
        hashed = await self.passwords.hash(new)
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            others = [
                s.token_id
                for s in await tx.list_sessions(user.id, now)
                if s.token_id != session.token_id
            ]
            await tx.set_password_hash(user.id, hashed)
            await tx.revoke_user_tokens_except(user.id, session.token_id, now)
            await record(
                tx, self.d.clock, AuditAction.PASSWORD_CHANGED, actor_id=user.id, target_id=user.id
            )
            # this session's connections stay open
            close_connections_on_commit(
                tx, self.d.bus, user.id, "password_changed", token_ids=others
            )

    async def _managed(self, actor: User | None, user_id: str) -> User:
        async with self.d.store.read() as tx:
            target = await tx.get_user(user_id)
        if target is None:
            raise NotFound("user not found", user_id=user_id)
        if actor is not None:
            check_can_manage_user(actor, target, None)
        return target
