"""The SDK's runtime configuration methods (config, update_config), as an admin scripts
them, on both backends: a setting changed and put back, a secret only said to be set, a
bad value refused with the setting named, a member refused."""

from __future__ import annotations

import pytest

from tests.conftest import AppServer
from tidings.sdk import Client, Forbidden, InvalidRequest


async def test_an_admin_reads_and_changes_the_configuration(server: AppServer) -> None:
    async with Client(server.url) as admin:
        await admin.login(server.admin_username, server.admin_password)
        rows = {r["name"]: r for r in await admin.config()}
        assert rows["ldap_max_concurrent"]["value"] == 8
        changed = await admin.update_config(
            {"ldap_max_concurrent": 3, "oidc_client_secret": "sdk-secret-value"}
        )
        after = {r["name"]: r for r in changed}
        assert after["ldap_max_concurrent"]["value"] == 3
        assert after["oidc_client_secret"]["set"] is True
        assert "sdk-secret-value" not in str(changed)
        with pytest.raises(InvalidRequest) as refused:
            await admin.update_config({"ldap_url": "ftp://x"})
        assert refused.value.details["field"] == "values.ldap_url"
        back = {r["name"]: r for r in await admin.update_config({"ldap_max_concurrent": None})}
        assert back["ldap_max_concurrent"]["value"] == 8
        user = await admin.create_user("configless", "plum-orbit-123-sdk")
    async with Client(server.url) as member:
        await member.login(user.username, "plum-orbit-123-sdk")
        with pytest.raises(Forbidden):
            await member.config()
