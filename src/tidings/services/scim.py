"""SCIM 2.0 provisioning (RFC 7644): an identity provider (Okta, Entra ID, Feishu,
DingTalk, ...) creates, updates, deactivates and deletes accounts and departments, with
a bearer token an admin issued. The wire format is protocol/scim.py's; this module
decides what each request does to Tidings, in one transaction, audited with the token
as actor.

Decisions (docs/identity.md, "SCIM"):
- A SCIM User is a Tidings account, provisioned by the shared identity service
  (services/identity.py, provider "scim", the SCIM id as subject): display name,
  email and disabled go through it, in the same transaction as the SCIM record kept
  here (userName as given, externalId, name, emails). The account's username is made
  once, from the userName's part before any "@" (lower case, other characters as "-",
  at most 32; `-2`, `-3`, ... when that name is another SCIM User's). An existing
  account of that username that is no SCIM User is linked or refused as
  `identity_link_existing` says (never the owner or a bot).
- `active: false` disables the account: every session ends and its live connections
  close, in the same transaction; `active: true` enables it again (the user signs in
  anew). DELETE disables the account the same way and ends its SCIM link (the
  resource is gone: 404), but never deletes the account: Tidings never loses
  messages. A later POST with the same userName takes the account over again.
- A SCIM Group is a department (top-level when SCIM creates it; one of that name
  taken over unless identity_link_existing is "never"). Its SCIM members are
  the department's members that are SCIM users; members added by hand stay. With
  `scim_group_roles`, membership of the named groups sets the role (admin > member >
  guest; in none of them: member); owners are never provisioned, so never changed.
- Passwords: a `password` sets the account's local password (policy checked); without
  one the account has none and signs in by single sign-on.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tidings.core.audit import AuditAction
from tidings.core.clock import new_token, rfc3339
from tidings.core.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    TidingsError,
    TooLarge,
    Unauthenticated,
)
from tidings.core.models import Department, DepartmentId, ExternalProfile, OrgRole, User, UserId
from tidings.core.rules import check_admin, clean_text
from tidings.services.audit import record as audit
from tidings.services.auth import token_hash
from tidings.services.context import Deps
from tidings.services.events import close_connections_on_commit
from tidings.services.identity import IdentityService, acting_for
from tidings.services.password_policy import check_new_password
from tidings.services.passwords import Passwords
from tidings.services.ratelimit import Action, RateLimiter
from tidings.store.ports import ScimGroupRecord, ScimToken, ScimUserRecord, Tx

if TYPE_CHECKING:
    # Imported where used: SCIM's models cost a third of every CLI command's start-up
    # (scim2_models builds its pydantic models at import), and only SCIM requests use them.
    from tidings.protocol import scim as wire

PROVIDER = "scim"  # the identity provider name of SCIM's links (services/identity.py)
USED_EVERY = timedelta(seconds=60)  # how stale a token's last_used_at may get
MAX_TOKENS = 20  # live SCIM tokens at once: one or two per identity provider
ROLE_RANK = {OrgRole.ADMIN: 2, OrgRole.MEMBER: 1, OrgRole.GUEST: 0}
_NOT_NAME = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class ScimUserView:
    user: User
    record: ScimUserRecord


@dataclass(frozen=True, slots=True)
class ScimGroupView:
    record: ScimGroupRecord
    members: list[ScimUserRecord]


def user_json(view: ScimUserView, base_url: str) -> dict[str, Any]:
    from tidings.protocol import scim as wire

    shown = view.record.attributes.get("displayName")
    active = view.record.attributes.get("active")
    return wire.user_resource(
        user_id=view.record.id,
        user_name=view.record.user_name,
        external_id=view.record.external_id,
        display_name=shown if isinstance(shown, str) else None,
        # `active` is answered once given, or when the account is disabled
        active=(not view.user.disabled) if active is not None or view.user.disabled else None,
        attributes=view.record.attributes,
        created=rfc3339(view.record.created_at),
        modified=rfc3339(view.record.updated_at),
        base_url=base_url,
    )


def group_json(view: ScimGroupView, base_url: str) -> dict[str, Any]:
    from tidings.protocol import scim as wire

    return wire.group_resource(
        group_id=view.record.department_id,
        display_name=view.record.display_name,
        external_id=view.record.external_id,
        member_ids=[m.id for m in view.members],
        created=rfc3339(view.record.created_at),
        modified=rfc3339(view.record.updated_at),
        base_url=base_url,
    )


def username_for(user_name: str) -> str:
    """The Tidings username made from a SCIM userName (`Ann.Lee@corp.example` ->
    `ann.lee`)."""
    local = user_name.split("@", 1)[0].strip().lower()
    name = _NOT_NAME.sub("-", local).strip("._-")[:32].strip("._-")
    return name or "user"


def primary_email(resource: wire.User) -> str | None:
    """The account's email: the primary one, else the work one, else the first."""
    emails = [e for e in resource.emails or [] if e.value]
    ranked = sorted(emails, key=lambda e: (not e.primary, str(e.type or "").lower() != "work"))
    return str(ranked[0].value) if ranked else None


