"""The LDAP and OIDC settings admins edit at run time (services/config.py, api/config_routes.py)
on both backends: LDAP configured over REST against a real slapd, then a directory user
signs in without a restart; locked settings refused; secrets never answered or audited;
admins only; a bad value writes nothing; another node on the same database picks the
change up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, MakeServer
from tests.helpers import login, make_user
from tests.ldap_server import PASSWORDS, SEARCH_PASSWORD, TREE, Slapd, ldap_settings, require_slapd
from tidings.app.container import Container
from tidings.app.settings import Settings
from tidings.core.errors import InvalidRequest
from tidings.services.passwords import Passwords


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


def from_the_web(slapd: Slapd) -> dict[str, Any]:
    """What an admin types into the LDAP form (the CA file stays the operator's)."""
    values = ldap_settings(slapd)
    for fixed in ("ldap_ca_file", "ldap_sync_interval_seconds"):
        values.pop(fixed)
    return values


async def test_ldap_configured_over_rest_signs_a_directory_user_in(
    make_server: MakeServer, slapd: Slapd
) -> None:
    async with make_server(ldap_ca_file=str(slapd.ca_file)) as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        before = {s["name"]: s for s in (await admin.get("/admin/config"))["settings"]}
        assert before["ldap_url"]["value"] is None and before["ldap_url"]["locked"] is False
        assert before["ldap_bind_password"] == {**before["ldap_bind_password"], "set": False}
        assert "ldap_ca_file" not in before  # the file's, not editable here
        kate = await admin.call(
            "POST", "/auth/login", json={"username": "kate", "password": PASSWORDS["kate"]}
        )
        assert kate["error"]["code"] == "invalid_credentials"  # LDAP off: no such account
        changed = await admin.call(
            "PATCH", "/admin/config", json={"values": from_the_web(slapd)}, expect=200
        )
        rows = {s["name"]: s for s in changed["settings"]}
        assert rows["ldap_url"]["value"] == slapd.url
        assert rows["ldap_bind_password"]["value"] is None
        assert rows["ldap_bind_password"]["set"] is True
        shown = await admin.get("/admin/config")
        assert SEARCH_PASSWORD not in str(shown) and SEARCH_PASSWORD not in str(changed)
        checked = await admin.post(
            "/admin/identity/ldap/test", {"username": "kate", "password": PASSWORDS["kate"]}
        )
        assert checked["ok"] is True
        kate = await login(server.url, "kate", PASSWORDS["kate"])  # no restart
        assert (await kate.get("/users/me"))["user"]["username"] == "kate"
        assert [u["origin"] for u in (await admin.get("/users?query=kate"))["users"]] == ["ldap"]
        await kate.close()
        entries = (await admin.get("/audit?limit=500"))["entries"]
        audited = [e for e in entries if e["action"] == "settings_changed"]
        assert len(audited) == 1
        details = audited[0]["details"]
        assert "ldap_bind_password" in details["settings"]
        assert "ldap_bind_password" not in details["new"]
        assert details["old"]["ldap_url"] is None and details["new"]["ldap_url"] == slapd.url
        assert SEARCH_PASSWORD not in str(entries)
        # back to the default: LDAP off again
        await admin.call("PATCH", "/admin/config", json={"values": {"ldap_url": None}}, expect=200)
        off = await admin.call(
            "POST", "/auth/login", json={"username": "kate", "password": PASSWORDS["kate"]}
        )
        assert off["error"]["code"] == "invalid_credentials"
        await admin.close()


async def test_locked_unknown_and_bad_values_are_refused_and_nothing_is_written(
    make_server: MakeServer,
) -> None:
    async with make_server(ldap_user_base="ou=fixed,dc=example,dc=com") as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        rows = {s["name"]: s for s in (await admin.get("/admin/config"))["settings"]}
        assert rows["ldap_user_base"]["locked"] is True
        assert rows["ldap_user_base"]["value"] == "ou=fixed,dc=example,dc=com"

        async def refused(values: Any, code: str = "invalid_request") -> dict[str, Any]:
            got = await admin.call("PATCH", "/admin/config", json={"values": values})
            assert got["error"]["code"] == code, got
            return got

        await refused({"ldap_user_base": "ou=other"}, "invalid_operation")
        bad = await refused({"oidc_issuer": "https://idp.example.com"})
        assert bad["error"]["details"]["field"].startswith("values.")
        url = await refused({"ldap_url": "ftp://x", "ldap_user_filter": "(uid={username})"})
        assert url["error"]["details"]["field"] == "values.ldap_url"
        unknown = await refused({"database_url": "sqlite:///x"})
        assert unknown["error"]["details"]["field"] == "values.database_url"
        await refused({"ldap_user_filter": "x" * 5000})
        await refused({"ldap_max_concurrent": "many"})
        await refused({})
        await refused({"ldap_bind_password": 5})
        for body in ({"values": {"ldap_url": ["a"]}}, {"values": {}, "more": 1}, {"values": 3}):
            got = await admin.call("PATCH", "/admin/config", json=body)
            assert got["error"]["code"] in ("invalid_request", "invalid_body"), got
        after = {s["name"]: s for s in (await admin.get("/admin/config"))["settings"]}
        assert after == rows  # nothing written
        entries = (await admin.get("/audit?limit=500"))["entries"]
        assert not [e for e in entries if e["action"] == "settings_changed"]
        member = await make_user(admin, "mia")
        assert (await member.get("/admin/config", expect=403))["error"]["code"] == "forbidden"
        await member.call(
            "PATCH", "/admin/config", json={"values": {"ldap_user_filter": "(uid=*)"}}, expect=403
        )
        await member.close()
        await admin.close()


def second(c: Container) -> Container:
    """Another node on the same database, started with the same configuration file."""
    return Container(
        Settings.model_validate({k: getattr(c.settings, k) for k in c.settings.model_fields_set}),
        clock=c.deps.clock,
        passwords=Passwords(time_cost=1, memory_kib=8, parallelism=1),
    )


@pytest.fixture
def container_settings(slapd: Slapd) -> dict[str, object]:
    return {"ldap_ca_file": str(slapd.ca_file), "config_poll_seconds": 0.1}


async def test_another_node_picks_the_change_up(container: Container, slapd: Slapd) -> None:
    c = container
    await c.start()
    other = second(c)
    await other.start()
    try:
        assert not c.services.ldap.enabled and not other.services.ldap.enabled
        await c.services.config.update(None, from_the_web(slapd))
        assert c.services.ldap.enabled  # at once here
        for _ in range(100):
            if other.services.ldap.enabled:
                break
            await asyncio.sleep(0.05)
        assert other.services.ldap.enabled  # within config_poll_seconds there
        _, session = await other.services.auth.login("kate", PASSWORDS["kate"])
        assert session.user.username == "kate"
        # a third node started later puts the stored configuration in force before serving
        third = second(c)
        await third.start()
        try:
            assert third.services.ldap.enabled
        finally:
            await third.close()
        await c.services.config.update(None, {"ldap_url": None})
        for _ in range(100):
            if not other.services.ldap.enabled:
                break
            await asyncio.sleep(0.05)
        assert not other.services.ldap.enabled
        with pytest.raises(InvalidRequest):
            await c.services.config.update(None, {"ldap_url": "ftp://x"})
        with pytest.raises(InvalidRequest):  # the operator's file only
            await c.services.config.update(None, {"ldap_ca_file": "/etc/passwd"})
    finally:
        await other.close()
