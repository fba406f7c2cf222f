"""`tidings config show|set|unset`, run as an operator would: values stored in the
database, secrets sealed and never printed, locked settings (from the environment)
refused, bad values refused with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import tidings

pytestmark = pytest.mark.e2e

ENV = {"TIDINGS_ADMIN_PASSWORD": "owner-password-for-cli-tests"}


def _show(data: Path, env: dict[str, str]) -> dict[str, dict[str, object]]:
    shown = tidings(data, "config", "show", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return {row["name"]: row for row in json.loads(shown.stdout)["settings"]}


def test_config_set_show_unset_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**ENV, "TIDINGS_LDAP_USER_BASE": "ou=people,dc=example,dc=com"}
    assert tidings(data, "migrate", env=env).returncode == 0
    before = _show(data, env)
    assert before["ldap_user_base"]["locked"] is True
    assert before["ldap_max_concurrent"]["value"] == 8
    done = tidings(data, "config", "set", "ldap_max_concurrent", "3", env=env)
    assert done.returncode == 0, done.stderr
    secret = tidings(data, "config", "set", "ldap_bind_password", "cli-secret-xyz", env=env)
    assert secret.returncode == 0, secret.stderr
    after = _show(data, env)
    assert after["ldap_max_concurrent"]["value"] == 3
    assert after["ldap_bind_password"]["set"] is True
    table = tidings(data, "config", "show", env=env)
    assert "cli-secret-xyz" not in table.stdout + table.stderr
    locked = tidings(data, "config", "set", "ldap_user_base", "ou=x", env=env)
    assert locked.returncode == 1 and "configuration" in locked.stderr
    bad = tidings(data, "config", "set", "ldap_url", "ftp://x", env=env)
    assert bad.returncode == 1 and "ldap_url" in bad.stderr
    assert _show(data, env)["ldap_url"]["value"] is None
    back = tidings(data, "config", "unset", "ldap_max_concurrent", env=env)
    assert back.returncode == 0, back.stderr
    assert _show(data, env)["ldap_max_concurrent"]["value"] == 8
