"""Global options before and after the subcommand, output that survives pipes, --json,
one-line errors: run as an operator would, in real `python -m tidings` processes. The
commands' behaviour beyond what only a process shows is tested in-process, on both
backends, in tests/integration/cli/test_cli_admin.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from tests import processes

pytestmark = pytest.mark.e2e


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # a pipe, no width hint
    return processes.run(args, env, timeout=60)


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
    # errors at the real entry point: a bad argument exits 2; a refused change exits 1
    # with one line on standard error
    refused = run("user", "set-role", "alice", "emperor", "--data-dir", d)
    assert refused.returncode == 2
    missing = run("user", "set-role", "nobody", "admin", "--data-dir", d)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ")
    assert missing.stderr.count("\n") == 1


# set-role's rules and audit, the departments and conversations commands and the other
# listings' --json run in-process on both backends: tests/integration/cli/test_cli_admin.py
