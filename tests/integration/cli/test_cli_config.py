"""`tidings config show|set|unset`, run in-process on both backends: values stored in
the database, secrets sealed and never printed, locked settings (from the environment)
refused, bad values refused with nothing written."""

from __future__ import annotations

import pytest

from tests.integration.cli.conftest import Cli, json, ok, run


def _show(rows: dict[str, list[dict[str, object]]]) -> dict[str, dict[str, object]]:
    return {str(row["name"]): row for row in rows["settings"]}


async def test_config_set_show_unset_from_the_command_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDINGS_ADMIN_PASSWORD", "owner-password-for-cli-tests")
    monkeypatch.setenv("TIDINGS_LDAP_USER_BASE", "ou=people,dc=example,dc=com")
    before = _show(await json(cli, "config", "show"))
    assert before["ldap_user_base"]["locked"] is True
    assert before["ldap_max_concurrent"]["value"] == 8
    await ok(cli, "config", "set", "ldap_max_concurrent", "3")
    await ok(cli, "config", "set", "ldap_bind_password", "cli-secret-xyz")
    after = _show(await json(cli, "config", "show"))
    assert after["ldap_max_concurrent"]["value"] == 3
    assert after["ldap_bind_password"]["set"] is True
    table = await run(cli, "config", "show")
    assert table.exit_code == 0, table.output
    assert "cli-secret-xyz" not in table.stdout + table.stderr
    locked = await run(cli, "config", "set", "ldap_user_base", "ou=x")
    assert locked.exit_code == 1 and "configuration" in locked.stderr
    bad = await run(cli, "config", "set", "ldap_url", "ftp://x")
    assert bad.exit_code == 1 and "ldap_url" in bad.stderr
    assert _show(await json(cli, "config", "show"))["ldap_url"]["value"] is None
    await ok(cli, "config", "unset", "ldap_max_concurrent")
    assert _show(await json(cli, "config", "show"))["ldap_max_concurrent"]["value"] == 8
