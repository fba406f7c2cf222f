"""The audit log on a real database (SQLite and, parametrized, PostgreSQL): actions are
recorded in their own transaction, chained by hash; the database refuses UPDATE and
DELETE; tampering of every kind is found by verify; pages and exports."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tidings.app.container import Container
from tidings.core.audit import GENESIS, AuditAction, entry_hash
from tidings.core.errors import Forbidden
from tidings.core.models import ConversationKind, OrgRole, SecondFactorPolicy
from tidings.services.audit import client_address, record


async def _sql(c: Container, statement: str, **params: Any) -> None:
    engine = c.store.engine  # type: ignore[attr-defined]
    async with engine.write.connect() as conn:
        await conn.execute(text(statement), params)
        await conn.commit()


def _is_pg(c: Container) -> bool:
    return c.settings.db_url.startswith("postgres")


async def _drop_guard(c: Container) -> None:
    """What an intruder with database access would do first."""
    if _is_pg(c):
        await _sql(c, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    else:
        await _sql(c, "DROP TRIGGER audit_log_no_update")
        await _sql(c, "DROP TRIGGER audit_log_no_delete")


async def _some_history(c: Container) -> None:
    svc = c.services
    client_address.set("192.0.2.10")
    owner = await svc.users.create(None, "olga", "plum-orbit-123", role=OrgRole.OWNER)
    member = await svc.users.create(owner, "max", "plum-orbit-123")
    await svc.users.update(owner, member.id, role=OrgRole.ADMIN)
    await svc.users.update(owner, member.id, disabled=True)
    await svc.users.update(owner, member.id, disabled=False)
    conv, _ = await svc.conversations.create(owner, ConversationKind.GROUP, [], "g")
    await svc.conversations.add_members(owner, conv.id, [member.id])
    await svc.conversations.remove_member(owner, conv.id, member.id)
    await svc.second_factor.set_policy(owner, SecondFactorPolicy.ADMINS)
    await svc.users.reset_password(owner, member.id, "another-password")


async def test_actions_are_recorded_and_chained(container: Container) -> None:
    await _some_history(container)
    svc = container.services
    owner = await svc.users.by_username("olga")
    entries = await svc.audit.page(owner, 0, 500)
    actions = [e.action for e in entries]
    for expected in (
        AuditAction.USER_CREATED,
        AuditAction.ROLE_CHANGED,
        AuditAction.USER_DISABLED,
        AuditAction.USER_ENABLED,
        AuditAction.MEMBERS_ADDED,
        AuditAction.MEMBER_REMOVED,
        AuditAction.SETTINGS_CHANGED,
        AuditAction.PASSWORD_RESET,
        AuditAction.SESSIONS_REVOKED,
    ):
        assert expected in actions, (expected, actions)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    for e in entries:
        assert entry_hash(e) == e.hash
    role = next(e for e in entries if e.action == AuditAction.ROLE_CHANGED)
    assert role.actor_id == owner.id and role.details == {"old": "member", "new": "admin"}
    assert role.address == "192.0.2.10"
    created = [e for e in entries if e.action == AuditAction.USER_CREATED]
    assert created[0].actor_id is None  # the operator at the command line
    # nothing secret in any entry
    assert "plum-orbit-123" not in str(entries) and "another-password" not in str(entries)
    check = await svc.audit.verify()
    assert check.ok and check.entries == len(entries) and check.head_hash == entries[-1].hash

    # admins only
    max_ = await svc.users.by_username("max")
    member = await svc.users.create(owner, "mia", "plum-orbit-123")
    with pytest.raises(Forbidden):
        await svc.audit.page(member)
    assert max_.role is OrgRole.ADMIN
    assert len(await svc.audit.page(max_, after_seq=2, limit=3)) == 3


async def test_the_database_refuses_changes(container: Container) -> None:
    await _some_history(container)
    for statement in (
        "UPDATE audit_log SET action = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
    ):
        with pytest.raises(Exception, match="append-only"):
            await _sql(container, statement)
    assert (await container.services.audit.verify()).ok


@pytest.mark.parametrize("tamper", ["edit", "edit_and_rehash", "delete", "insert", "reorder"])
async def test_verify_finds_tampering(container: Container, tamper: str) -> None:
    await _some_history(container)
    svc = container.services
    assert (await svc.audit.verify()).ok
    await _drop_guard(container)
    if tamper == "edit":
        await _sql(container, "UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = 3")
        broken = 3
    elif tamper == "edit_and_rehash":
        # a careful intruder fixes the entry's own hash: the next entry still breaks
        owner = await svc.users.by_username("olga")
        e = (await svc.audit.page(owner, 2, 1))[0]
        forged = e.__class__(**{**{f: getattr(e, f) for f in e.__slots__}, "actor_id": "x"})
        await _sql(
            container,
            "UPDATE audit_log SET actor_id = 'x', hash = :h WHERE seq = 3",
            h=entry_hash(forged),
        )
        broken = 4
    elif tamper == "delete":
        await _sql(container, "DELETE FROM audit_log WHERE seq = 4")
        broken = 5
    elif tamper == "insert":
        await _sql(
            container,
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5",
        )
        broken = 1005
    else:
        await _sql(container, "UPDATE audit_log SET seq = -1 WHERE seq = 2")
        await _sql(container, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
        await _sql(container, "UPDATE audit_log SET seq = 3 WHERE seq = -1")
        broken = 2
    check = await svc.audit.verify()
    assert not check.ok
    assert check.broken_seq == broken, check
    assert check.reason


async def test_concurrent_records_keep_one_chain(container: Container) -> None:
    deps = container.deps

    async def one(i: int) -> None:
        async with deps.store.write() as tx:
            await record(tx, deps.clock, AuditAction.LOGIN, actor_id=f"u{i}", details={"i": i})

    await asyncio.gather(*(one(i) for i in range(40)))
    check = await container.services.audit.verify()
    assert check.ok and check.entries == 40


async def test_a_failed_action_leaves_no_entry(container: Container) -> None:
    svc = container.services
    owner = await svc.users.create(None, "olga", "plum-orbit-123", role=OrgRole.OWNER)
    before = len(await svc.audit.page(owner, 0, 500))
    with pytest.raises(Exception):  # noqa: B017 - any refusal
        await svc.users.update(owner, owner.id, disabled=True)
    assert len(await svc.audit.page(owner, 0, 500)) == before


async def test_export_since(container: Container) -> None:
    await _some_history(container)
    svc = container.services
    everything = [e async for e in svc.audit.entries()]
    assert len(everything) >= 9
    middle = everything[4].at
    later = [e async for e in svc.audit.entries(middle)]
    assert later and all(e.at >= middle for e in later)
    assert [e async for e in svc.audit.entries(middle + timedelta(days=1))] == []
    small = [e async for e in svc.audit.entries(None, page=2)]
    assert [e.seq for e in small] == [e.seq for e in everything]


# --- the signed head: truncation (issue 13, item 18) ---------------------------------------
async def _newest_seq(c: Container) -> int:
    owner = await c.services.users.by_username("olga")
    return (await c.services.audit.page(owner, 0, 500))[-1].seq


async def test_an_untouched_log_ends_at_its_signed_head(container: Container) -> None:
    await _some_history(container)
    check = await container.services.audit.verify()
    assert check.ok and not check.truncated, check
    assert check.signed_by == container.keyring.ids[0]
    async with container.store.read() as tx:
        head = await tx.get_audit_head()
    assert head is not None and head.seq == check.head_seq == check.entries
    assert head.hash == check.head_hash


@pytest.mark.parametrize("removed", [1, 3])
async def test_removing_the_newest_entries_is_found(container: Container, removed: int) -> None:
    """The intruder drops the guard, deletes the newest entries and winds the counter
    back: every entry left still chains, but the signed head names one that is gone."""
    await _some_history(container)
    newest = await _newest_seq(container)
    await _drop_guard(container)
    await _sql(container, "DELETE FROM audit_log WHERE seq > :keep", keep=newest - removed)
    await _sql(
        container, "UPDATE counters SET value = :keep WHERE name = 'audit'", keep=newest - removed
    )
    check = await container.services.audit.verify()
    assert not check.ok and check.truncated, check
    assert check.head_seq == newest - removed and check.entries == newest - removed
    assert f"newest {removed} " in check.reason and "removed" in check.reason


async def _forge_head(c: Container, seq: int, head_hash: str, key_id: str, mac: str) -> None:
    await _sql(
        c,
        "UPDATE audit_head SET seq = :seq, hash = :hash, key_id = :key_id, mac = :mac",
        seq=seq,
        hash=head_hash,
        key_id=key_id,
        mac=mac,
    )


@pytest.mark.parametrize("tamper", ["move_head_back", "own_key", "delete_head", "other_mac"])
async def test_tampering_with_the_head_is_found(container: Container, tamper: str) -> None:
    """Without the server key the head cannot be moved back to a truncated end: not by
    editing it, not by signing it with a key of one's own, not by deleting it."""
    from tidings.services.keyring import Keyring

    await _some_history(container)
    newest = await _newest_seq(container)
    owner = await container.services.users.by_username("olga")
    keep = (await container.services.audit.page(owner, newest - 3, 1))[0]
    await _drop_guard(container)
    await _sql(container, "DELETE FROM audit_log WHERE seq > :keep", keep=keep.seq)
    async with container.store.read() as tx:
        head = await tx.get_audit_head()
    assert head is not None
    if tamper == "move_head_back":
        await _forge_head(container, keep.seq, keep.hash, head.key_id, head.mac)
        reason = "altered"
    elif tamper == "own_key":
        forged = Keyring(["an intruder's own key, long enough to be one"]).sign_head(
            keep.seq, keep.hash
        )
        await _forge_head(container, forged.seq, forged.hash, forged.key_id, forged.mac)
        reason = "not among the server's keys"
    elif tamper == "delete_head":
        await _sql(container, "DELETE FROM audit_head")
        reason = "no signed head"
    else:  # a valid-looking mac of the same key over another head
        other = container.keyring.sign_head(keep.seq - 1, keep.prev_hash)
        await _forge_head(container, keep.seq, keep.hash, other.key_id, other.mac)
        reason = "altered"
    check = await container.services.audit.verify()
    assert not check.ok, check
    assert reason in check.reason, check


