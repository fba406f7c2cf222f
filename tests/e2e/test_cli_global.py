"""Global options after the subcommand, output that survives pipes, --json, set-role:
run as an operator would, in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.e2e


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # a pipe, no width hint
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_global_options_after_the_subcommand_and_json(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    assert run("migrate", "--data-dir", d).returncode == 0
    long_name = "n" * 30 + " " + "m" * 49  # 80, the limit: a table wider than 80 columns
    out = run(
        "user",
        "create",
        "alice",
        "--password",
        "correct horse battery",
        "--display-name",
        long_name,
        "--data-dir",
        d,
    )
    assert out.returncode == 0, out.stderr
    before = run("--data-dir", d, "user", "list")
    after = run("user", "list", "--data-dir", d)
    assert before.returncode == after.returncode == 0
    assert before.stdout == after.stdout
    # not a terminal: the long name is on one line, whole
    assert any(long_name in line for line in after.stdout.splitlines())
    # the option after the subcommand wins over the one before it
    other = run("--data-dir", str(tmp_path / "nowhere"), "user", "list", "--data-dir", d)
    assert other.returncode == 0 and "alice" in other.stdout

    users = orjson.loads(run("user", "list", "--json", "--data-dir", d).stdout)
    assert users == [
        {
            "bot": False,
            "disabled": False,
            "display_name": long_name,
            "id": users[0]["id"],
            "role": "member",
            "username": "alice",
        }
    ]
    assert run("bot", "create", "helper", "-q", "--data-dir", d).returncode == 0
    bots = orjson.loads(run("bot", "list", "--json", "--data-dir", d).stdout)
    assert [b["username"] for b in bots] == ["helper"] and bots[0]["token_issued_at"]
    assert run("dept", "create", "Sales", "--data-dir", d).returncode == 0
    deps = orjson.loads(run("dept", "list", "--json", "--data-dir", d).stdout)
    assert [(x["name"], x["parent_id"]) for x in deps] == [("Sales", None)]
    assert orjson.loads(run("scim", "tokens", "--json", "--data-dir", d).stdout) == []
    assert orjson.loads(run("webhooks", "list", "--json", "--data-dir", d).stdout) == []


def test_set_role_goes_through_the_rules_and_the_audit_log(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    assert run("migrate", "--data-dir", d).returncode == 0
    for name, role in (("boss", "owner"), ("bob", "member")):
        out = run(
            "user",
            "create",
            name,
            "--password",
            "correct horse battery",
            "--role",
            role,
            "--data-dir",
            d,
        )
        assert out.returncode == 0, out.stderr
    out = run("user", "set-role", "bob", "admin", "--data-dir", d)
    assert out.returncode == 0, out.stderr
    assert "bob is now admin" in out.stdout
    users = {
        u["username"]: u
        for u in orjson.loads(run("user", "list", "--json", "--data-dir", d).stdout)
    }
    assert users["bob"]["role"] == "admin"
    # the last owner keeps the role: one line, exit 1
    out = run("user", "set-role", "boss", "member", "--data-dir", d)
    assert out.returncode == 1 and out.stderr.startswith("error: ")
    assert run("user", "set-role", "nobody", "admin", "--data-dir", d).returncode == 1
    bad = run("user", "set-role", "bob", "emperor", "--data-dir", d)
    assert bad.returncode == 2


def test_department_and_conversation_commands(tmp_path: Path) -> None:
    """The operator renames, moves, empties and removes departments, and lists, inspects,
    archives and unarchives conversations from the command line; each change is the
    service's (its rules refuse, its audit records)."""
    import asyncio

    from tidings.app.container import Container
    from tidings.app.settings import Settings
    from tidings.core.models import ConversationKind

    d = str(tmp_path / "data")
    assert run("migrate", "--data-dir", d).returncode == 0
    for name in ("alice", "bob"):
        made = run("user", "create", name, "--password", "correct horse battery", "--data-dir", d)
        assert made.returncode == 0, made.stderr
    for args in (("Eng",), ("Ops",), ("Infra", "--parent", "Eng")):
        assert run("dept", "create", *args, "--data-dir", d).returncode == 0
    assert run("dept", "assign", "bob", "Eng/Infra", "--data-dir", d).returncode == 0
    assert run("dept", "rename", "Eng/Infra", "Platform", "--data-dir", d).returncode == 0
    assert run("dept", "move", "Eng/Platform", "--parent", "Ops", "--data-dir", d).returncode == 0
    refused = run("dept", "move", "Ops", "--parent", "Ops/Platform", "--data-dir", d)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1  # one line
    busy = run("dept", "remove", "Ops/Platform", "--data-dir", d)
    assert busy.returncode == 1  # bob is in it
    assert run("dept", "unassign", "bob", "Ops/Platform", "--data-dir", d).returncode == 0
    assert run("dept", "remove", "Ops/Platform", "--data-dir", d).returncode == 0
    tree = orjson.loads(run("dept", "list", "--json", "--data-dir", d).stdout)
    assert sorted(t["name"] for t in tree) == ["Eng", "Ops"]

    async def a_channel() -> str:
        c = Container(Settings(data_dir=Path(d)))
        try:
            alice = await c.services.users.by_username("alice")
            bob = await c.services.users.by_username("bob")
            conv, _new = await c.services.conversations.create(
                alice, ConversationKind.CHANNEL, [bob.id], "launch"
            )
            return str(conv.id)
        finally:
            await c.close()

    cid = asyncio.run(a_channel())
    listed = orjson.loads(run("conversation", "list", "--json", "--data-dir", d).stdout)
    assert [(v["id"], v["name"], v["archived_at"]) for v in listed["conversations"]] == [
        (cid, "launch", None)
    ]
    members = orjson.loads(run("conversation", "members", cid, "--json", "--data-dir", d).stdout)
    assert sorted(m["username"] for m in members) == ["alice", "bob"]
    assert run("conversation", "archive", cid, "--data-dir", d).returncode == 0
    archived = run("conversation", "list", "--archived", "--json", "--data-dir", d)
    assert [v["id"] for v in orjson.loads(archived.stdout)["conversations"]] == [cid]
    active = run("conversation", "list", "--active", "--json", "--data-dir", d)
    assert orjson.loads(active.stdout)["conversations"] == []
    assert run("conversation", "unarchive", cid, "--data-dir", d).returncode == 0
    missing = run("conversation", "members", "no-such-id", "--data-dir", d)
    assert missing.returncode == 1 and "not found" in missing.stderr
    log = run("audit", "export", "--data-dir", d)
    for action in (
        "department_renamed",
        "department_moved",
        "department_deleted",
        "conversation_archived",
        "conversation_unarchived",
    ):
        assert action in log.stdout, action
