"""Sign-in with the directory's password through POST /api/v1/auth/login, against a real
slapd, on SQLite and on PostgreSQL + Redis (`make_server`): just-in-time accounts, the
same answers and the same login protection as local accounts, the second-factor policy
on top, `unavailable` when the directory is away, the owner always local, and no
password in any log."""

from __future__ import annotations

from typing import Any

import httpx
import pyotp
import pytest

from tests.conftest import ADMIN_PASSWORD, MakeServer
from tests.helpers import Api, http_client, login, make_user
from tests.ldap_server import PASSWORDS, SEARCH_PASSWORD, Slapd, ldap_settings


async def _login(url: str, username: str, password: str, **extra: Any) -> httpx.Response:
    async with http_client(url) as c:
        return await c.post(
            "/api/v1/auth/login", json={"username": username, "password": password, **extra}
        )


async def _audit(admin: Api) -> list[dict[str, Any]]:
    return list((await admin.get("/audit?limit=500"))["entries"])


async def test_first_sign_in_creates_the_account_and_audits_the_method(
    make_server: MakeServer, slapd: Slapd
) -> None:
    async with make_server(**ldap_settings(slapd)) as server:
        r = await _login(server.url, "Kate", PASSWORDS["kate"])
        assert r.status_code == 200, r.text
        user = r.json()["user"]
        assert (user["username"], user["display_name"], user["email"]) == (
            "kate",
            "Kate Lin",
            "kate@example.org",
        )
        assert (user["origin"], user["role"]) == ("ldap", "admin")
        kate = Api(server.url, r.json()["token"], user)
        me = await kate.get("/users/me")
        assert me["user"]["origin"] == "ldap"
        # the department tree mirrors the OU path
        deps = {d["id"]: d for d in (await kate.get("/departments"))["departments"]}
        names = sorted(deps[d]["name"] for d in me["user"]["department_ids"])
        assert names == ["Platform"]
        # again: the same account
        again = await _login(server.url, "kate", PASSWORDS["kate"])
        assert again.status_code == 200 and again.json()["user"]["id"] == user["id"]
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        entries = await _audit(admin)
        logins = [e for e in entries if e["action"] == "login"]
        assert [e["details"]["method"] for e in logins] == ["ldap", "ldap", "password"]
        assert [e["action"] for e in entries].count("identity_user_created") == 1
        await kate.close()
        await admin.close()
        # nothing of a password reached the log
        logs = server.logs()
        for secret in (*PASSWORDS.values(), SEARCH_PASSWORD):
            assert secret not in logs


async def test_refusals_are_the_same_answer_and_count_towards_the_lockout(
    make_server: MakeServer, slapd: Slapd
) -> None:
    settings = ldap_settings(slapd, login_failures_before_lockout=3, login_failures_before_delay=10)
    async with make_server(**settings) as server:
        local_wrong = await _login(server.url, "admin", "wrong-password")
        for name, password in (("kate", "wrong"), ("nobody", "x"), ("dora", PASSWORDS["dora"])):
            r = await _login(server.url, name, password)
            assert r.status_code == 401, (name, r.text)
            assert r.json()["error"] == local_wrong.json()["error"]  # one answer
        # dora is disabled in the directory: her account exists, disabled
        for _ in range(2):
            assert (await _login(server.url, "kate", "wrong")).status_code == 401
        locked = await _login(server.url, "kate", PASSWORDS["kate"])
        assert locked.status_code == 429 and locked.json()["error"]["code"] == "rate_limited"
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        failed = [e for e in await _audit(admin) if e["action"] == "login_failed"]
        assert {e["details"].get("method") for e in failed} == {"password", "ldap"}
        assert any(e["details"].get("refused") == "disabled" for e in failed)
        await admin.close()


async def test_an_unreachable_directory_is_unavailable_and_the_owner_still_signs_in(
    make_server: MakeServer, slapd: Slapd
) -> None:
    async with make_server(**ldap_settings(slapd)) as server:
        assert (await _login(server.url, "kate", PASSWORDS["kate"])).status_code == 200
        slapd.stop()
        r = await _login(server.url, "kate", PASSWORDS["kate"])
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert "password" not in r.json()["error"]["message"]
        # the owner is a local account: the directory does not matter
        assert (await _login(server.url, "admin", ADMIN_PASSWORD)).status_code == 200
        # an outage is no failed attempt: nothing locked, nothing counted
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        assert not [e for e in await _audit(admin) if e["action"] == "login_failed"]
        await admin.close()


async def test_a_local_account_keeps_its_own_password(
    make_server: MakeServer, slapd: Slapd
) -> None:
    async with make_server(**ldap_settings(slapd)) as server:
        admin = await login(server.url, "admin", ADMIN_PASSWORD)
        sam = await make_user(admin, "sam")  # a local "sam", made before the directory's
        assert sam.user["origin"] == "local"
        refused = await _login(server.url, "sam", PASSWORDS["sam"])
        assert refused.status_code == 401  # the directory's password opens no local account
        await sam.close()
        await admin.close()


async def test_the_second_factor_policy_applies_on_top(
    make_server: MakeServer, slapd: Slapd
) -> None:
    async with make_server(**ldap_settings(slapd)) as server:
        await server.container.services.second_factor.set_policy(None, _policy("everyone"))
        r = await _login(server.url, "li", PASSWORDS["li"])
        assert r.status_code == 200 and r.json()["second_factor_required"] is True
        li = Api(server.url, r.json()["token"], r.json()["user"])
        # enrolling asks for the password again: the directory's
        wrong = await li.post("/auth/totp/setup", {"password": "wrong"}, expect=None)
        assert wrong is not None and wrong["error"]["code"] == "invalid_credentials"
        setup = await li.post("/auth/totp/setup", {"password": PASSWORDS["li"]})
        secret = setup["secret"]
        await li.post(
            "/auth/totp/enable",
            {"password": PASSWORDS["li"], "code": pyotp.TOTP(secret).now()},
        )
        missing = await _login(server.url, "li", PASSWORDS["li"])
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "totp_required"
        # a directory account's password is the directory's to change
        changed = await li.post(
            "/auth/password",
            {"current_password": PASSWORDS["li"], "new_password": "another-plum-orbit-9"},
            expect=None,
        )
        assert changed is not None and changed["error"]["code"] == "invalid_operation"
        await li.close()


def _policy(name: str) -> Any:
    from tidings.core.models import SecondFactorPolicy

    return SecondFactorPolicy(name)


@pytest.mark.parametrize("name", ["kate)(uid=*", "*", "k" * 200, "ｋａｔｅ\u202e"])
async def test_hostile_usernames_find_nobody(
    make_server: MakeServer, slapd: Slapd, name: str
) -> None:
    async with make_server(**ldap_settings(slapd)) as server:
        r = await _login(server.url, name, PASSWORDS["kate"])
        assert r.status_code in (400, 401), r.text
