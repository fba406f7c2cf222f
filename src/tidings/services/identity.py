"""Accounts kept by an identity provider: what LDAP / Active Directory, OpenID Connect and
SCIM share. Each method maps what its provider says about a person to an
`ExternalProfile` (core/models.py) and calls `IdentityService.provision`, which creates
the account just in time or brings it in step, in one transaction with its audit
entries.

- A provider is named "ldap", "oidc:<name>" or "scim"; the part before ":" is the
  `origin` of the accounts it creates. A person is (provider, subject): the provider's
  stable id (an entry's UUID, an ID token's `sub`, a SCIM id), never the username,
  which may change.
- An account made here has no usable local password (`NO_PASSWORD` is no argon2 hash:
  no password matches it); it signs in through its provider.
- A username that is already an account not linked to this identity is the case that
  could hand one person's account to another. The setting `identity_link_existing`
  decides: `never` refuses (Conflict), `provisioned` (the default) links accounts that
  another provider made (SCIM provisions, OIDC signs in) but refuses local ones, `all`
  links local accounts too. The owner and bots are never linked: the owner always signs
  in locally, so a broken provider never locks the organization out.
- A provider never makes an owner, and never changes an owner's role or disables one.
- A provider enables again only an account it disabled itself (the link remembers it):
  an account an admin disabled here stays disabled whatever the provider says, until an
  admin enables it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

import structlog

from tidings.core.audit import AuditAction
from tidings.core.errors import Conflict, InvalidRequest, NotFound
from tidings.core.models import (
    Department,
    DepartmentId,
    ExternalProfile,
    OrgRole,
    User,
    UserId,
    UserOrigin,
)
from tidings.core.rules import clean_text, normalize_username, refused_characters, search_key
from tidings.services.audit import record
from tidings.services.context import Deps
from tidings.services.events import close_connections_on_commit
from tidings.services.profile import announce
from tidings.store.ports import Tx

log = structlog.get_logger(__name__)

# Not an argon2 hash: no password ever matches it (the account signs in through its
# provider).
NO_PASSWORD = "!identity"
MAX_EMAIL_CHARS = 254
MAX_DEPARTMENT_DEPTH = 16
# The actor of the audit entries provisioning writes: None (the provider itself: a
# sign-in, a sync), or who asked for it (services/scim.py sets its token's id).
acting_for: ContextVar[str | None] = ContextVar("acting_for", default=None)


def origin_of(provider: str) -> UserOrigin:
    """The origin of the accounts `provider` ("ldap", "oidc:<name>", "scim") makes."""
    kind = provider.partition(":")[0]
    try:
        origin = UserOrigin(kind)
    except ValueError:
        raise ValueError(f"unknown identity provider {provider!r}") from None
    if origin is UserOrigin.LOCAL or not 0 < len(provider) <= 64:
        raise ValueError(f"unknown identity provider {provider!r}")
    return origin


def clean_email(raw: str | None) -> str | None:
    """An address as a provider gives it, trimmed; None or empty: none. Refused when it
    is no address (one "@" with something on both sides, no spaces or controls)."""
    if raw is None or not raw.strip():
        return None
    email = raw.strip()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(email) > MAX_EMAIL_CHARS
        or any(ch.isspace() for ch in email)
        or refused_characters(email)
    ):
        raise InvalidRequest(f"email {email[:60]!r} is not an email address", field="email")
    return email


def department_paths(raw: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Department paths ("Engineering/Platform") as cleaned segments, each path once."""
    paths: dict[tuple[str, ...], None] = {}
    for path in raw:
        parts = tuple(
            clean_text(part, field="departments", max_chars=80)
            for part in path.split("/")
            if part.strip()
        )
        if len(parts) > MAX_DEPARTMENT_DEPTH:
            raise InvalidRequest(
                f"department path {path[:80]!r} is deeper than {MAX_DEPARTMENT_DEPTH}",
                field="departments",
            )
        if parts:
            paths[parts] = None
    return list(paths)


@dataclass(frozen=True, slots=True)
class CleanProfile:
    """An ExternalProfile checked and normalized (`clean`)."""

    username: str
    display_name: str
    email: str | None
    departments: list[tuple[str, ...]] | None
    role: OrgRole | None
    disabled: bool


def clean(profile: ExternalProfile) -> CleanProfile:
    """Check what a provider says, before anything is written: a clear error
    (InvalidRequest naming the field) for what cannot be an account."""
    name = normalize_username(profile.username)
    shown_raw = (profile.display_name or "").strip() or name
    shown = clean_text(shown_raw[:80], field="display_name", max_chars=80)
    if profile.role is OrgRole.OWNER:
        raise InvalidRequest("an identity provider cannot make owners", field="role")
    deps = None if profile.departments is None else department_paths(profile.departments)
    return CleanProfile(
        name, shown, clean_email(profile.email), deps, profile.role, bool(profile.disabled)
    )


