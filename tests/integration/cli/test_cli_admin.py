"""The operator's admin commands, run in-process with typer's CliRunner against the
same data directory and database as the services (both backends): set-role goes
through the rules and the audit log; departments are renamed, moved, emptied and
removed; conversations are listed, inspected, archived and unarchived; listings print
--json. The real `python -m tidings` process (global options before and after the
subcommand, a real pipe, one-line errors, `migrate`) is tested in tests/e2e/test_cli_global.py;
here the database is the container's, migrated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import typer
from click.testing import CliRunner, Result

from tests.conftest import Backend
from tidings.app.container import Container
from tidings.cli.main import app
from tidings.core.models import ConversationKind

Cli = Callable[..., Result]
# typer builds the click command from the app at each invocation (half a second, all the
# commands' signatures); built once here, the same command `python -m tidings` runs
COMMAND = typer.main.get_command(app)
PASSWORD = "correct horse battery"


@pytest.fixture
def cli(container: Container, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on the container's data directory and database (in-process)."""
    if backend.database_url is not None:
        monkeypatch.setenv("TIDINGS_DATABASE_URL", backend.database_url)
    monkeypatch.delenv("TIDINGS_CONFIG", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    data = str(container.settings.data_dir)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(COMMAND, [*args, "--data-dir", data], catch_exceptions=False)

    return invoke


async def run(cli: Cli, *args: str) -> Result:
    return await asyncio.to_thread(cli, *args)


async def ok(cli: Cli, *args: str) -> Result:
    result = await run(cli, *args)
    assert result.exit_code == 0, result.output
    return result


async def json(cli: Cli, *args: str) -> Any:
    return orjson.loads((await ok(cli, *args, "--json")).stdout)


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
    conv, _new = await svc.conversations.create(
        alice, ConversationKind.CHANNEL, [bob.id], "launch"
    )
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
