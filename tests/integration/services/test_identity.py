"""services/identity.py, the provisioning every identity provider shares (LDAP, OIDC,
SCIM), on SQLite and PostgreSQL (`container`): just-in-time creation, updates,
department paths, disabling, and the username collisions that must not hand one
person's account to another."""

from __future__ import annotations

import pytest

from tidings.app.container import Container
from tidings.core.errors import Conflict, InvalidCredentials, InvalidRequest
from tidings.core.models import AuditEntry, ExternalProfile, OrgRole, UserOrigin
from tidings.services.identity import NO_PASSWORD

PASSWORD = "plum-orbit-123"
KATE = ExternalProfile(
    username="Kate",
    display_name="Kate Lin",
    email="kate@example.com",
    departments=("Engineering/Platform", "Support"),
)


async def _audit(c: Container) -> list[AuditEntry]:
    async with c.store.read() as tx:
        return await tx.list_audit(0, 500)


async def _paths(c: Container, dep_ids: tuple[str, ...]) -> list[str]:
    from tidings.services.identity import path_names

    async with c.store.read() as tx:
        paths = path_names(await tx.list_departments())
    return sorted("/".join(paths[d]) for d in dep_ids)  # type: ignore[index]


async def test_first_provisioning_creates_the_account_just_in_time(container: Container) -> None:
    c = container
    user = await c.services.identity.provision("ldap", "uuid-kate", KATE)
    assert (user.username, user.display_name, user.email) == ("kate", "Kate Lin", KATE.email)
    assert (user.origin, user.role, user.disabled) == (UserOrigin.LDAP, OrgRole.MEMBER, False)
    assert await _paths(c, user.department_ids) == ["Engineering/Platform", "Support"]
    # nested departments were made, each once
    async with c.store.read() as tx:
        names = sorted(d.name for d in await tx.list_departments())
        assert names == ["Engineering", "Platform", "Support"]
        assert await tx.get_password_hash(user.id) == NO_PASSWORD
        links = await tx.links_of(user.id)
    assert [(link.provider, link.subject) for link in links] == [("ldap", "uuid-kate")]
    # no local password opens a provisioned account, not even the marker itself
    for password in (PASSWORD, NO_PASSWORD, ""):
        with pytest.raises(InvalidCredentials):
            await c.services.auth.login("kate", password or "x")
    created = [e for e in await _audit(c) if e.action == "identity_user_created"]
    assert len(created) == 1 and created[0].target_id == user.id
    assert created[0].details["provider"] == "ldap"
    assert created[0].details["departments"] == ["Engineering/Platform", "Support"]
    # the same again changes nothing and records nothing more
    again = await c.services.identity.provision("ldap", "uuid-kate", KATE)
    assert again == user
    assert not [e for e in await _audit(c) if e.action == "identity_user_updated"]


async def test_provisioning_again_brings_the_account_in_step(container: Container) -> None:
    c = container
    user = await c.services.identity.provision("ldap", "uuid-kate", KATE)
    changed = ExternalProfile(
        username="kate",
        display_name="Kate Lin-Zhou",
        email=None,
        departments=("Sales",),
        role=OrgRole.ADMIN,
    )
    plan = await c.services.identity.plan("ldap", "uuid-kate", changed)
    assert plan.action == "updated"
    assert set(plan.fields) == {"display_name", "email", "departments", "role"}
    after = await c.services.identity.provision("ldap", "uuid-kate", changed)
    assert after.id == user.id
    assert (after.display_name, after.email, after.role) == ("Kate Lin-Zhou", None, OrgRole.ADMIN)
    assert await _paths(c, after.department_ids) == ["Sales"]
    found = await c.services.users.search(None, "zhou")
    assert [u.id for u in found] == [user.id]  # the search key follows the display name
    updated = [e for e in await _audit(c) if e.action == "identity_user_updated"]
    assert updated[-1].details == {
        "provider": "ldap",
        "fields": {
            "display_name": "Kate Lin-Zhou",
            "email": None,
            "role": "admin",
            "departments": ["Sales"],
        },
    }
    # departments None: left as they are
    kept = await c.services.identity.provision(
        "ldap", "uuid-kate", ExternalProfile("kate", "Kate Lin-Zhou", None, None, OrgRole.ADMIN)
    )
    assert kept.department_ids == after.department_ids


async def test_a_disabled_identity_disables_the_account_and_ends_its_sessions(
    container: Container,
) -> None:
    c = container
    user = await c.services.identity.provision("ldap", "uuid-kate", KATE)
    async with c.store.write() as tx:
        await tx.insert_token(
            "t1", "h" * 64, user.id, "phone", user.created_at, user.created_at.replace(year=2099)
        )
    off = ExternalProfile(**{**_fields(KATE), "disabled": True})
    gone = await c.services.identity.provision("ldap", "uuid-kate", off)
    assert gone.disabled
    async with c.store.read() as tx:
        assert await tx.token_owner("t1") is None
    actions = [e.action for e in await _audit(c)]
    assert actions.count("identity_user_disabled") == 1
    # enabled again by the provider: an update, the sessions stay ended
    back = await c.services.identity.provision("ldap", "uuid-kate", KATE)
    assert not back.disabled
    # the sync's "gone from the directory"
    again = await c.services.identity.disable("ldap", "uuid-kate", "gone from the directory")
    assert again is not None and again.disabled
    assert await c.services.identity.disable("ldap", "nobody", "gone") is None


