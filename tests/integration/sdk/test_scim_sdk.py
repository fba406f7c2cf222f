"""The SDK's SCIM token methods, as an admin scripts them, on both backends: a token
issued (returned once), listed without it, used, revoked."""

from __future__ import annotations

import pytest

from tests.conftest import AppServer
from tests.helpers import http_client
from tidings.sdk import Client, Forbidden, NotFound


async def test_an_admin_issues_lists_and_revokes_scim_tokens(server: AppServer) -> None:
    async with Client(server.url) as admin:
        await admin.login(server.admin_username, server.admin_password)
        token, secret = await admin.issue_scim_token("Okta")
        assert token.name == "Okta" and token.revoked_at is None and secret.startswith("scim_")
        found, base_url = await admin.scim_tokens()
        assert [t.id for t in found] == [token.id] and base_url.endswith("/scim/v2")
        auth = {"authorization": f"Bearer {secret}"}
        async with http_client(server.url) as c:
            assert (await c.get("/scim/v2/Users", headers=auth)).status_code == 200
            await admin.revoke_scim_token(token.id)
            assert (await c.get("/scim/v2/Users", headers=auth)).status_code == 401
        (after,), _ = await admin.scim_tokens()
        assert after.revoked_at is not None
        with pytest.raises(NotFound):
            await admin.revoke_scim_token(token.id)
        user = await admin.create_user("scimless", "plum-orbit-123-sdk")
    async with Client(server.url) as member:
        await member.login(user.username, "plum-orbit-123-sdk")
        with pytest.raises(Forbidden):
            await member.issue_scim_token("mine")
