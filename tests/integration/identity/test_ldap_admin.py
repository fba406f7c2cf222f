"""The admin REST routes of LDAP (api/identity_routes.py) on a real slapd, on both
backends: the configuration without its secrets, the check, the sync (dry by default),
admins only, hostile input refused, the rate limit."""

from __future__ import annotations

from tests.conftest import ADMIN_PASSWORD, MakeServer
from tests.helpers import login, make_user
from tests.ldap_server import PASSWORDS, SEARCH_PASSWORD, Slapd, ldap_settings


async def test_admins_see_the_configuration_without_its_secrets(
    make_server: MakeServer, slapd: Slapd
) -> None:
    async with make_server(**ldap_settings(slapd)) as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        got = await admin.get("/admin/identity/ldap")
        ldap = got["ldap"]
        assert ldap["enabled"] is True and ldap["url"] == slapd.url
        assert ldap["bind_password_set"] is True
        assert SEARCH_PASSWORD not in str(got)
        member = await make_user(admin, "mia")
        refused = await member.get("/admin/identity/ldap", expect=403)
        assert refused["error"]["code"] == "forbidden"
        await member.post("/admin/identity/ldap/test", {}, expect=403)
        await member.post("/admin/identity/ldap/sync", {}, expect=403)
        await member.close()
        await admin.close()


async def test_the_check_and_a_dry_sync_over_rest(make_server: MakeServer, slapd: Slapd) -> None:
    async with make_server(**ldap_settings(slapd)) as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        checked = await admin.post(
            "/admin/identity/ldap/test", {"username": "kate", "password": PASSWORDS["kate"]}
        )
        assert checked["ok"] is True
        assert [s["step"] for s in checked["steps"]] == [
            "connect",
            "bind",
            "search",
            "find",
            "sign-in",
        ]
        wrong = await admin.post(
            "/admin/identity/ldap/test", {"username": "kate", "password": "wrong"}
        )
        assert wrong["ok"] is False and wrong["steps"][-1] == {
            "step": "sign-in",
            "ok": False,
            "detail": "refused",
        }
        dry = await admin.post("/admin/identity/ldap/sync", {})
        assert dry["dry_run"] is True and dry["counts"]["created"] == 3
        assert (await admin.get("/users?query=kate"))["users"] == []  # nothing written
        done = await admin.post("/admin/identity/ldap/sync", {"dry_run": False})
        assert done["counts"]["created"] == 3
        assert [u["origin"] for u in (await admin.get("/users?query=kate"))["users"]] == ["ldap"]
        entries = (await admin.get("/audit?limit=500"))["entries"]
        tested = [e for e in entries if e["action"] == "identity_ldap_tested"]
        assert len(tested) == 2 and tested[0]["details"]["with_password"] is True
        assert PASSWORDS["kate"] not in str(entries)
        assert [e["action"] for e in entries].count("identity_synced") == 1
        await admin.close()


async def test_hostile_input_is_refused_and_checks_are_rate_limited(
    make_server: MakeServer, slapd: Slapd
) -> None:
    async with make_server(**ldap_settings(slapd, rate_directory_per_user=3)) as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        for body in (
            {"username": "k" * 65},
            {"password": "p" * 2000},
            {"username": "kate", "extra": 1},
            {"username": 5},
            {"username": "ka\u0000te"},
            {"dry_run": "yes"},
        ):
            path = "/admin/identity/ldap/" + ("sync" if "dry_run" in body else "test")
            r = await admin.post(path, body, expect=None)
            assert r["error"]["code"] in ("invalid_request", "too_large"), (body, r)
        for _ in range(3):
            await admin.post("/admin/identity/ldap/test", {})
        limited = await admin.post("/admin/identity/ldap/test", {}, expect=429)
        assert limited["error"]["code"] == "rate_limited"
        await admin.close()


async def test_with_ldap_off_the_page_says_so(make_server: MakeServer) -> None:
    async with make_server() as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        assert (await admin.get("/admin/identity/ldap"))["ldap"] == {"enabled": False}
        checked = await admin.post("/admin/identity/ldap/test", {})
        assert checked["ok"] is False and checked["steps"][0]["step"] == "configuration"
        off = await admin.post("/admin/identity/ldap/sync", {}, expect=400)
        assert off["error"]["code"] == "invalid_operation"
        await admin.close()


async def test_the_sdk_speaks_the_admin_routes(make_server: MakeServer, slapd: Slapd) -> None:
    from tidings.sdk import Client

    async with make_server(**ldap_settings(slapd)) as server, Client(server.url) as client:
        await client.login("admin", ADMIN_PASSWORD)
        config = await client.ldap_config()
        assert config["enabled"] is True and config["bind_password_set"] is True
        checked = await client.test_ldap("li", PASSWORDS["li"])
        assert checked["ok"] is True
        dry = await client.sync_ldap()
        assert dry["dry_run"] is True and dry["counts"]["created"] == 3  # type: ignore[index]
        me = await client.login("li", PASSWORDS["li"])
        assert me.origin == "ldap" and me.email == "li@example.org"
