"""Accounts: create, find, change role, disable, reset password."""

from __future__ import annotations

import secrets
import unicodedata

from tidings.core.audit import AuditAction
from tidings.core.errors import Conflict, Forbidden, InvalidOperation, NotFound
from tidings.core.models import DepartmentId, OrgRole, User, UserId, UserOrigin
from tidings.core.notifications import check_email
from tidings.core.rules import (
    check_can_manage_user,
    clean_text,
    normalize_username,
    search_key,
    username_key,
)
from tidings.services.audit import record as audit
from tidings.services.auth import AuthService
from tidings.services.context import Deps
from tidings.services.events import close_connections_on_commit
from tidings.services.password_policy import check_new_password
from tidings.services.passwords import Passwords
from tidings.services.profile import announce
from tidings.store.ports import Tx

OWNER_CREATED_KEY = "owner_created"


class UserService:
    def __init__(self, deps: Deps, auth: AuthService, passwords: Passwords) -> None:
        self.d = deps
        self.auth = auth
        self.passwords = passwords

    async def create(
        self,
        actor: User | None,
        username: str,
        password: str,
        display_name: str | None = None,
        role: OrgRole = OrgRole.MEMBER,
    ) -> User:
        """Create an account. `actor` None is the operator at the command line."""
        name = normalize_username(username)
        shown = clean_text(display_name or name, field="display_name", max_chars=80)
        user = User(
            id=UserId(self.d.ids.new_id()),
            username=name,
            display_name=shown,
            role=role,
            disabled=False,
            created_at=self.d.clock.now(),
        )
        if actor is not None:
            check_can_manage_user(actor, user, role)
        await check_new_password(self.d.security.password_policy, password, name, shown)
        hashed = await self.passwords.hash(password)
        async with self.d.store.write() as tx:
            await tx.insert_user(user, hashed, search_key(name, shown))
            await audit(
                tx,
                self.d.clock,
                AuditAction.USER_CREATED,
                actor_id=None if actor is None else actor.id,
                target_id=user.id,
                details={"username": name, "role": role.value},
            )
        return user

    async def ensure_owner(self, username: str, password: str | None) -> str | None:
        """On first start: create the owner account. Returns the generated password when
        one was made (printed once), None when the owner already existed."""
        async with self.d.store.read() as tx:
            if await tx.get_meta(OWNER_CREATED_KEY) is not None:
                return None
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(12)
        try:
            await self.create(None, username, password, "Owner", OrgRole.OWNER)
        except Conflict:
            return None  # another node of the cluster created it first
        async with self.d.store.write() as tx:
            await tx.set_meta(OWNER_CREATED_KEY, username)
        return generated

    async def get(self, actor: User, user_id: str) -> User:
        async with self.d.store.read() as tx:
            user = await tx.get_user(user_id)
        if user is None:
            raise NotFound("user not found", user_id=user_id)
        return user

    async def by_username(self, username: str) -> User:
        async with self.d.store.read() as tx:
            found = await tx.users_by_usernames([username_key(username)])
        if not found:
            raise NotFound(f"no user named {username!r}", username=username)
        return found[0]

    async def search(
        self,
        actor: User | None,
        query: str = "",
        department_id: str | None = None,
        limit: int = 50,
    ) -> list[User]:
        """Directory search on username and display name, case-insensitive, any script.
        With a department, its whole subtree is searched."""
        limit = max(1, min(limit, 200))
        async with self.d.store.read() as tx:
            deps = None
            if department_id is not None:
                all_deps = await tx.list_departments()
                if not any(d.id == department_id for d in all_deps):
                    raise NotFound("department not found", department_id=department_id)
                deps = _subtree(department_id, [(d.id, d.parent_id) for d in all_deps])
            # normalized like search_key (NFKC: full-width IME input finds ASCII names)
            key = unicodedata.normalize("NFKC", query).strip().casefold()
            return await tx.search_users(key, deps, limit)

    async def update(
        self,
        actor: User | None,
        user_id: str,
        *,
        display_name: str | None = None,
        role: OrgRole | None = None,
        disabled: bool | None = None,
        email: str | None = None,
    ) -> User:
        """`email`: where digests go (docs/notifications.md), "" removes it; a local
        account's only (a directory's accounts get theirs from it)."""
        address = None if not email else check_email(email)
        async with self.d.store.write() as tx:
            target = await tx.get_user(user_id)
            if target is None:
                raise NotFound("user not found", user_id=user_id)
            if actor is not None:
                check_can_manage_user(actor, target, role)
                if actor.id == target.id and (disabled or (role and role != actor.role)):
                    raise Forbidden("you cannot disable yourself or change your own role")
            shown = (
                None
                if display_name is None
                else clean_text(display_name, field="display_name", max_chars=80)
            )
            # Only an active owner counts: a disabled one may be demoted or disabled
            # again whatever the number of owners.
            loses_owner = (
                target.role is OrgRole.OWNER
                and not target.disabled
                and (disabled or (role is not None and role is not OrgRole.OWNER))
            )
            if loses_owner and await tx.count_active_owners() <= 1:
                raise InvalidOperation("the organization must keep at least one active owner")
            if email is not None and address != target.email:
                if target.origin is not UserOrigin.LOCAL:
                    raise InvalidOperation(
                        "this account's email address comes from the directory "
                        f"({target.origin.value})"
                    )
                await tx.set_user_email(user_id, address)
                await audit(
                    tx,
                    self.d.clock,
                    AuditAction.USER_EMAIL_CHANGED,
                    actor_id=None if actor is None else actor.id,
                    target_id=user_id,
                    details={"had": target.email is not None, "has": address is not None},
                )
            if shown is not None:
                await tx.set_display_name(user_id, shown, search_key(target.username, shown))
            if role is not None:
                await tx.set_role(user_id, role)
            if disabled is not None:
                await tx.set_disabled(user_id, disabled)
            if shown is not None or role is not None or disabled is not None:
                await self._audit_update(tx, actor, target, role, disabled, display_name)
            if disabled:
                # every session ends with the disable, in the same transaction: enabled
                # again, the user signs in anew (a bot needs a new token:
                # BotService.rotate_token); nothing from before comes back
                await tx.revoke_user_tokens(user_id, self.d.clock.now())
                if not target.disabled:
                    await audit(
                        tx,
                        self.d.clock,
                        AuditAction.SESSIONS_REVOKED,
                        actor_id=None if actor is None else actor.id,
                        target_id=user_id,
                        details={"reason": "user_disabled"},
                    )
            updated = await tx.get_user(user_id)
            if updated is not None and shown is not None and shown != target.display_name:
                # everyone who holds the name gets the new one (services/profile.py)
                await announce(tx, self.d.bus, updated, self.d.clock.now())
            if disabled:
                close_connections_on_commit(tx, self.d.bus, user_id, "user_disabled")
        assert updated is not None
        return updated

    async def reset_password(self, actor: User | None, user_id: str, password: str) -> None:
        """Set a new password; every session of that user ends."""
        async with self.d.store.read() as tx:
            target = await tx.get_user(user_id)
        if target is None:
            raise NotFound("user not found", user_id=user_id)
        if actor is not None:
            check_can_manage_user(actor, target, None)
        if target.bot:
            raise InvalidOperation("a bot account has no password: rotate its token instead")
        if target.origin is not UserOrigin.LOCAL:
            raise InvalidOperation(
                "this account's password is kept by its identity provider "
                f"({target.origin.value}): change it there"
            )
        await check_new_password(
            self.d.security.password_policy, password, target.username, target.display_name
        )
        hashed = await self.passwords.hash(password)
        async with self.d.store.write() as tx:
            await tx.set_password_hash(user_id, hashed)
            await audit(
                tx,
                self.d.clock,
                AuditAction.PASSWORD_RESET,
                actor_id=None if actor is None else actor.id,
                target_id=user_id,
            )
        await self.auth.revoke_all(target, "password_reset")

    async def _audit_update(
        self,
        tx: Tx,
        actor: User | None,
        target: User,
        role: OrgRole | None,
        disabled: bool | None,
        display_name: str | None,
    ) -> None:
        actor_id = None if actor is None else actor.id
        if role is not None and role is not target.role:
            await audit(
                tx,
                self.d.clock,
                AuditAction.ROLE_CHANGED,
                actor_id=actor_id,
                target_id=target.id,
                details={"old": target.role.value, "new": role.value},
            )
        if disabled is not None and disabled != target.disabled:
            action = AuditAction.USER_DISABLED if disabled else AuditAction.USER_ENABLED
            await audit(tx, self.d.clock, action, actor_id=actor_id, target_id=target.id)
        if display_name is not None and display_name != target.display_name:
            await audit(
                tx,
                self.d.clock,
                AuditAction.USER_UPDATED,
                actor_id=actor_id,
                target_id=target.id,
                details={"fields": ["display_name"]},
            )


def _subtree(root: str, edges: list[tuple[DepartmentId, DepartmentId | None]]) -> list[str]:
    children: dict[str | None, list[str]] = {}
    for dep_id, parent in edges:
        children.setdefault(parent, []).append(dep_id)
    found, todo = [], [root]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found
