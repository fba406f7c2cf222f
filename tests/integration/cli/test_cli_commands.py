"""The admin commands in-process (typer's CliRunner) on both backends: every command's
--help; SCIM tokens; users and departments; webhooks. The real `python -m tidings`
entry point (--version, migrate, first start, errors before any database) is tested in
tests/e2e/test_cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli.conftest import Cli, cli_at, run
from tidings.app.container import Container


@pytest.fixture
def container_settings() -> dict[str, object]:
    return {"webhook_allowed_networks": "127.0.0.0/8"}


def test_help_everywhere(tmp_path: Path) -> None:
    for cmd in (
        ["serve"],
        ["migrate"],
        ["user"],
        ["user", "create"],
        ["user", "list"],
        ["user", "disable"],
        ["user", "enable"],
        ["user", "reset-password"],
        ["dept"],
        ["dept", "create"],
        ["dept", "list"],
        ["dept", "assign"],
        ["bot"],
        ["bot", "create"],
        ["bot", "list"],
        ["bot", "token"],
        ["bot", "disable"],
        ["audit", "verify"],
        ["secrets"],
        ["secrets", "generate"],
        ["secrets", "rotate"],
        ["secrets", "status"],
        ["ldap"],
        ["ldap", "test"],
        ["ldap", "sync"],
        ["backup"],
        ["backup", "create"],
        ["backup", "verify"],
        ["backup", "restore"],
        ["backup", "status"],
        ["scim"],
        ["scim", "token"],
        ["scim", "tokens"],
        ["scim", "revoke"],
        ["webhooks"],
        ["webhooks", "list"],
        ["webhooks", "disable"],
        ["webhooks", "enable"],
        ["webhooks", "delete"],
        ["webhooks", "deliveries"],
    ):
        out = cli_at(tmp_path, *cmd, "--help")
        assert out.exit_code == 0, (cmd, out.stderr)
        assert "Usage:" in out.stdout, cmd


async def test_scim_token_commands(cli: Cli) -> None:
    """`tidings scim token` prints a new token once (only its hash is kept), `tokens`
    lists them without it, `revoke` ends one."""
    out = await run(cli, "scim", "token", "--name", "Okta")
    assert out.exit_code == 0, out.stderr
    secret = next(w for w in out.stdout.split() if w.startswith("scim_"))
    assert "only this once" in out.stdout and "/scim/v2" in out.stdout
    quiet = await run(cli, "scim", "token", "-q", "--name", "Entra")
    assert quiet.exit_code == 0 and quiet.stdout.strip().startswith("scim_")
    assert len(quiet.stdout.strip().splitlines()) == 1
    listed = await run(cli, "scim", "tokens")
    assert "Okta" in listed.stdout and "Entra" in listed.stdout
    assert secret not in listed.stdout and quiet.stdout.strip() not in listed.stdout
    token_id = next(line.split()[1] for line in listed.stdout.splitlines() if "Okta" in line)
    out = await run(cli, "scim", "revoke", token_id)
    assert out.exit_code == 0 and f"revoked SCIM token {token_id}" in out.stdout
    assert "revoked" in next(
        line for line in (await run(cli, "scim", "tokens")).stdout.splitlines() if "Okta" in line
    )
    out = await run(cli, "scim", "revoke", token_id)
    assert out.exit_code == 1 and "no live SCIM token" in out.stderr


async def test_user_and_department_commands(cli: Cli) -> None:
    out = await run(
        cli,
        "user",
        "create",
        "lihua",
        "--password",
        "secret-pass-1",
        "--display-name",
        "李华",
        "--role",
        "admin",
    )
    assert out.exit_code == 0, out.stderr
    assert "created admin lihua" in out.stdout
    assert "secret-pass-1" not in out.stdout + out.stderr
    out = await run(cli, "user", "create", "lihua", "--password", "secret-pass-1")
    assert out.exit_code == 1
    assert out.stderr.strip().splitlines() == ["error: username 'lihua' is taken"]
    out = await run(cli, "user", "create", "wu", input="pw-from-prompt-1\npw-from-prompt-1\n")
    assert out.exit_code == 0, out.stderr
    out = await run(cli, "user", "list")
    assert "lihua" in out.stdout and "李华" in out.stdout and "wu" in out.stdout
    out = await run(cli, "user", "disable", "wu")
    assert out.exit_code == 0 and "disabled wu" in out.stdout
    assert "disabled" in (await run(cli, "user", "list", "--query", "wu")).stdout
    assert (await run(cli, "user", "enable", "wu")).exit_code == 0
    out = await run(cli, "user", "disable", "nobody")
    assert out.exit_code == 1 and out.stderr.startswith("error: no user named 'nobody'")
    assert (
        await run(cli, "user", "reset-password", "wu", "--password", "another-pass-2")
    ).exit_code == 0
    assert (await run(cli, "dept", "create", "研发部")).exit_code == 0
    assert (await run(cli, "dept", "create", "Backend", "--parent", "研发部")).exit_code == 0
    out = await run(cli, "dept", "create", "X", "--parent", "Nowhere")
    assert out.exit_code == 1 and out.stderr.startswith("error:")
    out = await run(cli, "dept", "assign", "wu", "研发部/Backend")
    assert out.exit_code == 0, out.stderr
    tree = (await run(cli, "dept", "list")).stdout
    assert "研发部" in tree and "Backend" in tree
    out = await run(cli, "user", "create", "bad name", "--password", "secret-pass-1")
    assert out.exit_code == 1 and out.stderr.count("\n") == 1


async def test_webhook_commands(cli: Cli, container: Container) -> None:
    out = await run(
        cli, "user", "create", "boss", "--password", "plum-orbit-123", "--role", "admin"
    )
    assert out.exit_code == 0, out.stderr

    boss = await container.services.users.by_username("boss")
    made = await container.services.webhooks.create(
        boss, "http://127.0.0.1:9/in?token=receiver-token", ["message"]
    )
    wid = made.webhook.id
    listed = await run(cli, "webhooks", "list")
    assert listed.exit_code == 0, listed.stderr
    assert wid in listed.stdout and "org-wide" in listed.stdout and " on " in listed.stdout
    assert "receiver-token" not in listed.stdout  # the query may carry a secret
    out = await run(cli, "webhooks", "disable", wid)
    assert out.exit_code == 0 and "off" in out.stdout
    assert "off (manual)" in (await run(cli, "webhooks", "list")).stdout
    assert (await run(cli, "webhooks", "enable", wid)).exit_code == 0
    out = await run(cli, "webhooks", "deliveries", wid)
    assert out.exit_code == 0 and "delivery id" in out.stdout
    assert (await run(cli, "webhooks", "delete", wid)).exit_code == 0
    assert wid not in (await run(cli, "webhooks", "list")).stdout
    out = await run(cli, "webhooks", "disable", wid)
    assert out.exit_code == 1 and out.stderr.strip() == "error: webhook not found"
