"""`tidings ldap test` and `tidings ldap sync [--dry-run]`, run in-process (typer's
CliRunner, both backends) with the settings in the environment, against a real slapd
(tests/ldap_server.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli.conftest import Cli, run
from tests.ldap_server import PASSWORDS, SEARCH_PASSWORD, TREE, Slapd, ldap_settings, require_slapd


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    require_slapd()
    server = Slapd(tmp_path / "slapd")
    server.start()
    try:
        server.ldif(TREE)
        yield server
    finally:
        server.stop()


def _env(server: Slapd, **overrides: object) -> dict[str, str]:
    env = {}
    for key, value in ldap_settings(server, **overrides).items():
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        env[f"TIDINGS_{key.upper()}"] = text
    return {**env, "TIDINGS_ADMIN_PASSWORD": "owner-password-for-cli-tests"}


async def test_ldap_test_and_sync_from_the_command_line(cli: Cli, slapd: Slapd) -> None:
    env = _env(slapd)
    checked = await run(cli, "ldap", "test", env=env)
    assert checked.exit_code == 0, checked.stderr
    assert "connect" in checked.stdout and "FAILED" not in checked.stdout
    signed = await run(
        cli,
        "ldap",
        "test",
        "--username",
        "kate",
        "--password",
        input=PASSWORDS["kate"] + "\n",
        env=env,
    )
    assert signed.exit_code == 0, signed.stdout + signed.stderr
    assert "sign-in" in signed.stdout and "password accepted" in signed.stdout
    assert PASSWORDS["kate"] not in signed.stdout + signed.stderr

    dry = await run(cli, "ldap", "sync", "--dry-run", env=env)
    assert dry.exit_code == 0, dry.stderr
    assert "dry run" in dry.stdout and "kate" in dry.stdout and "created" in dry.stdout
    assert "3 created" in dry.stdout and "1 skipped" in dry.stdout
    users = await run(cli, "user", "list", env=env)
    assert "kate" not in users.stdout  # a dry run writes nothing
    done = await run(cli, "ldap", "sync", env=env)
    assert done.exit_code == 0 and "3 created" in done.stdout
    assert "kate" in (await run(cli, "user", "list", env=env)).stdout
    again = await run(cli, "ldap", "sync", env=env)
    assert "3 unchanged" in again.stdout
    for out in (checked, signed, dry, done, again):
        assert SEARCH_PASSWORD not in out.stdout + out.stderr


async def test_a_broken_directory_fails_with_one_line(cli: Cli, slapd: Slapd) -> None:
    env = _env(slapd, ldap_bind_password="wrong-password")
    checked = await run(cli, "ldap", "test", env=env)
    assert checked.exit_code == 1 and "FAILED" in checked.stdout
    synced = await run(cli, "ldap", "sync", env=env)
    assert synced.exit_code == 1
    assert "service account cannot bind" in synced.stderr
    assert "Traceback" not in synced.stderr
    assert "wrong-password" not in synced.stdout + synced.stderr
    unset: dict[str, str | None] = dict.fromkeys(env)  # no LDAP settings at all
    off = await run(cli, "ldap", "sync", env={**unset, "TIDINGS_ADMIN_PASSWORD": "x" * 20})
    assert off.exit_code == 1 and "ldap_url" in off.stderr