@dataclass(slots=True)
class Change:
    """What provisioning changed (or, planned, would change) on one account."""

    action: str  # created | updated | disabled | linked | unchanged
    user: User | None
    fields: dict[str, object] = field(default_factory=dict)


def path_names(deps: list[Department]) -> dict[DepartmentId, tuple[str, ...]]:
    """Each department's path of names from the root."""
    by_id = {d.id: d for d in deps}
    out: dict[DepartmentId, tuple[str, ...]] = {}
    for dep in deps:
        parts, cur, seen = [dep.name], dep, {dep.id}
        while cur.parent_id is not None and cur.parent_id in by_id and cur.parent_id not in seen:
            cur = by_id[cur.parent_id]
            seen.add(cur.id)
            parts.append(cur.name)
        out[dep.id] = tuple(reversed(parts))
    return out


def diff(
    user: User,
    wanted: CleanProfile,
    paths: dict[DepartmentId, tuple[str, ...]],
    may_enable: bool = True,
) -> dict[str, object]:
    """The fields of `user` that `wanted` changes, with their new values (pure).
    `may_enable`: the provider disabled this account itself, so it may enable it again
    (an account an admin disabled here stays disabled)."""
    fields: dict[str, object] = {}
    if wanted.username != user.username:
        fields["username"] = wanted.username  # reported; usernames are not renamed
    if wanted.display_name != user.display_name:
        fields["display_name"] = wanted.display_name
    if wanted.email != user.email:
        fields["email"] = wanted.email
    owner = user.role is OrgRole.OWNER
    if wanted.role is not None and wanted.role is not user.role and not owner:
        fields["role"] = wanted.role.value
    if wanted.disabled and not user.disabled and not owner:
        fields["disabled"] = True
    elif not wanted.disabled and user.disabled and may_enable:
        fields["disabled"] = False
    if wanted.departments is not None:
        have = sorted("/".join(paths[d]) for d in user.department_ids if d in paths)
        want = sorted("/".join(p) for p in wanted.departments)
        if have != want:
            fields["departments"] = want
    return fields


