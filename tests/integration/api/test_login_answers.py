"""A refused login says nothing about the account: an unknown name, a wrong password, a bot
(which has no password) and a disabled account (even with its right password) get the
same answer, after the same work, and all count towards the lockout. On SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import MakeServer, settings_from_env
from tests.helpers import login, make_user
from tests.security_helpers import raw_login

PASSWORD = "plum-orbit-123"


def answer(r: httpx.Response) -> tuple[int, Any, str | None]:
    return r.status_code, r.json(), r.headers.get("retry-after")


async def test_refused_logins_all_get_one_answer_and_count_alike(
    make_server: MakeServer,
) -> None:
    # No slow-down before the lock, so that every attempt is answered on its merits.
    env = {
        "TIDINGS_LOGIN_FAILURES_BEFORE_DELAY": "3",
        "TIDINGS_LOGIN_FAILURES_BEFORE_LOCKOUT": "3",
    }
    async with make_server(**settings_from_env(env)) as server:
        admin = await login(server.url, "admin", server.admin_password)
        await make_user(admin, "alice")
        dora = await make_user(admin, "dora")
        await admin.call("PATCH", f"/users/{dora.id}", json={"disabled": True}, expect=200)
        await admin.post("/bots", {"username": "deploybot"}, expect=201)

        cases = {
            "wrong password": ("alice", "not-the-password"),
            "unknown user": ("nobody-by-this-name", PASSWORD),
            "bot account": ("deploybot", PASSWORD),
            "disabled, right password": ("dora", PASSWORD),
        }
        first = {}
        for label, (username, password) in cases.items():
            seen = [answer(await raw_login(server.url, username, password)) for _ in range(4)]
            first[label] = seen[0]
            # three refusals, then the name is locked: the same count for every case
            assert [s[0] for s in seen] == [401, 401, 401, 429], (label, seen)
            assert seen[0] == seen[1] == seen[2], (label, seen)
            assert seen[3][1]["error"]["code"] == "rate_limited", (label, seen)
        # identical answers: status, code, message, details, no Retry-After
        assert len(set(map(repr, first.values()))) == 1, first
        status, body, retry = first["wrong password"]
        assert (status, retry) == (401, None)
        assert body["error"]["code"] == "invalid_credentials"
        assert body["error"]["message"] == "wrong username or password"

        # the audit log tells the cases apart for admins (never naming an unknown user)
        audit = (await admin.get("/audit", params={"limit": 500}))["entries"]
        refused = {
            e["details"].get("username"): e["details"].get("refused")
            for e in audit
            if e["action"] == "login_failed"
        }
        assert refused == {
            "alice": "password",
            None: None,  # the unknown name: neither named nor explained
            "deploybot": "bot",
            "dora": "disabled",
        }
        assert "nobody-by-this-name" not in str(audit)

        # once enabled (and the lock over), dora signs in with the same password
        await admin.call("PATCH", f"/users/{dora.id}", json={"disabled": False}, expect=200)
        assert (await raw_login(server.url, "dora", PASSWORD)).status_code == 429  # still locked
        await admin.close()