def _fields(p: ExternalProfile) -> dict[str, object]:
    return {k: getattr(p, k) for k in p.__slots__}  # type: ignore[attr-defined]


async def test_a_local_account_is_never_taken_over_silently(container: Container) -> None:
    c = container
    local = await c.services.users.create(None, "kate", PASSWORD, "Kate (local)")
    before = await _audit(c)
    with pytest.raises(Conflict) as refused:
        await c.services.identity.provision("ldap", "uuid-kate", KATE)
    assert "local account" in str(refused.value)
    # nothing half-written: no link, no department, no audit entry, the account as it was
    async with c.store.read() as tx:
        assert await tx.links_of(local.id) == []
        assert await tx.list_departments() == []
        assert await tx.get_user(local.id) == local
    assert await _audit(c) == before
    token, _ = await c.services.auth.login("kate", PASSWORD)  # still signs in locally
    assert token
    # an account another provider made is linked (SCIM provisions, OIDC signs in)
    scim = await c.services.identity.provision("scim", "s-1", ExternalProfile("ann"))
    linked = await c.services.identity.provision(
        "oidc:corp", "sub-ann", ExternalProfile("ann", "Ann")
    )
    assert linked.id == scim.id and linked.origin is UserOrigin.SCIM
    assert "identity_user_linked" in [e.action for e in await _audit(c)]


@pytest.mark.parametrize("container_settings", [{"identity_link_existing": "all"}])
async def test_linking_local_accounts_when_the_admin_allowed_it(container: Container) -> None:
    c = container
    local = await c.services.users.create(None, "kate", PASSWORD, "Kate")
    linked = await c.services.identity.provision("ldap", "uuid-kate", KATE)
    assert linked.id == local.id and linked.origin is UserOrigin.LDAP
    assert linked.display_name == "Kate Lin"
    # the owner and bots never, whatever the setting: the owner always signs in locally
    await c.services.users.create(None, "boss", PASSWORD, "Boss", OrgRole.OWNER)
    with pytest.raises(Conflict):
        await c.services.identity.provision("ldap", "uuid-boss", ExternalProfile("boss"))


@pytest.mark.parametrize("container_settings", [{"identity_link_existing": "never"}])
async def test_never_links_even_provisioned_accounts(container: Container) -> None:
    c = container
    await c.services.identity.provision("scim", "s-1", ExternalProfile("ann"))
    with pytest.raises(Conflict):
        await c.services.identity.provision("oidc:corp", "sub-ann", ExternalProfile("ann"))


async def test_a_recreated_directory_entry_takes_its_accounts_link(container: Container) -> None:
    """The entry was deleted and made again (a new UUID, the same uid): the account
    follows the new entry, and the old link goes (a sync would disable it otherwise)."""
    c = container
    user = await c.services.identity.provision("ldap", "uuid-old", KATE)
    again = await c.services.identity.provision("ldap", "uuid-new", KATE)
    assert again.id == user.id
    async with c.store.read() as tx:
        assert [link.subject for link in await tx.links_of(user.id)] == ["uuid-new"]


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        (ExternalProfile("kate lin"), "username"),
        (ExternalProfile("k" * 33), "username"),
        (ExternalProfile("kate", email="not-an-address"), "email"),
        (ExternalProfile("kate", email="a@" + "b" * 260), "email"),
        (ExternalProfile("kate", display_name="Kate\u202eniL"), "display_name"),
        (ExternalProfile("kate", departments=("Eng\u0000",)), "departments"),
        (ExternalProfile("kate", role=OrgRole.OWNER), "role"),
    ],
)
async def test_what_cannot_be_an_account_is_refused_with_nothing_written(
    container: Container, profile: ExternalProfile, field: str
) -> None:
    c = container
    with pytest.raises(InvalidRequest) as refused:
        await c.services.identity.provision("ldap", "uuid-x", profile)
    assert refused.value.details.get("field") == field
    async with c.store.read() as tx:
        assert await tx.users_by_usernames(["kate"]) == []
        assert await tx.list_departments() == []


async def test_unknown_providers_are_a_programming_error(container: Container) -> None:
    with pytest.raises(ValueError, match="unknown identity provider"):
        await container.services.identity.provision("local", "x", KATE)


async def test_an_admins_disable_stands_whatever_the_provider_says(container: Container) -> None:
    """A provider enables again only an account it disabled itself: one an admin
    disabled here stays disabled (a security incident is not undone by the next sync)."""
    c = container
    user = await c.services.identity.provision("ldap", "uuid-kate", KATE)
    await c.services.users.update(None, user.id, disabled=True)  # the admin's
    plan = await c.services.identity.plan("ldap", "uuid-kate", KATE)
    assert plan.action == "unchanged"
    again = await c.services.identity.provision("ldap", "uuid-kate", KATE)
    assert again.disabled
    # enabled by the admin: then the provider's disable and enable both count
    await c.services.users.update(None, user.id, disabled=False)
    off = ExternalProfile(**{**_fields(KATE), "disabled": True})
    assert (await c.services.identity.provision("ldap", "uuid-kate", off)).disabled
    assert not (await c.services.identity.provision("ldap", "uuid-kate", KATE)).disabled
    # gone from the directory (disabled by the sync), then back as a new entry: enabled
    await c.services.identity.disable("ldap", "uuid-kate", "gone from the directory")
    back = await c.services.identity.provision("ldap", "uuid-kate-new", KATE)
    assert back.id == user.id and not back.disabled
