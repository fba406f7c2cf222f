"""The directory sync (services/ldap.py) against a real slapd, on SQLite and PostgreSQL
(`container`): a dry run writes nothing, a run creates, updates and disables, the OU
path becomes the department tree, a misconfigured base disables no one, and the job
kind `identity.ldap_sync` runs it from the worker's schedule."""

from __future__ import annotations

import dataclasses

from tests.ldap_server import GROUPS, PEOPLE, Slapd, dn_of
from tidings.app.container import Container
from tidings.core.models import OrgRole, User, UserOrigin
from tidings.identity.ldap import LdapDirectory
from tidings.services.identity import path_names


async def _users(c: Container) -> dict[str, User]:
    found = await c.services.users.search(None, "", limit=200)
    return {u.username: u for u in found}


async def _paths(c: Container, dep_ids: tuple[str, ...]) -> list[str]:
    async with c.store.read() as tx:
        paths = path_names(await tx.list_departments())
    return sorted("/".join(paths[d]) for d in dep_ids)  # type: ignore[index]


async def test_a_dry_run_says_what_would_change_and_writes_nothing(
    container: Container, slapd: Slapd
) -> None:
    c = container
    report = await c.services.ldap.sync(None, dry_run=True)
    rows = {r.username: r for r in report.rows}
    assert report.dry_run and report.entries == 4 and report.error == ""
    assert {n: r.action for n, r in rows.items()} == {
        "kate": "created",
        "li": "created",
        "sam": "created",
        "dora": "skipped",  # disabled in the directory and no account: not made
    }
    assert rows["kate"].fields["role"] == "admin"
    assert rows["kate"].fields["departments"] == ["Engineering/Platform"]
    assert set(await _users(c)) == set()
    async with c.store.read() as tx:
        assert await tx.list_departments() == []
        assert await tx.provider_links("ldap") == []


async def test_sync_creates_updates_and_disables(container: Container, slapd: Slapd) -> None:
    c = container
    first = await c.services.ldap.sync(None)
    assert (first.count("created"), first.count("skipped")) == (3, 1)
    users = await _users(c)
    kate, li, sam = users["kate"], users["li"], users["sam"]
    assert kate.origin is UserOrigin.LDAP and kate.role is OrgRole.ADMIN
    assert sam.role is OrgRole.GUEST
    assert await _paths(c, kate.department_ids) == ["Engineering/Platform"]
    assert await _paths(c, li.department_ids) == ["Engineering"]
    # nothing changed: nothing to do
    again = await c.services.ldap.sync(None)
    assert again.count("unchanged") == 3
    assert {r.action for r in again.rows} == {"unchanged", "skipped"}

    # the directory changes: a new name, a move to Sales, out of the admins, one gone,
    # one disabled
    slapd.ldif(
        f"dn: {dn_of('kate')}\nchangetype: modify\nreplace: displayName\n"
        "displayName: Kate Lin-Zhou\n\n"
        f"dn: cn=admins,{GROUPS}\nchangetype: modify\nreplace: member\nmember: {dn_of('li')}\n\n"
        f"dn: {dn_of('li')}\nchangetype: modify\nreplace: employeeType\nemployeeType: disabled\n",
        modify=True,
    )
    slapd.delete(dn_of("sam"))
    dry = await c.services.ldap.sync(None, dry_run=True)
    planned = {r.username: r.action for r in dry.rows}
    assert planned["kate"] == "updated" and planned["li"] == "disabled"
    assert planned["sam"] == "disabled"
    assert not (await _users(c))["li"].disabled  # a dry run: as it was
    done = await c.services.ldap.sync(None)
    after = await _users(c)
    assert after["kate"].display_name == "Kate Lin-Zhou"
    assert after["kate"].role is OrgRole.MEMBER
    assert after["li"].disabled and after["sam"].disabled
    assert {r.username for r in done.rows if r.action == "disabled"} == {"li", "sam"}
    async with c.store.read() as tx:
        actions = [e.action for e in await tx.list_audit(0, 500)]
    assert actions.count("identity_user_disabled") == 2
    assert actions.count("identity_user_updated") >= 1


async def test_a_wrong_base_disables_no_one(container: Container, slapd: Slapd) -> None:
    c = container
    await c.services.ldap.sync(None)
    directory = c.services.ldap.directory
    assert isinstance(directory, LdapDirectory)
    directory.c = dataclasses.replace(directory.c, ldap_user_base=f"ou=nowhere,{PEOPLE}")
    report = await c.services.ldap.sync(None)
    assert "nothing was disabled" in report.error
    assert not any(u.disabled for u in (await _users(c)).values())


async def test_the_worker_schedules_one_sync_job_per_interval(
    container: Container, slapd: Slapd
) -> None:
    c = container
    first = await c.services.ldap.schedule_sync()
    second = await c.services.ldap.schedule_sync()
    assert first is not None and first == second  # the same interval: the same one job
    ran = await c.services.jobs.drain()
    assert ran >= 1
    assert set(await _users(c)) >= {"kate", "li", "sam"}
