"""The operator's admin commands, run in-process with typer's CliRunner against the
same data directory and database as the services (both backends): set-role goes
through the rules and the audit log; departments are renamed, moved, emptied and
removed; conversations are listed, inspected, archived and unarchived; listings print
--json. The real `python -m tidings` process (global options before and after the
subcommand, a real pipe, one-line errors, `migrate`) is tested in tests/e2e/test_cli_global.py;
here the database is the container's, migrated."""

from __future__ import annotations

from tests.integration.cli.conftest import PASSWORD, Cli, json, ok, run
from tidings.app.container import Container
from tidings.core.models import ConversationKind


async def test_set_role_goes_through_the_rules_and_the_audit_log(cli: Cli) -> None:
    for name, role in (("boss", "owner"), ("bob", "member")):
        await ok(cli, "user", "create", name, "--password", PASSWORD, "--role", role)
    out = await ok(cli, "user", "set-role", "bob", "admin")
    assert "bob is now admin" in out.stdout
    users = {u["username"]: u for u in await json(cli, "user", "list")}
    assert users["bob"]["role"] == "admin"
    # the last owner keeps the role: one line, exit 1
    out = await run(cli, "user", "set-role", "boss", "member")
    assert out.exit_code == 1 and out.stderr.startswith("error: ")
    assert out.stderr.count("\n") == 1
    assert (await run(cli, "user", "set-role", "nobody", "admin")).exit_code == 1
    bad = await run(cli, "user", "set-role", "bob", "emperor")
    assert bad.exit_code == 2
    assert "role_changed" in (await ok(cli, "audit", "export")).stdout


async def test_listings_print_json(cli: Cli) -> None:
    await ok(cli, "bot", "create", "helper", "-q")
    bots = await json(cli, "bot", "list")
    assert [b["username"] for b in bots] == ["helper"] and bots[0]["token_issued_at"]
    await ok(cli, "dept", "create", "Sales")
    deps = await json(cli, "dept", "list")
    assert [(x["name"], x["parent_id"]) for x in deps] == [("Sales", None)]
    assert await json(cli, "scim", "tokens") == []
    assert await json(cli, "webhooks", "list") == []


async def test_department_and_conversation_commands(cli: Cli, container: Container) -> None:
    """The operator renames, moves, empties and removes departments, and lists, inspects,
    archives and unarchives conversations from the command line; each change is the
    service's (its rules refuse, its audit records)."""
    for name in ("alice", "bob"):
        await ok(cli, "user", "create", name, "--password", PASSWORD)
    for args in (("Eng",), ("Ops",), ("Infra", "--parent", "Eng")):
        await ok(cli, "dept", "create", *args)
    await ok(cli, "dept", "assign", "bob", "Eng/Infra")
    await ok(cli, "dept", "rename", "Eng/Infra", "Platform")
    await ok(cli, "dept", "move", "Eng/Platform", "--parent", "Ops")
    refused = await run(cli, "dept", "move", "Ops", "--parent", "Ops/Platform")
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1  # one line
    busy = await run(cli, "dept", "remove", "Ops/Platform")
    assert busy.exit_code == 1  # bob is in it
    await ok(cli, "dept", "unassign", "bob", "Ops/Platform")
    await ok(cli, "dept", "remove", "Ops/Platform")
    tree = await json(cli, "dept", "list")
    assert sorted(t["name"] for t in tree) == ["Eng", "Ops"]

    svc = container.services
    alice = await svc.users.by_username("alice")
    bob = await svc.users.by_username("bob")
    conv, _new = await svc.conversations.create(alice, ConversationKind.CHANNEL, [bob.id], "launch")
    cid = str(conv.id)
    listed = await json(cli, "conversation", "list")
    assert [(v["id"], v["name"], v["archived_at"]) for v in listed["conversations"]] == [
        (cid, "launch", None)
    ]
    members = await json(cli, "conversation", "members", cid)
    assert sorted(m["username"] for m in members) == ["alice", "bob"]
    await ok(cli, "conversation", "archive", cid)
    archived = await json(cli, "conversation", "list", "--archived")
    assert [v["id"] for v in archived["conversations"]] == [cid]
    active = await json(cli, "conversation", "list", "--active")
    assert active["conversations"] == []
    await ok(cli, "conversation", "unarchive", cid)
    missing = await run(cli, "conversation", "members", "no-such-id")
    assert missing.exit_code == 1 and "not found" in missing.stderr
    log = (await ok(cli, "audit", "export")).stdout
    for action in (
        "department_renamed",
        "department_moved",
        "department_deleted",
        "conversation_archived",
        "conversation_unarchived",
    ):
        assert action in log, action


async def test_conversation_role_names_an_owner(cli: Cli, container: Container) -> None:
    """The operator gives roles in any conversation (e.g. a new owner for a channel
    whose owner left): through the service's rules (the last owner stays one), told to
    the members, audited with no actor."""
    for name in ("carol", "dan"):
        await ok(cli, "user", "create", name, "--password", PASSWORD)
    svc = container.services
    carol = await svc.users.by_username("carol")
    dan = await svc.users.by_username("dan")
    conv, _new = await svc.conversations.create(
        carol, ConversationKind.CHANNEL, [dan.id], "news", private=True, announcement=True
    )
    cid = str(conv.id)
    listed = await json(cli, "conversation", "list")
    assert [(v["private"], v["announcement"]) for v in listed["conversations"]] == [(True, True)]
    out = await ok(cli, "conversation", "role", cid, dan.id, "owner")
    assert f"{dan.id} is now owner" in out.stdout
    members = {m["username"]: m["role"] for m in await json(cli, "conversation", "members", cid)}
    assert members == {"carol": "owner", "dan": "owner"}
    await ok(cli, "conversation", "role", cid, carol.id, "member")
    last = await run(cli, "conversation", "role", cid, dan.id, "moderator")  # the last owner
    assert last.exit_code == 1 and last.stderr.count("\n") == 1
    assert (await run(cli, "conversation", "role", cid, dan.id, "emperor")).exit_code == 2
    assert (await run(cli, "conversation", "role", "no-such-id", dan.id, "owner")).exit_code == 1
    entries = [e async for e in svc.audit.entries() if e.action == "member_role_changed"]
    assert [(e.actor_id, e.details["role"]) for e in entries] == [(None, "owner"), (None, "member")]