def _check_match(if_match: str | None, current: str) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    wanted = {tag.strip() for tag in if_match.split(",")}
    weakless = current.removeprefix("W/")
    if current not in wanted and weakless not in wanted:
        raise PreconditionFailed("the resource changed: its version is not the one of If-Match")


class ScimService:
    def __init__(
        self,
        deps: Deps,
        passwords: Passwords,
        limiter: RateLimiter,
        identity: IdentityService,
    ) -> None:
        self.d = deps
        self.passwords = passwords
        self.identity = identity
        self.limiter = limiter

    # --- tokens (admins) -------------------------------------------------------------
    async def issue_token(self, actor: User | None, name: str) -> tuple[ScimToken, str]:
        """A new SCIM token, returned once: only its hash is kept. `actor` None is the
        operator at the command line."""
        check_admin(actor, "manage SCIM tokens")
        label = clean_text(name or "SCIM", field="name", max_chars=80)
        token = "scim_" + new_token()
        token_id = self.d.ids.new_id()
        now = self.d.clock.now()
        async with self.d.store.write() as tx:
            live = [t for t in await tx.list_scim_tokens() if t.revoked_at is None]
            if len(live) >= MAX_TOKENS:
                raise Conflict(
                    f"at most {MAX_TOKENS} live SCIM tokens: revoke one first", field="name"
                )
            actor_id = None if actor is None else actor.id
            await tx.insert_scim_token(token_id, token_hash(token), label, actor_id, now)
            await audit(
                tx,
                self.d.clock,
                AuditAction.SCIM_TOKEN_CREATED,
                actor_id=actor_id,
                target_id=token_id,
                details={"name": label},
            )
            issued = await tx.scim_token_for_hash(token_hash(token))
        assert issued is not None
        return issued, token

    async def tokens(self, actor: User | None) -> list[ScimToken]:
        check_admin(actor, "manage SCIM tokens")
        async with self.d.store.read() as tx:
            return await tx.list_scim_tokens()

    async def revoke_token(self, actor: User | None, token_id: str) -> None:
        """The token stops working at once (its next request answers 401)."""
        check_admin(actor, "manage SCIM tokens")
        async with self.d.store.write() as tx:
            if not await tx.revoke_scim_token(token_id, self.d.clock.now()):
                raise NotFound("no live SCIM token with this id")
            await audit(
                tx,
                self.d.clock,
                AuditAction.SCIM_TOKEN_REVOKED,
                actor_id=None if actor is None else actor.id,
                target_id=token_id,
            )

    async def authenticate(self, token: str, address: str) -> ScimToken:
        """The live SCIM token `token` is, counted against its rate limit."""
        if not token.startswith("scim_") or len(token) > 128:
            raise Unauthenticated("not a SCIM token")
        async with self.d.store.read() as tx:
            found = await tx.scim_token_for_hash(token_hash(token))
        if found is None or found.revoked_at is not None:
            raise Unauthenticated("unknown or revoked SCIM token")
        await self.limiter.check(Action.SCIM, found.id, address or None)
        now = self.d.clock.now()
        if found.last_used_at is None or now - found.last_used_at >= USED_EVERY:
            async with self.d.store.write() as tx:
                await tx.set_scim_token_used(found.id, now)
        return found

    # --- users -----------------------------------------------------------------------
    async def get_user(self, caller: ScimToken, scim_id: str) -> ScimUserView:
        async with self.d.store.read() as tx:
            return await self._user_view(tx, scim_id)

    async def list_users(
        self, caller: ScimToken, attribute: str | None, value: str, start: int, count: int
    ) -> tuple[int, list[ScimUserView]]:
        async with self.d.store.read() as tx:
            total, records = await tx.find_scim_users(attribute, value, start - 1, count)
            users = {u.id: u for u in await tx.get_users([r.user_id for r in records])}
        return total, [
            ScimUserView(users[UserId(r.user_id)], r) for r in records if r.user_id in users
        ]

    async def create_user(self, caller: ScimToken, resource: wire.User) -> ScimUserView:
        """A new SCIM User: an account made (or linked: identity_link_existing) by the
        shared provisioning (services/identity.py), its SCIM record beside it."""
        password_hash = await self._password_hash(resource)
        acting = acting_for.set(caller.id)
        try:
            async with self.d.store.write() as tx:
                user_name = self._user_name(resource)
                taken, _ = await tx.find_scim_users("userName", user_name, 0, 1)
                if taken:
                    raise Conflict(
                        f"userName {user_name!r} is taken",
                        field="userName",
                        scim_type="uniqueness",
                    )
                scim_id = self.d.ids.new_id()
                username = await self._free_username(tx, username_for(user_name))
                user = await self.identity.provision_in(
                    tx, PROVIDER, scim_id, self._profile(resource, username)
                )
                if password_hash is not None:
                    await tx.set_password_hash(user.id, password_hash)
                now = self.d.clock.now()
                record = self._record(scim_id, user, resource, now, now)
                await tx.put_scim_user(record)
                await audit(
                    tx,
                    self.d.clock,
                    AuditAction.SCIM_USER_CREATED,
                    actor_id=caller.id,
                    target_id=user.id,
                    details={"scim_id": scim_id, "userName": user_name, "username": username},
                )
                created = await tx.get_user(user.id)
        except Conflict as exc:
            raise Conflict(exc.message, field="userName", scim_type="uniqueness") from exc
        finally:
            acting_for.reset(acting)
        assert created is not None
        return ScimUserView(created, record)

    async def replace_user(
        self, caller: ScimToken, scim_id: str, resource: wire.User, if_match: str | None
    ) -> ScimUserView:
        password_hash = await self._password_hash(resource)
        async with self.d.store.write() as tx:
            current = await self._user_view(tx, scim_id)
            _check_match(if_match, user_json(current, "")["meta"]["version"])
            return await self._save_user(tx, caller, current, resource, password_hash)

    async def patch_user(
        self, caller: ScimToken, scim_id: str, patch: wire.UserPatch, if_match: str | None
    ) -> ScimUserView:
        def patched(view: ScimUserView) -> wire.User:
            from tidings.protocol import scim as wire

            current = wire.load_resource(wire.User, user_json(view, ""))
            result: wire.User = wire.apply_patch(patch, current)
            return result

        async with self.d.store.read() as tx:  # a password is hashed before the write
            password_hash = await self._password_hash(patched(await self._user_view(tx, scim_id)))
        async with self.d.store.write() as tx:
            current = await self._user_view(tx, scim_id)
            _check_match(if_match, user_json(current, "")["meta"]["version"])
            resource = patched(current)
            if resource.password is not None and password_hash is None:
                password_hash = await self.passwords.hash(resource.password)  # raced: rare
            return await self._save_user(tx, caller, current, resource, password_hash)

    async def delete_user(self, caller: ScimToken, scim_id: str, if_match: str | None) -> None:
        """Deprovision: the account is disabled (sessions end, connections close) and
        leaves SCIM (its identity link and SCIM record go); it and its messages stay."""
        acting = acting_for.set(caller.id)
        try:
            async with self.d.store.write() as tx:
                current = await self._user_view(tx, scim_id)
                _check_match(if_match, user_json(current, "")["meta"]["version"])
                await self.identity.disable_in(
                    tx, PROVIDER, scim_id, current.user, "deleted by SCIM"
                )
                await tx.delete_link(PROVIDER, scim_id)
                await tx.delete_scim_user(scim_id)
                await audit(
                    tx,
                    self.d.clock,
                    AuditAction.SCIM_USER_DELETED,
                    actor_id=caller.id,
                    target_id=current.user.id,
                    details={"scim_id": scim_id, "userName": current.record.user_name},
                )
        finally:
            acting_for.reset(acting)

    async def _user_view(self, tx: Tx, scim_id: str) -> ScimUserView:
        record = await tx.get_scim_user(scim_id)
        user = None if record is None else await tx.get_user(record.user_id)
        if record is None or user is None:
            raise NotFound("no SCIM user with this id", user_id=scim_id)
        return ScimUserView(user, record)

    def _user_name(self, resource: wire.User) -> str:
        from tidings.protocol import scim as wire

        raw = resource.user_name or ""
        name = clean_text(raw, field="userName", max_chars=256)
        if not name:
            raise wire.invalid("userName is required", "invalidValue", "userName")
        return name

    async def _password_hash(self, resource: wire.User) -> str | None:
        if resource.password is None:
            return None
        shown = resource.display_name or resource.user_name or ""
        await check_new_password(
            self.d.security.password_policy,
            resource.password,
            username_for(resource.user_name or ""),
            shown,
        )
        return await self.passwords.hash(resource.password)

    async def _free_username(self, tx: Tx, wanted: str) -> str:
        """`wanted`, or `wanted-2`, ... : the first that is no account yet or an account
        that is no SCIM User (whether that one may be linked is the shared policy's to
        say: services/identity.py); two SCIM Users never share an account, and the
        owner's and bots' names (never linked) are passed over."""
        stem = wanted[:28].rstrip("._-") or "user"
        candidates = [wanted] + [f"{stem}-{n}" for n in range(2, 100)]
        existing = {u.username: u for u in await tx.users_by_usernames(candidates)}
        for name in candidates:
            user = existing.get(name)
            if user is None:
                return name
            never = user.bot or user.role is OrgRole.OWNER  # never linked: a name beside
            if not never and await tx.scim_user_of(user.id) is None:
                return name
        raise Conflict(f"no free username like {wanted!r}", field="userName")

    def _profile(self, resource: wire.User, username: str) -> ExternalProfile:
        """What the shared provisioning makes the account: display name, email,
        disabled (departments come from Groups; roles from scim_group_roles)."""
        return ExternalProfile(
            username=username,
            display_name=self._display_name(resource, username),
            email=primary_email(resource),
            departments=None,
            role=None,
            disabled=resource.active is False,
        )

    def _record(
        self,
        scim_id: str,
        user: User,
        resource: wire.User,
        created: datetime,
        updated: datetime,
    ) -> ScimUserRecord:
        from tidings.protocol import scim as wire

        external_id = resource.external_id
        if external_id is not None:
            external_id = clean_text(external_id, field="externalId", max_chars=256)
        attributes = wire.wire_attributes(resource)
        if resource.active is not None:
            attributes["active"] = resource.active
        return ScimUserRecord(
            scim_id, user.id, self._user_name(resource), external_id, attributes, created, updated
        )

    def _display_name(self, resource: wire.User, fallback: str) -> str:
        """The account's display name: displayName, else the name, else the userName."""
        if resource.display_name is not None:
            return clean_text(resource.display_name, field="displayName", max_chars=80)
        name = resource.name
        candidates = []
        if name is not None:
            candidates.append(name.formatted or "")
            candidates.append(" ".join(p for p in (name.given_name, name.family_name) if p))
        candidates.append(resource.user_name or "")
        for candidate in candidates:
            text = " ".join(candidate.split())[:80].strip()
            if text:
                try:
                    return clean_text(text, field="displayName", max_chars=80)
                except TidingsError:  # not fit for a name: the next one
                    continue
        return fallback

    async def _save_user(
        self,
        tx: Tx,
        caller: ScimToken,
        current: ScimUserView,
        resource: wire.User,
        password_hash: str | None,
    ) -> ScimUserView:
        """Make the account and its SCIM record what `resource` says (a PUT's full
        replacement; a PATCH's result), in `tx`."""
        user, before = current.user, current.record
        acting = acting_for.set(caller.id)
        try:
            await self.identity.provision_in(
                tx, PROVIDER, before.id, self._profile(resource, user.username)
            )
        finally:
            acting_for.reset(acting)
        now = self.d.clock.now()
        record = self._record(before.id, user, resource, before.created_at, now)
        changed = [
            name
            for name, old, new in (
                ("userName", before.user_name, record.user_name),
                ("externalId", before.external_id, record.external_id),
                ("attributes", before.attributes, record.attributes),
            )
            if old != new
        ]
        if password_hash is not None:
            # a new password ends every session, as a reset does
            await tx.set_password_hash(user.id, password_hash)
            await tx.revoke_user_tokens(user.id, now)
            close_connections_on_commit(tx, self.d.bus, user.id, "password_reset")
            changed.append("password")
        if not changed:
            record = dataclasses.replace(record, updated_at=before.updated_at)
        await tx.put_scim_user(record)
        if changed:
            await audit(
                tx,
                self.d.clock,
                AuditAction.SCIM_USER_UPDATED,
                actor_id=caller.id,
                target_id=user.id,
                details={"scim_id": before.id, "fields": changed},
            )
        updated = await tx.get_user(user.id)
        assert updated is not None
        return ScimUserView(updated, record)

    # --- groups ----------------------------------------------------------------------
    async def get_group(self, caller: ScimToken, group_id: str) -> ScimGroupView:
        async with self.d.store.read() as tx:
            return await self._group_view(tx, group_id)

    async def list_groups(
        self, caller: ScimToken, attribute: str | None, value: str, start: int, count: int
    ) -> tuple[int, list[ScimGroupView]]:
        async with self.d.store.read() as tx:
            total, records = await tx.find_scim_groups(attribute, value, start - 1, count)
            views = [ScimGroupView(r, await tx.scim_members(r.department_id)) for r in records]
        return total, views

    async def create_group(self, caller: ScimToken, resource: wire.Group) -> ScimGroupView:
        async with self.d.store.write() as tx:
            name = self._group_name(resource)
            taken, _ = await tx.find_scim_groups("displayName", name, 0, 1)
            if taken:
                raise Conflict(
                    f"displayName {name!r} is taken", field="displayName", scim_type="uniqueness"
                )
            now = self.d.clock.now()
            departments = await tx.list_departments()
            same = [d for d in departments if d.parent_id is None and d.name == name]
            if same and self.d.identity.identity_link_existing == "never":
                raise Conflict(
                    f"a department {name!r} exists", field="displayName", scim_type="uniqueness"
                )
            if same:
                dep = same[0]
                action = AuditAction.SCIM_GROUP_ADOPTED
            else:
                dep = Department(DepartmentId(self.d.ids.new_id()), name, None)
                await tx.insert_department(dep, now)
                action = AuditAction.SCIM_GROUP_CREATED
            blank = ScimGroupRecord(dep.id, name, None, now, now)
            view = await self._save_group(tx, caller, ScimGroupView(blank, []), resource, True)
            await audit(
                tx,
                self.d.clock,
                action,
                actor_id=caller.id,
                target_id=dep.id,
                details={"name": name, "members": len(view.members)},
            )
        return view

    async def replace_group(
        self, caller: ScimToken, group_id: str, resource: wire.Group, if_match: str | None
    ) -> ScimGroupView:
        async with self.d.store.write() as tx:
            current = await self._group_view(tx, group_id)
            _check_match(if_match, group_json(current, "")["meta"]["version"])
            return await self._save_group(tx, caller, current, resource)

    async def patch_group(
        self,
        caller: ScimToken,
        group_id: str,
        patch: wire.GroupPatch,
        if_match: str | None,
    ) -> ScimGroupView:
        from tidings.protocol import scim as wire

        async with self.d.store.write() as tx:
            current = await self._group_view(tx, group_id)
            before = group_json(current, "")
            _check_match(if_match, before["meta"]["version"])
            resource = wire.apply_patch(patch, wire.load_resource(wire.Group, before))
            return await self._save_group(tx, caller, current, resource)

    async def delete_group(self, caller: ScimToken, group_id: str, if_match: str | None) -> None:
        """The department goes (its members stay, without it)."""
        async with self.d.store.write() as tx:
            current = await self._group_view(tx, group_id)
            _check_match(if_match, group_json(current, "")["meta"]["version"])
            members = await tx.department_member_ids(group_id)
            await tx.delete_scim_group(group_id)
            await tx.delete_department(group_id)
            await self._apply_roles(tx, caller, members)
            await audit(
                tx,
                self.d.clock,
                AuditAction.SCIM_GROUP_DELETED,
                actor_id=caller.id,
                target_id=group_id,
                details={"name": current.record.display_name},
            )

    async def _group_view(self, tx: Tx, group_id: str) -> ScimGroupView:
        record = await tx.get_scim_group(group_id)
        if record is None:
            raise NotFound("no SCIM group with this id", department_id=group_id)
        return ScimGroupView(record, await tx.scim_members(group_id))

    def _group_name(self, resource: wire.Group) -> str:
        from tidings.protocol import scim as wire

        name = clean_text(resource.display_name or "", field="displayName", max_chars=80)
        if not name:
            raise wire.invalid("displayName is required", "invalidValue", "displayName")
        return name

    async def _save_group(
        self,
        tx: Tx,
        caller: ScimToken,
        current: ScimGroupView,
        resource: wire.Group,
        created: bool = False,
    ) -> ScimGroupView:
        from tidings.protocol import scim as wire

        before = current.record
        name = self._group_name(resource)
        external_id = resource.external_id
        if external_id is not None:
            external_id = clean_text(external_id, field="externalId", max_chars=256)
        members = list(dict.fromkeys(m.value for m in resource.members or [] if m.value))
        if len(members) > self.d.scim.scim_max_members:
            raise TooLarge(
                f"at most {self.d.scim.scim_max_members} members per request",
                limit=self.d.scim.scim_max_members,
            )
        found = {r.id: r for r in await tx.scim_users_by_ids(members)}
        for scim_id in members:
            if scim_id not in found:
                raise wire.invalid(f"member {scim_id[:64]!r} is not a SCIM user", "invalidValue")
        had = {r.id: r for r in current.members}
        added = sorted(found[i].user_id for i in members if i not in had)
        removed = sorted(r.user_id for i, r in had.items() if i not in found)
        changed: list[str] = []
        if name != before.display_name:
            await tx.rename_department(before.department_id, name)
            changed.append("displayName")
        if external_id != before.external_id:
            changed.append("externalId")
        for uid in added:
            await tx.add_department_member(before.department_id, uid)
        for uid in removed:
            await tx.remove_department_member(before.department_id, uid)
        if added or removed:
            changed.append("members")
        now = self.d.clock.now()
        record = ScimGroupRecord(
            before.department_id,
            name,
            external_id,
            before.created_at,
            now if changed or created else before.updated_at,
        )
        await tx.put_scim_group(record)
        if added or removed:
            await self._apply_roles(tx, caller, [*added, *removed])
        if changed and not created:
            await audit(
                tx,
                self.d.clock,
                AuditAction.SCIM_GROUP_UPDATED,
                actor_id=caller.id,
                target_id=before.department_id,
                details={"fields": changed, "added": added[:100], "removed": removed[:100]},
            )
        return ScimGroupView(record, sorted(found.values(), key=lambda r: r.id))

    async def _apply_roles(self, tx: Tx, caller: ScimToken, user_ids: Sequence[str]) -> None:
        """With scim_group_roles: each of these users gets the highest role of the
        mapped groups they are in (member when in none). Owners and bots never change."""
        mapping = {k.casefold(): OrgRole(v) for k, v in self.d.scim.scim_group_roles.items()}
        if not mapping or not user_ids:
            return
        _, groups = await tx.find_scim_groups(None, "", 0, 10_000)
        role_of = {
            g.department_id: mapping[g.display_name.casefold()]
            for g in groups
            if g.display_name.casefold() in mapping
        }
        for user in await tx.get_users(user_ids):
            if user.bot or user.role is OrgRole.OWNER or await tx.scim_user_of(user.id) is None:
                continue
            roles = [role_of[d] for d in user.department_ids if d in role_of]
            role = max(roles, key=ROLE_RANK.__getitem__) if roles else OrgRole.MEMBER
            if role is user.role:
                continue
            await tx.set_role(user.id, role)
            await audit(
                tx,
                self.d.clock,
                AuditAction.ROLE_CHANGED,
                actor_id=caller.id,
                target_id=user.id,
                details={"old": user.role.value, "new": role.value, "via": "scim_group"},
            )
