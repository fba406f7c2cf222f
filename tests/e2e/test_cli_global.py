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