class IdentityService:
    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def provision(self, provider: str, subject: str, profile: ExternalProfile) -> User:
        """Create the account of (provider, subject) just in time, or bring it in step with
        `profile`; returns it as it is now. Conflict when the username is an account
        this identity may not take (see the module's doc); InvalidRequest when the
        profile cannot be an account."""
        origin = origin_of(provider)
        wanted = clean(profile)
        if not subject or len(subject) > 255:
            raise InvalidRequest("an identity's subject is 1-255 characters", field="subject")
        try:
            return await self._provision(provider, subject, origin, wanted)
        except Conflict:
            # Another node (or sign-in) created or linked it meanwhile: once more, now
            # finding what it made; a real conflict raises again.
            return await self._provision(provider, subject, origin, wanted)

    async def plan(self, provider: str, subject: str, profile: ExternalProfile) -> Change:
        """What `provision` would do, without writing (for `--dry-run`)."""
        origin_of(provider)
        wanted = clean(profile)
        async with self.d.store.read() as tx:
            user = await tx.user_for_link(provider, subject)
            if user is None:
                existing = await tx.users_by_usernames([wanted.username])
                if not existing:
                    return Change("created", None, _created_fields(wanted))
                self._check_linkable(provider, existing[0])
                user, action = existing[0], "linked"
            else:
                action = "updated"
            may_enable = await self._may_enable(tx, provider, subject, user)
            fields = diff(user, wanted, path_names(await tx.list_departments()), may_enable)
        fields.pop("username", None)
        if action == "updated" and fields.get("disabled") is True:
            action = "disabled"
        if action == "updated" and not fields:
            action = "unchanged"
        return Change(action, user, fields)

    async def disable(self, provider: str, subject: str, reason: str) -> User | None:
        """The provider no longer has (or has disabled) this identity: its account is
        disabled and its sessions end. None when no account is linked to it; an owner is
        never disabled by a provider."""
        async with self.d.store.write() as tx:
            user = await tx.user_for_link(provider, subject)
            if user is None:
                return None
            if user.disabled or user.role is OrgRole.OWNER:
                return user
            await self._disable(tx, provider, subject, user, reason)
            return await tx.get_user(user.id)

    async def links(self, provider: str) -> list[tuple[str, User]]:
        """Every identity of `provider` and its account (the sync's starting point)."""
        async with self.d.store.read() as tx:
            found = await tx.provider_links(provider)
            users = {u.id: u for u in await tx.get_users(link.user_id for link in found)}
        return [(link.subject, users[link.user_id]) for link in found if link.user_id in users]

    async def linked(self, provider: str, subject: str) -> User | None:
        """The account linked to (provider, subject), if any."""
        async with self.d.store.read() as tx:
            return await tx.user_for_link(provider, subject)

    async def user_for(self, provider: str, subject: str) -> User:
        async with self.d.store.read() as tx:
            user = await tx.user_for_link(provider, subject)
        if user is None:
            raise NotFound(f"no account is linked to this {provider} identity")
        return user

    async def provision_in(
        self, tx: Tx, provider: str, subject: str, profile: ExternalProfile
    ) -> User:
        """`provision` inside the caller's write transaction `tx` (SCIM writes its own
        records beside the account's, all or nothing); a Conflict is not retried."""
        origin = origin_of(provider)
        wanted = clean(profile)
        if not subject or len(subject) > 255:
            raise InvalidRequest("an identity's subject is 1-255 characters", field="subject")
        return await self._provision_in(tx, provider, subject, origin, wanted)

    async def disable_in(
        self, tx: Tx, provider: str, subject: str, user: User, reason: str
    ) -> None:
        """Disable `user` (its sessions end, its connections close) inside `tx`; an owner
        or a disabled account is left as it is."""
        if not user.disabled and user.role is not OrgRole.OWNER:
            await self._disable(tx, provider, subject, user, reason)

    # --- the write ------------------------------------------------------------------
    async def _provision(
        self, provider: str, subject: str, origin: UserOrigin, wanted: CleanProfile
    ) -> User:
        async with self.d.store.write() as tx:
            return await self._provision_in(tx, provider, subject, origin, wanted)

    async def _provision_in(
        self, tx: Tx, provider: str, subject: str, origin: UserOrigin, wanted: CleanProfile
    ) -> User:
        now = self.d.clock.now()
        user = await tx.user_for_link(provider, subject)
        if user is None:
            existing = await tx.users_by_usernames([wanted.username])
            if not existing:
                return await self._create(tx, provider, subject, origin, wanted)
            user = existing[0]
            self._check_linkable(provider, user)
            await self._link(tx, provider, subject, origin, user)
            user = await tx.get_user(user.id)
            assert user is not None
        await tx.touch_link(provider, subject, now)
        await self._update(tx, provider, subject, user, wanted)
        updated = await tx.get_user(user.id)
        assert updated is not None
        return updated

    def _check_linkable(self, provider: str, user: User) -> None:
        policy = self.d.identity.identity_link_existing
        refuse = (
            user.bot
            or user.role is OrgRole.OWNER
            or policy == "never"
            or (policy == "provisioned" and user.origin is UserOrigin.LOCAL)
        )
        if refuse:
            what = "a local account" if user.origin is UserOrigin.LOCAL else "another account"
            raise Conflict(
                f"username {user.username!r} is {what} that this {provider} identity may not "
                "take over (an admin renames one of them, or sets identity_link_existing: "
                "docs/identity.md)",
                field="username",
            )

    async def _link(
        self, tx: Tx, provider: str, subject: str, origin: UserOrigin, user: User
    ) -> None:
        now = self.d.clock.now()
        olds = [link for link in await tx.links_of(user.id) if link.provider == provider]
        replaced = [link.subject for link in olds]
        for old in replaced:  # the entry was made anew (a new UUID): the new one holds
            await tx.delete_link(provider, old)
        await tx.put_link(provider, subject, user.id, now)
        if any(link.disabled_by_provider for link in olds):  # so it may enable it again
            await tx.set_link_disabled(provider, subject, True)
        if user.origin is UserOrigin.LOCAL:  # from now on the provider keeps it
            await tx.set_user_profile(
                user.id,
                display_name=user.display_name,
                search_key=search_key(user.username, user.display_name),
                email=user.email,
                origin=origin,
            )
        await record(
            tx,
            self.d.clock,
            AuditAction.IDENTITY_USER_LINKED,
            actor_id=acting_for.get(),
            target_id=user.id,
            details={
                "provider": provider,
                "subject": subject,
                "username": user.username,
                "was": user.origin.value,
                "replaced": replaced,
            },
        )

    async def _create(
        self, tx: Tx, provider: str, subject: str, origin: UserOrigin, wanted: CleanProfile
    ) -> User:
        now = self.d.clock.now()
        user = User(
            id=UserId(self.d.ids.new_id()),
            username=wanted.username,
            display_name=wanted.display_name,
            role=wanted.role or OrgRole.MEMBER,
            disabled=wanted.disabled,
            created_at=now,
            email=wanted.email,
            origin=origin,
        )
        await tx.insert_user(user, NO_PASSWORD, search_key(user.username, user.display_name))
        await tx.put_link(provider, subject, user.id, now)
        if user.disabled:  # created disabled by the provider: it may enable it
            await tx.set_link_disabled(provider, subject, True)
        if wanted.departments:
            for dep_id in await self._departments(tx, provider, wanted.departments):
                await tx.add_department_member(dep_id, user.id)
        await record(
            tx,
            self.d.clock,
            AuditAction.IDENTITY_USER_CREATED,
            actor_id=acting_for.get(),
            target_id=user.id,
            details={"provider": provider, "subject": subject, **_created_fields(wanted)},
        )
        created = await tx.get_user(user.id)
        assert created is not None
        log.info("identity_user_created", provider=provider, user_id=user.id)
        return created

    @staticmethod
    async def _may_enable(tx: Tx, provider: str, subject: str, user: User) -> bool:
        """A disabled account is enabled by the provider only when the provider disabled
        it (an admin's disable here stands)."""
        if not user.disabled:
            return True
        link = await tx.get_link(provider, subject)
        return link is not None and link.disabled_by_provider

    async def _update(
        self, tx: Tx, provider: str, subject: str, user: User, wanted: CleanProfile
    ) -> None:
        may_enable = await self._may_enable(tx, provider, subject, user)
        fields = diff(user, wanted, path_names(await tx.list_departments()), may_enable)
        fields.pop("username", None)  # the account keeps its name (links hold by subject)
        if not fields:
            return
        if "display_name" in fields or "email" in fields:
            await tx.set_user_profile(
                user.id,
                display_name=wanted.display_name,
                search_key=search_key(user.username, wanted.display_name),
                email=wanted.email,
                origin=user.origin,
            )
        if "role" in fields and wanted.role is not None:
            await tx.set_role(user.id, wanted.role)
        if "departments" in fields and wanted.departments is not None:
            keep = set(await self._departments(tx, provider, wanted.departments))
            for dep_id in set(user.department_ids) - keep:
                await tx.remove_department_member(dep_id, user.id)
            for dep_id in keep - set(user.department_ids):
                await tx.add_department_member(dep_id, user.id)
        disabling = fields.get("disabled") is True
        if "disabled" in fields and not disabling:
            await tx.set_disabled(user.id, False)
            await tx.set_link_disabled(provider, subject, False)
        changed = {k: v for k, v in fields.items() if k != "disabled" or not disabling}
        if changed:
            await record(
                tx,
                self.d.clock,
                AuditAction.IDENTITY_USER_UPDATED,
                actor_id=acting_for.get(),
                target_id=user.id,
                details={"provider": provider, "fields": changed},
            )
        if "display_name" in fields and not disabling:
            renamed = await tx.get_user(user.id)
            if renamed is not None:  # everyone who holds the name gets the new one
                await announce(tx, self.d.bus, renamed, self.d.clock.now())
        if disabling:
            await self._disable(tx, provider, subject, user, "disabled by the provider")

    async def _disable(self, tx: Tx, provider: str, subject: str, user: User, reason: str) -> None:
        await tx.set_disabled(user.id, True)
        await tx.set_link_disabled(provider, subject, True)
        await tx.revoke_user_tokens(user.id, self.d.clock.now())
        await record(
            tx,
            self.d.clock,
            AuditAction.IDENTITY_USER_DISABLED,
            actor_id=acting_for.get(),
            target_id=user.id,
            details={"provider": provider, "reason": reason},
        )
        close_connections_on_commit(tx, self.d.bus, user.id, "user_disabled")

    async def _departments(
        self, tx: Tx, provider: str, paths: list[tuple[str, ...]]
    ) -> list[DepartmentId]:
        """The departments at these paths, each made (with its parents) when missing."""
        deps = await tx.list_departments()
        by_place = {(d.parent_id, d.name): d.id for d in deps}
        found: list[DepartmentId] = []
        for path in paths:
            parent: DepartmentId | None = None
            for name in path:
                dep_id = by_place.get((parent, name))
                if dep_id is None:
                    dep = Department(DepartmentId(self.d.ids.new_id()), name, parent)
                    await tx.insert_department(dep, self.d.clock.now())
                    await record(
                        tx,
                        self.d.clock,
                        AuditAction.DEPARTMENT_CREATED,
                        actor_id=acting_for.get(),
                        target_id=dep.id,
                        details={"name": name, "parent_id": parent, "provider": provider},
                    )
                    dep_id = by_place[(parent, name)] = dep.id
                parent = dep_id
            assert parent is not None
            found.append(parent)
        return list(dict.fromkeys(found))


def _created_fields(wanted: CleanProfile) -> dict[str, object]:
    return {
        "username": wanted.username,
        "display_name": wanted.display_name,
        "email": wanted.email,
        "role": (wanted.role or OrgRole.MEMBER).value,
        "disabled": wanted.disabled,
        "departments": None
        if wanted.departments is None
        else sorted("/".join(p) for p in wanted.departments),
    }
