"""A signed-in user's password and second-factor checks (issue 13, items 7 and 8): a
session token is no way to guess the password or the codes without limit. Changing the
password, enrolling, disabling the second factor and new recovery codes check the
password (and the code) under the login guard, on the same counts as login, and audit
every failure; enrolling, disabling and new codes need the password in the request.
The server's clock is one the test holds, a second into a 30-second TOTP step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import AppServer, MakeServer
from tests.fakes import FakeClock
from tests.helpers import Api, login, make_user
from tests.security_helpers import code_for, enrol_totp, raw_login, step_now

PASSWORD = "plum-orbit-123"
EARLY_IN_A_STEP = datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)
# a wait after the third failure (1 s, then 2 s ...), a lock at the fifth
GUARD = {"login_failures_before_delay": 3, "login_failures_before_lockout": 5}


async def answer(api: Api, path: str, body: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
    r = await api.http.post(path, json=body)
    if r.status_code < 300:
        return r.status_code, "ok", {}
    error = r.json()["error"]
    return r.status_code, error["code"], error["details"]


async def audit_of(admin: Api, action: str) -> list[dict[str, Any]]:
    entries = (await admin.get("/audit?limit=500"))["entries"]
    return [e for e in entries if e["action"] == action]


async def test_wrong_current_passwords_are_throttled_locked_and_audited(
    make_server: MakeServer,
) -> None:
    clock = FakeClock(EARLY_IN_A_STEP)
    async with make_server(clock=clock, **GUARD) as server:
        admin = await login(server.url, "admin", server.admin_password)
        alice = await make_user(admin, "alice", password=PASSWORD)

        def change(current: str) -> dict[str, str]:
            return {"current_password": current, "new_password": "amber-quarry-77"}

        for _ in range(3):
            status, code, details = await answer(alice, "/auth/password", change("guess-one-1"))
            assert (status, code, details) == (
                401,
                "invalid_credentials",
                {"field": "current_password"},
            )
        # the fourth try must wait, even with the right password; login waits as well
        status, code, details = await answer(alice, "/auth/password", change(PASSWORD))
        assert (status, code) == (429, "rate_limited") and details["retry_after"] >= 1
        assert (await raw_login(server.url, "alice", PASSWORD)).status_code == 429
        clock.advance(1.5)
        assert (await answer(alice, "/auth/password", change("guess-two-2")))[1] == (
            "invalid_credentials"
        )
        clock.advance(2.5)
        assert (await answer(alice, "/auth/password", change("guess-three-3")))[1] == (
            "invalid_credentials"
        )
        # the fifth failure locks the account: the right password waits out the lock
        clock.advance(60)
        status, code, details = await answer(alice, "/auth/password", change(PASSWORD))
        assert (status, code) == (429, "rate_limited") and details["retry_after"] > 800

        failed = await audit_of(admin, "reauth_failed")
        assert [e["details"] for e in failed] == [
            {"operation": "password_change", "factor": "password", "failures": n}
            for n in range(1, 6)
        ]
        assert {(e["actor_id"], e["target_id"]) for e in failed} == {(alice.id, alice.id)}
        locked = await audit_of(admin, "login_locked")
        assert len(locked) == 1 and locked[0]["target_id"] == alice.id
        assert locked[0]["details"]["operation"] == "password_change"
        assert "guess" not in str(failed + locked)  # never a password in the log

        clock.advance(901)  # the lock is over: the right password works
        assert (await answer(alice, "/auth/password", change(PASSWORD)))[:2] == (204, "ok")
        await admin.close()
        await alice.close()


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/auth/totp/disable", "totp_disable"),
        ("/auth/totp/recovery-codes", "recovery_codes_regenerate"),
    ],
)
async def test_wrong_second_factor_codes_are_throttled_and_audited(
    make_server: MakeServer, path: str, operation: str
) -> None:
    clock = FakeClock(EARLY_IN_A_STEP)
    async with make_server(clock=clock, **GUARD) as server:
        admin = await login(server.url, "admin", server.admin_password)
        alice = await make_user(admin, "alice", password=PASSWORD)
        secret, _codes, step = await enrol_totp(alice, PASSWORD, clock)
        for guess in ("111111", "222222", "333333"):
            body = {"password": PASSWORD, "code": guess}
            assert (await answer(alice, path, body))[:2] == (401, "invalid_totp")
        # the right code must wait too
        right = {"password": PASSWORD, "code": code_for(secret, step)}
        status, code, details = await answer(alice, path, right)
        assert (status, code) == (429, "rate_limited") and details["retry_after"] >= 1
        assert (await alice.get("/auth/totp"))["enabled"] is True
        failed = await audit_of(admin, "reauth_failed")
        assert [e["details"] for e in failed] == [
            {"operation": operation, "factor": "totp", "failures": n} for n in range(1, 4)
        ]
        clock.advance(1.5)
        assert (await answer(alice, path, right))[1] == "ok"
        await admin.close()
        await alice.close()


async def test_enrolling_disabling_and_new_codes_need_the_password(
    make_server: MakeServer,
) -> None:
    """A token alone cannot enrol a second factor (and lock the real user out), disable
    it, or replace the recovery codes: each needs the password in the same request. A
    wrong one is refused and counted like a failed login."""
    clock = FakeClock(EARLY_IN_A_STEP)
    roomy = {"login_failures_before_delay": 20, "login_failures_before_lockout": 40}
    async with make_server(clock=clock, **roomy) as server:
        admin = await login(server.url, "admin", server.admin_password)
        thief = await make_user(admin, "alice", password=PASSWORD)  # a stolen token
        step = step_now(clock)

        async def refused_without_and_with_a_wrong_password(
            path: str, extra: dict[str, str]
        ) -> None:
            assert (await answer(thief, path, extra))[:2] == (400, "invalid_request")
            wrong = {"password": "not-her-password", **extra}
            assert (await answer(thief, path, wrong))[:2] == (401, "invalid_credentials")

        await refused_without_and_with_a_wrong_password("/auth/totp/setup", {})
        assert (await thief.get("/auth/totp"))["enabled"] is False
        setup = await thief.post("/auth/totp/setup", {"password": PASSWORD})
        secret = setup["secret"]
        first = {"code": code_for(secret, step - 1)}
        await refused_without_and_with_a_wrong_password("/auth/totp/enable", first)
        assert (await thief.get("/auth/totp"))["enabled"] is False
        assert (await raw_login(server.url, "alice", PASSWORD)).status_code == 200
        enabled = await thief.post("/auth/totp/enable", {"password": PASSWORD, **first})
        assert len(enabled["recovery_codes"]) == 10

        now = {"code": code_for(secret, step)}
        await refused_without_and_with_a_wrong_password("/auth/totp/recovery-codes", now)
        fresh = await thief.post("/auth/totp/recovery-codes", {"password": PASSWORD, **now})
        assert fresh["recovery_codes"] != enabled["recovery_codes"]

        later = {"code": code_for(secret, step + 1)}
        await refused_without_and_with_a_wrong_password("/auth/totp/disable", later)
        assert (await thief.get("/auth/totp"))["enabled"] is True
        await thief.post("/auth/totp/disable", {"password": PASSWORD, **later}, expect=204)
        assert (await thief.get("/auth/totp"))["enabled"] is False

        failed = await audit_of(admin, "reauth_failed")
        assert [(e["details"]["operation"], e["details"]["factor"]) for e in failed] == [
            ("totp_setup", "password"),
            ("totp_enable", "password"),
            ("recovery_codes_regenerate", "password"),
            ("totp_disable", "password"),
        ]
        # counted with logins: the good login between them forgot the first two
        assert [e["details"]["failures"] for e in failed] == [1, 2, 1, 2]
        await admin.close()
        await thief.close()


async def test_a_wrong_first_code_when_enrolling_is_counted(server: AppServer) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    alice = await make_user(admin, "alice", password=PASSWORD)
    await alice.post("/auth/totp/setup", {"password": PASSWORD})
    body = {"password": PASSWORD, "code": "000000"}
    assert (await answer(alice, "/auth/totp/enable", body))[:2] == (401, "invalid_totp")
    failed = await audit_of(admin, "reauth_failed")
    assert [e["details"] for e in failed] == [
        {"operation": "totp_enable", "factor": "totp", "failures": 1}
    ]
    await admin.close()
    await alice.close()
