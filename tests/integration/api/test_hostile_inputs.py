"""Hostile input on the endpoints issue 13 added or changed: a 1 MiB password on every
password-checking route, an oversized or invisible emoji in a reaction's path, and a
flood of ids to `GET /presence`. Each gets a clear 4xx (never a 500), and an oversized
password is refused before it is hashed: nothing is counted or audited as a failed check.
SQLite and PostgreSQL + Redis."""

from __future__ import annotations

from tests.conftest import AppServer
from tests.helpers import login, make_user
from tests.integration.api.test_security_reactions import group_with_a_message, react_path

PASSWORD = "plum-orbit-123"
HUGE = "x" * (1024 * 1024)


async def test_a_one_mebibyte_password_is_refused_before_any_hash(server: AppServer) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    alice = await make_user(admin, "alice", password=PASSWORD)
    bodies = {
        "/auth/password": [
            {"current_password": HUGE, "new_password": "a-new-long-pass-123"},
            {"current_password": PASSWORD, "new_password": HUGE},
        ],
        "/auth/totp/setup": [{"password": HUGE}],
        "/auth/totp/enable": [{"password": HUGE, "code": "123456"}],
        "/auth/totp/disable": [{"password": HUGE, "code": "123456"}],
        "/auth/totp/recovery-codes": [{"password": HUGE, "code": "123456"}],
    }
    for path, tries in bodies.items():
        for body in tries:
            r = await alice.http.post(path, json=body)
            assert 400 <= r.status_code < 500, (path, r.status_code)
            assert "code" in r.json()["error"], path
    entries = (await admin.get("/audit?limit=500"))["entries"]
    assert not [e for e in entries if e["action"] in ("reauth_failed", "login_locked")]
    await alice.close()
    await admin.close()


async def test_an_oversized_or_invisible_emoji_is_refused(server: AppServer) -> None:
    (alice,), cid = await group_with_a_message(server, "alice")
    for emoji in ("x" * 65, "\u202e" * 3, "y" * 4000):  # too long, invisible only, huge
        r = await alice.http.put(react_path(cid, 1, emoji))
        assert 400 <= r.status_code < 500, (emoji[:10], r.status_code)
    (message,) = (await alice.get(f"/conversations/{cid}/messages"))["messages"]
    assert not message.get("reactions")
    await alice.close()


async def test_presence_answers_a_bounded_number_of_ids(server: AppServer) -> None:
    admin = await login(server.url, "admin", server.admin_password)
    many = ",".join(f"u{i:05d}" for i in range(1000))  # 6,999 characters
    answer = await admin.get("/presence", params={"user_ids": many})
    assert len(answer["presence"]) == 500
    r = await admin.http.get("/presence", params={"user_ids": "x" * 20001})
    assert 400 <= r.status_code < 500, r.status_code
    await admin.close()