async def test_entries_appended_while_verifying_are_fine(container: Container) -> None:
    """The head is read first: entries after it (appended meanwhile) chain on from it."""
    await _some_history(container)
    async with container.store.read() as tx:
        head = await tx.get_audit_head()
    assert head is not None
    await container.services.audit.record(AuditAction.LOGIN, actor_id="x")
    check = await container.services.audit._verify(head, True)
    assert check.ok and check.head_seq == head.seq + 1, check


async def test_a_log_without_a_head_gets_one_at_start_and_says_so(container: Container) -> None:
    """A database from before signed heads (or whose head row was deleted): verify fails
    until the server starts, which adopts the head in an entry of its own."""
    await _some_history(container)
    await _sql(container, "DELETE FROM audit_head")
    check = await container.services.audit.verify()
    assert not check.ok and "no signed head" in check.reason
    await container.services.secrets.prepare()
    check = await container.services.audit.verify()
    assert check.ok, check
    owner = await container.services.users.by_username("olga")
    newest = (await container.services.audit.page(owner, check.head_seq - 1, 1))[0]
    assert newest.action == AuditAction.AUDIT_HEAD_ADOPTED and newest.actor_id is None
    await container.services.secrets.prepare()  # once only
    assert (await container.services.audit.verify()).head_seq == check.head_seq
